#include "sim/bench.hpp"

#include "sim/child_process.hpp"
#include "workloads/synthetic.hpp"


#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>

#include <simgrid/s4u.hpp>

#include "core/error.hpp"
#include "core/quantity.hpp"
#include "sim/collectives.hpp"
#include "sim/cost_model.hpp"
#include "sim/executor.hpp"
#include "sim/platform.hpp"
#include "topology/cluster.hpp"
#include "topology/platform_xml.hpp"

namespace tcsim::sim {
namespace sg = simgrid::s4u;
using core::InputError;
using workloads::CollectiveType;

const std::vector<std::string>& bench_ops() {
  static const std::vector<std::string> ops = {"all_reduce", "all_gather", "reduce_scatter", "all_to_all", "dispatch", "combine"};
  return ops;
}

double busbw_factor(const std::string& op, int n) {
  const double nd = n;
  if (op == "all_reduce") return 2 * (nd - 1) / nd;
  return (nd - 1) / nd;
}

namespace {

CollectiveType type_of(const std::string& op) {
  if (op == "all_reduce") return CollectiveType::AllReduce;
  if (op == "all_gather") return CollectiveType::AllGather;
  if (op == "reduce_scatter") return CollectiveType::ReduceScatter;
  return CollectiveType::AllToAll;
}

bool is_moe(const std::string& op) { return op == "dispatch" || op == "combine"; }

// Runs fn in a forked child (one SimGrid engine per process) and returns the text it
// produced; an InputError in the child is rethrown here.

}  // namespace

std::vector<BenchRow> bench_collective(const BenchRequest& req) {
  const auto& ops = bench_ops();
  if (std::find(ops.begin(), ops.end(), req.op) == ops.end()) {
    std::string valid;
    for (const auto& o : ops) valid += (valid.empty() ? "" : ", ") + o;
    throw InputError("--op " + req.op, "unknown collective; valid: " + valid);
  }
  if (req.gpus < 2) throw InputError("--gpus " + std::to_string(req.gpus), "a collective needs at least 2 GPUs");
  if (req.gpus_per_node < 1 || req.gpus_per_node > 72) {
    throw InputError("--gpus-per-node " + std::to_string(req.gpus_per_node), "expected 1..72 GPUs per node");
  }
  const int gpn = std::min(req.gpus, req.gpus_per_node);
  if (req.gpus % gpn != 0) {
    throw InputError("--gpus " + std::to_string(req.gpus), "must be a multiple of the GPUs per node (" + std::to_string(gpn) +
                                                             "), or at most that many (one node)");
  }
  if (!(req.min_bytes > 0) || !(req.max_bytes >= req.min_bytes)) {
    throw InputError("--min-bytes/--max-bytes", "need 0 < min-bytes <= max-bytes");
  }
  if (!(req.factor > 1)) throw InputError("--factor", "the size factor between rows must be > 1");
  if (is_moe(req.op) && req.top_k < 1) throw InputError("--top-k", "dispatch/combine need top-k >= 1");

  // The platform: generated in memory (Platform::build), as `topo gen` would write it.
  core::Overrides o;
  for (const auto& s : req.sets) o.add(s, "--set");
  auto spec = topology::find_gpu(req.gpu, "--gpu");
  topology::apply_gpu_overrides(spec, o);
  auto cluster = topology::build_cluster(spec, req.gpus / gpn, gpn, req.fabric, o);
  std::vector<std::string> sim_sets;
  for (const auto& k : o.keys_with_prefix("sim.")) sim_sets.push_back(k + "=" + *o.take(k));
  o.check_all_taken(AlgorithmSelector::keys());
  const CollectiveType type = type_of(req.op);
  if (req.algo != "auto") sim_sets.push_back(std::string("sim.algo.") + workloads::to_string(type) + "=" + req.algo);
  if (is_moe(req.op)) {
    sim_sets.push_back("sim.moe.top_k=" + std::to_string(req.top_k));
    sim_sets.push_back("sim.moe.max_nodes=" + std::to_string(req.max_nodes));
  }
  // Fail fast on a bad algorithm name before forking per size.
  {
    core::Overrides check;
    for (const auto& s : sim_sets) check.add(s, "--algo/--set");
    AlgorithmSelector selector;
    selector.configure(check);
  }

  std::vector<BenchRow> rows;
  for (double bytes = req.min_bytes; bytes <= req.max_bytes * (1 + 1e-12); bytes *= req.factor) {
    const double b = std::round(bytes);
    std::string text = run_in_child([&] {
      int argc = 2;
      char a0[] = "tcsim", a1[] = "--log=root.thres:critical";
      char* argv[] = {a0, a1, nullptr};
      sg::Engine engine(&argc, argv);
      configure_engine(engine);
      core::Overrides so;
      for (const auto& s : sim_sets) so.add(s, "--set");
      AlgorithmSelector selector;
      selector.configure(so);
      core::Overrides none;
      Platform platform = Platform::build(engine, cluster, none);
      CostModel cost(platform.spec(), platform.calibration());
      auto trace = execute(platform, workloads::single_collective(req.gpus, type, b), cost, selector);
      std::string algo = trace.algorithms_used.empty() ? "-" : trace.algorithms_used.front();
      auto colon = algo.find(':');
      if (colon != std::string::npos) algo = algo.substr(colon + 1);
      return nlohmann::ordered_json{{"t", trace.step_time}, {"algo", algo}}.dump();
    });
    auto j = nlohmann::ordered_json::parse(text);
    BenchRow r;
    r.bytes = b;
    r.time_s = j["t"].get<double>();
    r.algorithm = j["algo"].get<std::string>();
    r.algbw = r.time_s > 0 ? b / r.time_s : 0;
    r.busbw = r.algbw * busbw_factor(req.op, req.gpus);
    if (is_moe(req.op) && r.time_s > 0) {
      const int nodes = req.gpus / gpn;
      auto f = token_fanout(req.top_k, nodes, gpn, req.max_nodes);
      // Within a node: received copies per (token, rank); across nodes: RDMA sends per
      // (token, node), own node included (DeepEP's num_rdma_token_sent).
      const double counted = nodes == 1 ? b * f.ranks / req.top_k : b * f.nodes / req.top_k;
      r.bottleneck_bw = counted / r.time_s;
    }
    rows.push_back(r);
  }
  return rows;
}

std::string format_bench(const BenchRequest& req, const std::vector<BenchRow>& rows) {
  std::string s;
  char line[256];
  std::snprintf(line, sizeof line, "# tcsim bench collective: %s on %d x %s (%s), algorithm %s\n", req.op.c_str(), req.gpus,
                req.gpu.c_str(), req.fabric.c_str(), req.algo.c_str());
  s += line;
  const bool moe = is_moe(req.op);
  if (moe) {
    std::snprintf(line, sizeof line, "# MoE routing: top-%d, at most %d nodes per token; bottleneck = DeepEP's definition\n", req.top_k,
                  req.max_nodes);
    s += line;
  }
  std::snprintf(line, sizeof line, "#%14s %14s %12s %12s %s %s\n", "size (B)", "time (us)", "algbw (GB/s)", "busbw (GB/s)",
                moe ? " bottleneck (GB/s)" : "", "algorithm");
  s += line;
  for (const auto& r : rows) {
    char extra[64] = "";
    if (moe) std::snprintf(extra, sizeof extra, " %18.2f", r.bottleneck_bw / 1e9);
    std::snprintf(line, sizeof line, " %14.0f %14.2f %12.2f %12.2f%s %s\n", r.bytes, r.time_s * 1e6, r.algbw / 1e9, r.busbw / 1e9,
                  extra, r.algorithm.c_str());
    s += line;
  }
  return s;
}

nlohmann::ordered_json bench_json(const BenchRequest& req, const std::vector<BenchRow>& rows) {
  nlohmann::ordered_json out = nlohmann::ordered_json::array();
  for (const auto& r : rows) {
    nlohmann::ordered_json j;
    j["op"] = req.op;
    j["gpu"] = req.gpu;
    j["gpus"] = req.gpus;
    j["bytes"] = r.bytes;
    j["time_s"] = r.time_s;
    j["algbw_GBps"] = r.algbw / 1e9;
    j["busbw_GBps"] = r.busbw / 1e9;
    if (is_moe(req.op)) j["bottleneck_GBps"] = r.bottleneck_bw / 1e9;
    j["algorithm"] = r.algorithm;
    out.push_back(j);
  }
  return out;
}

}  // namespace tcsim::sim
