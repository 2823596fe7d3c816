// `tcsim run` (one simulated step) and `tcsim compare` (two, side by side).
#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include <unistd.h>
#include <fstream>
#include <string>
#include <vector>

#include "core/cpus.hpp"
#include "core/error.hpp"
#include "sim/cli/commands.hpp"
#include "core/quantity.hpp"
#include "sim/bench.hpp"
#include "sim/energy.hpp"
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
      std::string out, fidelity;
      bool json = false;
    };
    auto o = std::make_shared<Opts>();
    cmd->add_option("--platform", o->req.platform, "SimGrid platform XML (from `tcsim topo gen` or hand-written)");
    cmd->add_option("--gpu", o->req.gpu, "instead of --platform: build a cluster of this GPU in memory (scales to 10^4+ GPUs)");
    cmd->add_option("--nodes", o->req.nodes, "with --gpu: number of nodes");
    cmd->add_option("--gpus-per-node", o->req.gpus_per_node, "with --gpu: GPUs per node")->capture_default_str();
    cmd->add_option("--fabric", o->req.fabric, "with --gpu: fabric name (`tcsim topo fabrics`)")->capture_default_str();
    cmd->add_option("--workload", o->req.workload, "workload preset name (e.g. moe-demo; see `tcsim model list`) or a Workload textproto/JSON file");
    cmd->add_option("--chakra", o->req.chakra, "replay Chakra traces DIR/prefix.<rank>.et instead of a generated workload");
    cmd->add_option("--set", o->req.sets, "override key=value (gpu.*, model.*, plan.*, sim.*); repeatable")->take_all();
    cmd->add_option("--out", o->out, "write the result as JSON to this file");
    cmd->add_flag("--json", o->json, "print the JSON result instead of the table");
    cmd->add_option("--tokens", o->req.tokens, "token budget for time to train, GPU hours, cost and energy (e.g. 14.8T)");
    cmd->add_option("--trace", o->req.trace, "write a Chrome/Perfetto trace of the step (open in ui.perfetto.dev)");
    cmd->add_option("--fidelity", o->fidelity,
                    "flow (SimGrid flows sharing links, default) or analytical (closed forms, no link sharing between "
                    "collectives; for plan search); same as --set sim.fidelity=...");
    cmd->callback([o] {
      check_writable(o->out, "--out");
      if (!o->fidelity.empty()) o->req.sets.push_back("sim.fidelity=" + o->fidelity);
      o->req.progress = isatty(STDERR_FILENO) != 0;
      if (!o->req.tokens.empty()) sim::parse_tokens(o->req.tokens, "--tokens");
      sim::leave_engines_to_exit();
      sim::RunResult r = sim::simulate(o->req);
      auto j = sim::to_json(r);
      if (!o->out.empty()) write_json(o->out, j, "--out");
      if (o->json) std::printf("%s\n", j.dump(2).c_str());
      else std::printf("%s", sim::format_table(r).c_str());
      // Done: leave without exit handlers, one of which is SimGrid's that destroys the engine
      // (and the platform in it: 0.09 s for a 16,384-GPU flow platform).
      std::fflush(nullptr);
      std::_Exit(exit_code());
    });
  }
  {
    auto* cmd = app.add_subcommand("compare", "Simulate the same workload on two platforms and show them side by side with ratios");
    struct Opts {
      std::vector<std::string> platforms, gpus;
      std::string workload, out, tokens, fidelity, fabric = "single-switch";
      int nodes = 0, gpus_per_node = 8;
      std::vector<std::string> sets, sets_b;
    };
    auto o = std::make_shared<Opts>();
    cmd->add_option("--platform", o->platforms, "platform XML; give it twice (baseline first)")->take_all();
    cmd->add_option("--gpu", o->gpus, "instead of --platform: GPU catalog names (baseline first), clusters built in memory")->take_all();
    cmd->add_option("--nodes", o->nodes, "with --gpu: number of nodes");
    cmd->add_option("--gpus-per-node", o->gpus_per_node, "with --gpu: GPUs per node")->capture_default_str();
    cmd->add_option("--fabric", o->fabric, "with --gpu: fabric name (`tcsim topo fabrics`)")->capture_default_str();
    cmd->add_option("--workload", o->workload, "workload preset name or file")->required();
    cmd->add_option("--set", o->sets, "override key=value for both runs; repeatable")->take_all();
    cmd->add_option("--set-b", o->sets_b, "override key=value for the second run only (e.g. gpu.nvlink_bw=200GBps with one platform)")->take_all();
    cmd->add_option("--out", o->out, "write both results and the ratios as JSON");
    cmd->add_option("--tokens", o->tokens, "token budget for time to train, GPU hours, cost and energy (e.g. 14.8T)");
    cmd->add_option("--fidelity", o->fidelity, "flow (default) or analytical, for both runs (see tcsim run --help)");
    cmd->callback([o] {
      if (!o->tokens.empty()) sim::parse_tokens(o->tokens, "--tokens");
      if (!o->fidelity.empty()) o->sets.push_back("sim.fidelity=" + o->fidelity);
      if (o->platforms.empty() == o->gpus.empty()) {
        throw core::InputError("tcsim compare", "give two --platform files, or two --gpu names with --nodes (one of "
                                                "either with --set-b variants for the second run)");
      }
      auto& sides = o->platforms.empty() ? o->gpus : o->platforms;
      const char* option = o->platforms.empty() ? "--gpu" : "--platform";
      if (sides.size() == 1 && !o->sets_b.empty()) sides.push_back(sides.front());
      if (sides.size() != 2) {
        throw core::InputError(option, std::string("compare needs exactly two (or one and --set-b variants), got ") +
                                           std::to_string(sides.size()));
      }
      check_writable(o->out, "--out");
      sim::RunRequest a, b;
      if (!o->platforms.empty()) {
        a.platform = o->platforms[0];
        b.platform = o->platforms[1];
      } else {
        for (auto* r : {&a, &b}) {
          r->nodes = o->nodes;
          r->gpus_per_node = o->gpus_per_node;
          r->fabric = o->fabric;
        }
        a.gpu = o->gpus[0];
        b.gpu = o->gpus[1];
      }
      a.workload = b.workload = o->workload;
      a.sets = b.sets = o->sets;
      b.sets.insert(b.sets.end(), o->sets_b.begin(), o->sets_b.end());
      a.tokens = o->tokens;
      b.tokens = o->tokens;
      // Both at once where two CPUs are free; then only the first shows its progress line.
      const int jobs = std::min(2, core::available_cpus());
      a.progress = isatty(STDERR_FILENO) != 0;
      b.progress = a.progress && jobs == 1;
      const auto results = sim::simulate_in_children({a, b}, jobs);
      const sim::RunResult& ra = results[0];
      const sim::RunResult& rb = results[1];
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
  {
    auto* bench = app.add_subcommand("bench", "Microbenchmarks of the simulated network");
    bench->require_subcommand(1);
    auto* cmd = bench->add_subcommand(
        "collective", "one collective per message size on a generated platform, printed as nccl-tests does (time, algbw, busbw)");
    struct Opts {
      sim::BenchRequest req;
      std::string min_bytes = "8", max_bytes = "8GiB";
      bool json = false;
    };
    auto o = std::make_shared<Opts>();
    cmd->add_option("--op", o->req.op, "all_reduce, all_gather, reduce_scatter, all_to_all, dispatch or combine (MoE, DeepEP-style)")
        ->capture_default_str();
    cmd->add_option("--gpu", o->req.gpu, "GPU catalog name (tcsim hw list)")->required();
    cmd->add_option("--gpus", o->req.gpus, "number of GPUs")->required();
    cmd->add_option("--gpus-per-node", o->req.gpus_per_node, "GPUs per node")->capture_default_str();
    cmd->add_option("--fabric", o->req.fabric, "scale-out fabric (tcsim topo fabrics)")->capture_default_str();
    cmd->add_option("--algo", o->req.algo, "algorithm (auto, or a name registered for the op: ring, tree, hierarchical, nvls, direct)")
        ->capture_default_str();
    cmd->add_option("--min-bytes", o->min_bytes, "smallest size per rank (bytes with unit, e.g. 8, 1MiB)")->capture_default_str();
    cmd->add_option("--max-bytes", o->max_bytes, "largest size per rank")->capture_default_str();
    cmd->add_option("--factor", o->req.factor, "size multiplier between rows")->capture_default_str();
    cmd->add_option("--top-k", o->req.top_k, "dispatch/combine: experts per token")->capture_default_str();
    cmd->add_option("--max-nodes", o->req.max_nodes, "dispatch/combine: nodes a token may reach (0 = unlimited)")->capture_default_str();
    cmd->add_option("--set", o->req.sets, "override key=value (gpu.*, fabric.*, sim.*); repeatable")->take_all();
    cmd->add_flag("--json", o->json, "print a JSON list of rows instead of the table");
    cmd->callback([o] {
      auto bytes = [](const std::string& text, const char* opt) {
        bool plain = !text.empty() && text.find_first_not_of("0123456789") == std::string::npos;
        return plain ? static_cast<double>(core::parse_integer(text, opt)) : core::parse_bytes(text, opt).value();
      };
      o->req.min_bytes = bytes(o->min_bytes, "--min-bytes");
      o->req.max_bytes = bytes(o->max_bytes, "--max-bytes");
      auto rows = sim::bench_collective(o->req);
      if (o->json) std::printf("%s\n", sim::bench_json(o->req, rows).dump(2).c_str());
      else std::printf("%s", sim::format_bench(o->req, rows).c_str());
    });
  }
}

}  // namespace tcsim::cli
