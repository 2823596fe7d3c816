// Plan search: every plan of a workload's model that passes the plan checks and fits the GPU
// memory of one cluster (workloads/enumerate.hpp), each simulated on that cluster with the
// analytical fidelity (flow needs a SimGrid engine per run), ranked by throughput; the best
// few can be re-simulated with the flow fidelity, each in its own process, to confirm it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "sim/simulate.hpp"
#include "workloads/model.pb.h"

namespace tcsim::sim {

struct SearchRequest {
  /// The cluster (--gpu/--nodes/--fabric or --platform), the workload whose fixed plan fields
  /// (schedule, batch, micro-batch, precision, ...) every candidate keeps, and --set overrides.
  RunRequest run;
  int64_t max_tp = 8;                     ///< largest tensor-parallel size tried
  int64_t max_cp = 1;                     ///< largest context-parallel size tried (powers of two)
  std::vector<int64_t> zero_stages = {1};  ///< ZeRO stages tried
  /// Pipeline schedules, micro-batch sizes and interleaved chunks per rank tried; empty =
  /// the workload's own.
  std::vector<std::string> schedules;
  std::vector<int64_t> micro_batches;
  std::vector<int64_t> virtual_stages;
  int top = 10;                           ///< rows kept, best first
  int verify = 0;                         ///< best rows re-simulated with the flow fidelity
  /// A progress line on stderr (plans done, best so far; the flow runs of --verify), at
  /// most twice a second. The CLI asks for it when stderr is a terminal.
  bool progress = false;
  /// Simulate every plan's full step. By default a plan with many micro-batches per
  /// pipeline is timed from three shorter steps (sim/steady_state.hpp).
  bool exact = false;
  /// Plans simulated at once, each batch of plans in a forked worker sharing the platform
  /// (0 = the CPUs this process may use). The ranking is the same for any number.
  int jobs = 0;
};

struct SearchRow {
  workloads::config::ParallelPlan plan;  ///< resolved (dp filled in)
  double memory_bytes = 0;               ///< estimated peak per GPU (workloads/memory.hpp)
  double step_time_s = 0;
  double mfu = 0;
  double tokens_per_second = 0;
  double flow_step_time_s = -1;  ///< with `verify`: the flow fidelity's step time
  /// The micro-batch counts whose steps the step time was extrapolated from (empty: the
  /// full step was simulated).
  std::vector<int64_t> simulated_micro_batches;
};

struct SearchResult {
  std::string model;
  std::string gpu;
  int gpus = 0;
  std::string fidelity;     ///< of the ranking
  int64_t fitting = 0;      ///< plans that pass the checks and fit in memory
  int64_t evaluated = 0;    ///< of those, simulated (the others failed to generate)
  int64_t extrapolated = 0; ///< of those, timed from three shorter steps (sim/steady_state.hpp)
  std::vector<std::string> skipped;  ///< why a fitting plan could not be simulated
  std::vector<SearchRow> rows;       ///< best (most tokens per second) first, at most `top`
  double wall_s = 0;                 ///< of the ranking (not in to_json: results are deterministic)
};

/// Runs the ranking in a child process (one SimGrid engine per process) and the flow
/// verifications each in their own. InputError when no plan fits.
SearchResult search_plans(const SearchRequest& request);

nlohmann::ordered_json to_json(const SearchResult& r);

}  // namespace tcsim::sim
