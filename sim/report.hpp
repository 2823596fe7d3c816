// Results of one simulated step: the numbers a researcher reads (step time, throughput,
// MFU) and where the time went, as a table and as JSON (stable key order, deterministic).
#pragma once

#include <map>
#include <string>

#include <nlohmann/json.hpp>

#include "sim/energy.hpp"
#include "sim/executor.hpp"
#include "workloads/program.hpp"

namespace tcsim::sim {

/// Per-GPU time accounting, averaged over ranks: compute_s + sum(exposed_comm_s) +
/// bubble_s = step time. A comm interval is exposed when the compute stream is idle;
/// when several kinds are in flight the idle time is split evenly between them. Idle
/// time with nothing in flight (pipeline bubbles, waiting for peers) is bubble_s.
struct Breakdown {
  double compute_s = 0;
  double bubble_s = 0;
  double overlapped_comm_s = 0;                  ///< comm time hidden under compute
  std::map<std::string, double> exposed_comm_s;  ///< by category ("ep_all_to_all", ...)
  std::map<std::string, double> comm_s;          ///< total time each category was in flight
};

Breakdown compute_breakdown(const workloads::Program& program, const ExecutionTrace& trace);

struct RunResult {
  std::string gpu;
  std::string platform;
  std::string workload;
  int gpus = 0;
  int nodes = 0;
  double step_time_s = 0;
  double tokens_per_step = 0;
  double tokens_per_second = 0;
  double mfu = 0;
  double peak_flops = 0;  ///< per GPU, at the workload's precision
  Breakdown breakdown;
  nlohmann::ordered_json inputs;  ///< resolved inputs: overrides, model, plan
  std::vector<std::string> algorithms;
  size_t ops = 0, ptasks = 0, activities = 0;
  size_t link_form_tasks = 0;  ///< parallel tasks in link form (ExecutorOptions::link_form)
  size_t alarms = 0;           ///< flow: SimGrid execs that stopped the run at a timer
  size_t transfers = 0;        ///< point-to-point transfers in the step's communication
  /// Time to train, GPU hours, cost, energy and power (sim/energy.hpp).
  TrainingEstimate training;
  /// Average utilisation over the step per link tier ("nvlink", "nic", "fabric.leaf_uplink",
  /// ...): bytes carried / (effective bandwidth x step time), averaged over the tier's
  /// links and both directions. Empty when not measured.
  std::map<std::string, double> link_utilisation;
};

nlohmann::ordered_json to_json(const RunResult& r);
/// A readable table of one result.
std::string format_table(const RunResult& r);
/// Side by side with ratios (b / a) for `tcsim compare`.
std::string format_comparison(const RunResult& a, const RunResult& b);

}  // namespace tcsim::sim

namespace tcsim::sim {
/// Reads back what to_json wrote (for results computed in a child process).
RunResult from_json(const nlohmann::ordered_json& j);
}  // namespace tcsim::sim
