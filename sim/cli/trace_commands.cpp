// `tcsim trace show` (what a Chakra trace holds and what is wrong with it) and
// `tcsim trace export` (a generated workload as Chakra traces, one .et per rank).
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include <simgrid/s4u.hpp>

#include "core/error.hpp"
#include "core/overrides.hpp"
#include "sim/cli/commands.hpp"
#include "sim/platform.hpp"
#include "topology/gpu.hpp"
#include "workloads/chakra/chakra.hpp"
#include "workloads/generator.hpp"
#include "workloads/model.hpp"

namespace tcsim::cli {
namespace {

std::string human_bytes(double b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (b >= 1024 && u < 4) b /= 1024, ++u;
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.2f %s", b, units[u]);
  return buf;
}

void print_summary(const workloads::ChakraSummary& s) {
  std::printf("trace %s: %zu rank%s, schema %s\n", s.prefix.c_str(), s.ranks.size(), s.ranks.size() == 1 ? "" : "s",
              s.schema.empty() ? "(none)" : s.schema.c_str());
  std::printf("\n%-6s %8s  %-58s %16s\n", "rank", "nodes", "by type", "critical path");
  for (size_t r = 0; r < s.ranks.size(); ++r) {
    const auto& rk = s.ranks[r];
    std::string types;
    for (const auto& [t, n] : rk.by_type) types += (types.empty() ? "" : " ") + t + "=" + std::to_string(n);
    std::printf("%-6zu %8zu  %-58s %13.0f us\n", r, rk.nodes, types.c_str(), rk.critical_path_us);
  }
  std::printf("\n%-16s %8s %14s %14s\n", "communication", "count", "bytes (all)", "each (avg)");
  if (s.collectives.empty()) std::printf("(none)\n");
  for (const auto& [t, c] : s.collectives)
    std::printf("%-16s %8zu %14s %14s\n", t.c_str(), c.count, human_bytes(c.bytes).c_str(),
                human_bytes(c.count ? c.bytes / static_cast<double>(c.count) : 0).c_str());
  if (!s.process_groups.empty()) {
    std::printf("\nprocess groups:");
    for (const auto& [pg, ranks] : s.process_groups) std::printf(" %s(%zu ranks)", pg.c_str(), ranks.size());
    std::printf("\n");
  }
  std::printf("\ncritical path: %.0f us (longest chain of duration_micros within one rank; waits between ranks "
              "are not modelled here — replay with `tcsim run --chakra` for that)\n",
              s.critical_path_us);
  std::printf("\ndependency problems: %s\n", s.fatal.empty() ? "none" : "");
  for (const auto& p : s.fatal) std::printf("  error: %s\n", p.c_str());
  for (const auto& p : s.warnings) std::printf("  warning: %s\n", p.c_str());
}

/// GPUs of a platform file. Loads it into a SimGrid engine: call once per process.
int platform_gpus(const std::string& path, core::Overrides& overrides) {
  int argc = 2;
  char arg0[] = "tcsim";
  char arg1[] = "--log=root.thres:warning";
  char* argv[] = {arg0, arg1, nullptr};
  simgrid::s4u::Engine engine(&argc, argv);
  sim::configure_engine(engine);
  return sim::Platform::load(engine, path, overrides).size();
}

}  // namespace

void register_trace_commands(CLI::App& app) {
  auto* trace = app.add_subcommand("trace", "Chakra execution traces (MLCommons/ASTRA-sim): inspect and export");
  trace->require_subcommand(1);
  {
    auto* cmd = trace->add_subcommand(
        "show", "Summarise Chakra traces DIR/prefix.<rank>.et: ranks, nodes by type, communication by type, "
                "critical path and dependency problems (exit 1 when replay would fail)");
    struct Opts {
      std::string prefix;
      bool json = false;
    };
    auto o = std::make_shared<Opts>();
    cmd->add_option("prefix", o->prefix, "trace prefix: DIR/name for DIR/name.0.et, DIR/name.1.et, ...")->required();
    cmd->add_flag("--json", o->json, "print JSON instead of the table");
    cmd->callback([o] {
      workloads::ChakraSummary s = workloads::summarize_chakra(o->prefix);
      if (o->json) std::printf("%s\n", workloads::to_json(s).c_str());
      else print_summary(s);
      if (!s.fatal.empty()) exit_code() = 1;
    });
  }
  {
    auto* cmd = trace->add_subcommand(
        "export", "Write one training step of a generated workload as Chakra traces, one .et per rank "
                  "(plus DIR/prefix.comm_groups.json for ASTRA-sim's --comm-group-configuration)");
    struct Opts {
      std::string workload, platform, out;
      int gpus = 0;
      std::vector<std::string> sets;
    };
    auto o = std::make_shared<Opts>();
    cmd->add_option("--workload", o->workload, "workload preset name or Workload textproto/JSON file")->required();
    auto* plat = cmd->add_option("--platform", o->platform, "SimGrid platform XML: the job uses all its GPUs");
    cmd->add_option("--gpus", o->gpus, "number of GPUs instead of --platform")->excludes(plat);
    cmd->add_option("-o,--out", o->out, "output prefix DIR/name (writes DIR/name.<rank>.et)")->required();
    cmd->add_option("--set", o->sets, "override key=value (model.*, plan.*); repeatable")->take_all();
    cmd->callback([o] {
      if (o->platform.empty() && o->gpus <= 0) throw core::InputError("tcsim trace export", "give --platform P.xml or --gpus N (N >= 1)");
      core::Overrides overrides;
      for (const auto& s : o->sets) overrides.add(s, "--set");
      auto workload = workloads::find_workload(o->workload, "--workload");
      workloads::apply_workload_overrides(workload, overrides);
      int gpus = o->platform.empty() ? o->gpus : platform_gpus(o->platform, overrides);
      std::vector<std::string> known = workloads::workload_override_keys();
      for (const auto& k : topology::gpu_keys()) known.push_back(k);
      overrides.check_all_taken(known);
      workloads::GeneratorOptions gen;
      workloads::Program program = workloads::generate(workload, gpus, gen);
      workloads::write_chakra(program, o->out);
      std::printf("wrote %s.0.et .. %s.%d.et (%d ranks; the program has %zu ops in %zu lanes) and %s.comm_groups.json\n",
                  o->out.c_str(), o->out.c_str(), program.world_size - 1, program.world_size, program.op_count(),
                  program.lanes.size(), o->out.c_str());
    });
  }
}

}  // namespace tcsim::cli
