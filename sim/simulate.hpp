// One simulated training step, end to end: platform + workload (or Chakra trace) +
// overrides -> RunResult. SimGrid allows one engine per process, so simulate() may run
// once per process; simulate_in_child() forks to run several in one command.
#pragma once

#include <string>
#include <vector>

#include "core/overrides.hpp"
#include "sim/report.hpp"

namespace tcsim::sim {

struct RunRequest {
  std::string platform;  ///< SimGrid platform XML
  std::string workload;  ///< preset name or config file (empty when chakra is set)
  std::string chakra;    ///< Chakra trace prefix (DIR/prefix), alternative to workload
  std::vector<std::string> sets;  ///< "key=value" overrides
  /// Instead of a platform file: a generated cluster built in memory (scales to 10^4+ GPUs).
  std::string gpu;                 ///< catalog name; set => platform must be empty
  int nodes = 0;
  int gpus_per_node = 8;
  std::string fabric = "single-switch";
  /// Token budget for the training estimate ("14.8T"); empty = none (sim/energy.hpp).
  std::string tokens;
  /// Write a Chrome/Perfetto trace of the step here (sim/timeline.hpp); empty = none.
  std::string trace;
  /// Show a progress line on stderr while the step runs (the CLI asks for it when stderr
  /// is a terminal; results never depend on it).
  bool progress = false;
};

/// Keys `--set` accepts besides model.*/plan.*/gpu.* (sim.fold, sim.sm_contention,
/// sim.fidelity=flow|analytical, sim.memoize, sim.algo.*, power.*).
std::vector<std::string> sim_keys();

/// Runs one step in this process (call at most once per process).
RunResult simulate(const RunRequest& request);

/// Runs simulate() in a forked child and returns its result; an InputError in the child
/// is rethrown here with the same message.
RunResult simulate_in_child(const RunRequest& request);
/// simulate_in_child for each request, up to `jobs` at once (sim/child_process.hpp), the
/// results in the order of the requests.
std::vector<RunResult> simulate_in_children(const std::vector<RunRequest>& requests, int jobs);

/// From now on, sessions (simulate(), plan search) leave their SimGrid engine to the
/// process's end instead of destroying it: for processes that leave with _exit or _Exit
/// once they have reported (`tcsim run`, forked children), where tearing down a 16,384-GPU
/// flow platform took 0.09 s (SimGrid's exit handler would destroy it at exit() too).
/// Otherwise (tests) the engine goes with its session.
void leave_engines_to_exit();

}  // namespace tcsim::sim
