// `tcsim run` (one simulated step) and `tcsim compare` (two, side by side).
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "sim/cli/commands.hpp"
#include "sim/simulate.hpp"

namespace tcsim::cli {
namespace {

// Fails before a long simulation when the result file cannot be written.
void check_writable(const std::string& path, const std::string& option) {
  if (path.empty()) return;
  std::ofstream probe(path, std::ios::app);
  if (!probe) throw core::InputError(option + " " + path, "cannot write this file (does the directory exist and is it writable?)");
}

void write_json(const std::string& path, const nlohmann::ordered_json& j, const std::string& option) {
  std::ofstream out(path, std::ios::trunc);
  out << j.dump(2) << "\n";
  if (!out) throw core::InputError(option + " " + path, "writing the result failed (disk full?)");
}

}  // namespace

void register_run_commands(CLI::App& app) {
  {
    auto* cmd = app.add_subcommand("run", "Simulate one training step of a workload on a platform");
    struct Opts {
      sim::RunRequest req;
      std::string out;
      bool json = false;
    };
    auto o = std::make_shared<Opts>();
    cmd->add_option("--platform", o->req.platform, "SimGrid platform XML (from `tcsim topo gen` or hand-written)")->required();
    cmd->add_option("--workload", o->req.workload, "workload preset name (e.g. moe-demo; see `tcsim model list`) or a Workload textproto/JSON file");
    cmd->add_option("--chakra", o->req.chakra, "replay Chakra traces DIR/prefix.<rank>.et instead of a generated workload");
    cmd->add_option("--set", o->req.sets, "override key=value (gpu.*, model.*, plan.*, sim.*); repeatable")->take_all();
    cmd->add_option("--out", o->out, "write the result as JSON to this file");
    cmd->add_flag("--json", o->json, "print the JSON result instead of the table");
    cmd->callback([o] {
      check_writable(o->out, "--out");
      sim::RunResult r = sim::simulate(o->req);
      auto j = sim::to_json(r);
      if (!o->out.empty()) write_json(o->out, j, "--out");
      if (o->json) std::printf("%s\n", j.dump(2).c_str());
      else std::printf("%s", sim::format_table(r).c_str());
    });
  }
  {
    auto* cmd = app.add_subcommand("compare", "Simulate the same workload on two platforms and show them side by side with ratios");
    struct Opts {
      std::vector<std::string> platforms;
      std::string workload, out;
      std::vector<std::string> sets, sets_b;
    };
    auto o = std::make_shared<Opts>();
    cmd->add_option("--platform", o->platforms, "platform XML; give it twice (baseline first)")->required()->take_all();
    cmd->add_option("--workload", o->workload, "workload preset name or file")->required();
    cmd->add_option("--set", o->sets, "override key=value for both runs; repeatable")->take_all();
    cmd->add_option("--set-b", o->sets_b, "override key=value for the second run only (e.g. gpu.nvlink_bw=200GBps with one platform)")->take_all();
    cmd->add_option("--out", o->out, "write both results and the ratios as JSON");
    cmd->callback([o] {
      if (o->platforms.size() == 1 && !o->sets_b.empty()) o->platforms.push_back(o->platforms.front());
      if (o->platforms.size() != 2) {
        throw core::InputError("--platform", "compare needs exactly two platforms (or one platform and --set-b variants), got " +
                                                 std::to_string(o->platforms.size()));
      }
      check_writable(o->out, "--out");
      sim::RunRequest a{o->platforms[0], o->workload, "", o->sets};
      sim::RunRequest b{o->platforms[1], o->workload, "", o->sets};
      b.sets.insert(b.sets.end(), o->sets_b.begin(), o->sets_b.end());
      sim::RunResult ra = sim::simulate_in_child(a);
      sim::RunResult rb = sim::simulate_in_child(b);
      std::printf("%s\n%s\n", sim::format_table(ra).c_str(), sim::format_table(rb).c_str());
      std::printf("%s", sim::format_comparison(ra, rb).c_str());
      if (!o->out.empty()) {
        nlohmann::ordered_json j;
        j["a"] = sim::to_json(ra);
        j["b"] = sim::to_json(rb);
        j["step_time_ratio"] = ra.step_time_s > 0 ? rb.step_time_s / ra.step_time_s : 0;
        j["tokens_per_second_ratio"] = ra.tokens_per_second > 0 ? rb.tokens_per_second / ra.tokens_per_second : 0;
        write_json(o->out, j, "--out");
      }
    });
  }
}

}  // namespace tcsim::cli
