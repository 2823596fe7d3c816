// Logging: one spdlog logger per module ("core", "topology", "workloads", "sim"),
// level set at run time (--log-level). Messages from sim/ carry the simulated time
// through a clock hook that sim/ installs; nothing here reads the wall clock for results.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include <spdlog/spdlog.h>

namespace tcsim::core {

/// Sets up stderr logging for every module at level ("trace".."off"). Idempotent.
void init_logging(const std::string& level = "warn");
/// The logger of a module; created on first use.
std::shared_ptr<spdlog::logger> logger(const std::string& module);
/// Installs the function giving the simulated time shown as "[t=...s]" in log lines.
void set_sim_clock(std::function<double()> clock);

}  // namespace tcsim::core
