// `tcsim bench scale`: the simulator's own speed on fixed scenarios (issue 6).
#include <cstdio>

#include "sim/cli/commands.hpp"
#include "sim/scale_bench.hpp"

namespace tcsim::cli {

void register_scale_commands(CLI::App& app) {
  CLI::App* bench = nullptr;
  for (CLI::App* sub : app.get_subcommands([](CLI::App*) { return true; }))
    if (sub->get_name() == "bench") bench = sub;
  if (bench == nullptr) bench = app.add_subcommand("bench", "Benchmarks: collectives (as nccl-tests) and the simulator's own speed");
  auto* cmd = bench->add_subcommand("scale", "Run fixed scenarios and print simulated step time, wall time, peak RSS, events/s");
  auto only = std::make_shared<std::vector<std::string>>();
  auto json = std::make_shared<bool>(false);
  auto fidelity = std::make_shared<std::string>("flow");
  cmd->add_option("--only", *only, "comma-separated scenarios or families, e.g. S1,S4 (S4 = S4-256 and S4-1024; S1 alone; S1@256 by name) (default: all)")->delimiter(',');
  cmd->add_flag("--json", *json, "print a JSON list of rows");
  cmd->add_option("--fidelity", *fidelity,
                  "flow (SimGrid flows, default), analytical (closed forms), or both (each scenario in flow then analytical, their "
                  "repeats alternating; the table ends with their step difference and speed ratio)")
      ->capture_default_str();
  auto repeat = std::make_shared<int>(1);
  cmd->add_option("--repeat", *repeat,
                  "run each scenario N times, each in a fresh process, and report the fastest run (the steadiest "
                  "estimate on a shared machine; JSON adds wall_runs_s)")
      ->capture_default_str();
  cmd->callback([only, json, fidelity, repeat] {
    auto rows = sim::run_scale_bench(*only, *fidelity, *repeat);
    if (*json) std::printf("%s\n", sim::to_json(rows).dump(2).c_str());
    else std::printf("%s", sim::format_scale_table(rows).c_str());
  });
}

}  // namespace tcsim::cli
