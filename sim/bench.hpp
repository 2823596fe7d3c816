// `tcsim bench collective`: one collective on a generated platform, one simulation per
// message size (each in a forked child: one SimGrid engine per process), reported as
// nccl-tests does: time, algorithm bandwidth (bytes / time) and bus bandwidth (algbw x
// the nccl-tests factor of the operation, doc/PERFORMANCE.md of nccl-tests):
//   all_reduce 2(n-1)/n; all_gather, reduce_scatter, all_to_all (n-1)/n.
// dispatch / combine are MoE all-to-alls routed DeepEP-style (top-k copies per token,
// node-limited); their rows add DeepEP's "bottleneck bandwidth" (DeepEP tests/
// test_intranode.py and test_internode.py): within one node, the bytes a rank receives
// (one copy per (token, rank), its own included) / time; across nodes, the bytes a rank
// sends over RDMA counted once per (token, target node), its own node included / time.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace tcsim::sim {

struct BenchRequest {
  std::string op = "all_reduce";  ///< all_reduce|all_gather|reduce_scatter|all_to_all|dispatch|combine
  std::string gpu = "H100";
  int gpus = 8;
  int gpus_per_node = 8;          ///< GPUs per node (nodes = gpus / gpus_per_node)
  std::string fabric = "single-switch";
  std::string algo = "auto";
  double min_bytes = 8;
  double max_bytes = 8.0 * 1073741824.0;
  double factor = 2;              ///< size multiplier between rows (nccl-tests -f)
  int top_k = 8;                  ///< dispatch/combine: experts per token (DeepSeek-V3)
  int max_nodes = 4;              ///< dispatch/combine: node limit (DeepSeek-V3: 4)
  std::vector<std::string> sets;  ///< gpu.*, fabric.*, sim.* overrides
};

struct BenchRow {
  double bytes = 0;
  double time_s = 0;
  double algbw = 0;   ///< bytes/s
  double busbw = 0;   ///< bytes/s
  double bottleneck_bw = 0;  ///< bytes/s, dispatch/combine only (DeepEP definition)
  std::string algorithm;
};

/// The valid --op names.
const std::vector<std::string>& bench_ops();
/// nccl-tests bus bandwidth factor of op on n ranks.
double busbw_factor(const std::string& op, int n);
/// Runs the benchmark; InputError for a bad op, GPU, size range or algorithm.
std::vector<BenchRow> bench_collective(const BenchRequest& request);
std::string format_bench(const BenchRequest& request, const std::vector<BenchRow>& rows);
nlohmann::ordered_json bench_json(const BenchRequest& request, const std::vector<BenchRow>& rows);

}  // namespace tcsim::sim
