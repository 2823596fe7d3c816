#include "core/log.hpp"

#include <cstdio>
#include <mutex>

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>

#include "core/error.hpp"

namespace tcsim::core {
namespace {

std::function<double()>& sim_clock() {
  static std::function<double()> clock;
  return clock;
}

class SimTimeFlag : public spdlog::custom_flag_formatter {
public:
  void format(const spdlog::details::log_msg&, const std::tm&, spdlog::memory_buf_t& dest) override {
    if (!sim_clock()) return;
    char buf[48];
    int n = std::snprintf(buf, sizeof buf, "[t=%.9fs] ", sim_clock()());
    dest.append(buf, buf + n);
  }
  std::unique_ptr<custom_flag_formatter> clone() const override { return std::make_unique<SimTimeFlag>(); }
};

spdlog::level::level_enum g_level = spdlog::level::warn;

}  // namespace

void init_logging(const std::string& level) {
  auto lvl = spdlog::level::from_str(level);
  if (lvl == spdlog::level::off && level != "off") {
    throw InputError("--log-level", "unknown level '" + level + "'; use trace, debug, info, warn, error or off");
  }
  g_level = lvl;
  spdlog::apply_all([&](const std::shared_ptr<spdlog::logger>& l) { l->set_level(lvl); });
}

std::shared_ptr<spdlog::logger> logger(const std::string& module) {
  static std::mutex mutex;
  std::lock_guard lock(mutex);
  if (auto existing = spdlog::get(module)) return existing;
  auto sink = std::make_shared<spdlog::sinks::stderr_sink_st>();
  auto l = std::make_shared<spdlog::logger>(module, sink);
  auto formatter = std::make_unique<spdlog::pattern_formatter>();
  formatter->add_flag<SimTimeFlag>('*').set_pattern("[%n/%l] %*%v");
  l->set_formatter(std::move(formatter));
  l->set_level(g_level);
  spdlog::register_logger(l);
  return l;
}

void set_sim_clock(std::function<double()> clock) { sim_clock() = std::move(clock); }

}  // namespace tcsim::core
