// `tcsim bench scale`: fixed scenarios that measure the simulator itself (issue 6):
// simulated step time, wall time, peak RSS and simulated events per second. Each scenario
// runs in its own forked process (one SimGrid engine per process) on an in-memory
// platform; the wall clock is read only here, never inside a simulation.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "sim/executor.hpp"

namespace tcsim::sim {

struct ScaleRow {
  std::string scenario;     ///< "S1", "S4-256", "S5-a2a-4096", ...
  std::string description;
  int ranks = 0;
  double step_time_s = 0;   ///< simulated
  double wall_s = 0;
  double rss_mib = 0;
  double events_per_s = 0;  ///< SimGrid activities started per wall second
  size_t events = 0;
  size_t transfers = 0;     ///< point-to-point transfers in the step's communication
  std::string status = "ok";  ///< or why it did not run
  std::string fidelity = "flow";
  size_t memo_hits = 0;       ///< collectives timed from an identical earlier one (flow)
  /// Closed forms of collectives and sends evaluated (planned and routed), and those taken
  /// from an evaluated one shifted by the fabric's route period (ShiftedForms).
  size_t closed_forms = 0, shifted_forms = 0;
  /// Where the wall time went: building the platform (cluster, SimGrid hosts and links),
  /// generating the program, executing it; the rest of wall_s is teardown.
  double platform_s = 0, program_s = 0, execute_s = 0;
  /// CPU time the scenario's process spent over wall_s, in user code and in the kernel
  /// (page faults, mostly), and the page faults it took: wall_s well above their sum means
  /// the process waited for the CPU (another process or the hypervisor had it).
  double user_s = 0, sys_s = 0;
  long page_faults = 0;
  /// Wall time of every run when the scenario ran more than once (`--repeat`); the row's
  /// other fields are those of the fastest run.
  std::vector<double> wall_runs;
};

/// Scenario names in order (S1, S2, S3, S4-256, S4-1024, S5-...).
std::vector<std::string> scale_scenarios();
/// Runs the scenarios whose name starts with one of `only` (all when empty), in `fidelity`
/// ("flow", "analytical", or "both": flow then analytical), each `repeat` times in a fresh process; a row reports the fastest run (on a shared machine the
/// minimum is the steadiest estimate of the cost: interference only adds time). Runs of a
/// scenario that simulate different step times make its status "nondeterministic".
std::vector<ScaleRow> run_scale_bench(const std::vector<std::string>& only, const std::string& fidelity = "flow",
                                      int repeat = 1);
nlohmann::ordered_json to_json(const std::vector<ScaleRow>& rows);
/// The table, then the cost growth of each family with two or more sizes (cost_growth).
std::string format_scale_table(const std::vector<ScaleRow>& rows);

/// A scenario run in both fidelities (`--fidelity both`): the analytical step's relative
/// difference from flow's, both walls, and flow wall / analytical wall.
struct FidelityComparison {
  std::string scenario;
  double step_difference = 0;
  double flow_wall_s = 0, analytical_wall_s = 0;
  double speedup = 0;  ///< fastest flow run over fastest analytical run
  /// With repeated runs (alternated, so the k-th of each ran at about the same time): the
  /// least and greatest of flow's k-th wall over analytical's k-th; 0 without repeats.
  double paired_min = 0, paired_max = 0;
};
std::vector<FidelityComparison> fidelity_comparison(const std::vector<ScaleRow>& rows);

/// How wall time grows in one family of scenarios (issue 6: "no faster than ranks x ops"):
/// least-squares exponents of wall time against ranks and against transfers (the
/// point-to-point transfers the step's communication comprises), over its rows that ran
/// with 256 ranks or more (below that, fixed costs dominate).
struct CostGrowth {
  std::string family;  ///< "S1 weak scaling" (S1@256 ... S1), "S5-a2a", "S5-ar", "S4"; "(analytical)" appended for that fidelity's rows
  int min_ranks = 0, max_ranks = 0;
  size_t points = 0;
  double ranks_exponent = 0;
  double transfers_exponent = 0;
};
std::vector<CostGrowth> cost_growth(const std::vector<ScaleRow>& rows);

}  // namespace tcsim::sim
