// Collective algorithms, registered by name with the library or paper they follow. An
// algorithm turns one collective on one group of ranks into a sequence of phases; each
// phase is a set of simultaneous transfers that the executor runs as one SimGrid
// parallel task, so every phase loads the real links of the platform and shares them
// max-min fairly with whatever else runs (DESIGN.md, key decision 5).
//
// Registered (see algorithms() for the one-line descriptions with citations):
//   all_reduce     ring (multi-channel across nodes), tree (NCCL 2.4 double binary tree),
//                  hierarchical (intra RS, inter AR per rail, intra AG), nvls
//   reduce_scatter ring, hierarchical        all_gather ring, hierarchical
//   all_to_all     direct, hierarchical (DeepEP: fabric to the same-index GPU of the
//                  target node, then NVLink; node-limited routing)
//   broadcast, reduce: ring
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/overrides.hpp"
#include "workloads/program.hpp"

namespace tcsim::sim {

struct Transfer {
  int src = 0;  ///< physical rank
  int dst = 0;
  double bytes = 0;
};

/// Every ordered pair of distinct members, `bytes` each: the transfers of an even
/// all-to-all, kept as its members (n ints) instead of n(n-1) transfers (16.7 M, 268 MB at
/// 4,096 ranks). In row-major order: members[0] to members[1], members[2], ...
struct AllPairs {
  std::vector<int> members;
  double bytes = 0;
};

struct Phase {
  /// The transfers, unless all_pairs says them (then this is empty): read them with
  /// for_each_transfer and transfer_count.
  std::vector<Transfer> transfers;
  std::shared_ptr<const AllPairs> all_pairs;
  /// Multiplier on the bytes of this phase for algorithms whose data path has its own
  /// measured efficiency (NVLS): bytes x nvlink_eff / nvls_eff. 1 otherwise.
  double byte_scale = 1.0;
  /// The phase runs this many times back to back (the 2(n-1) identical steps of a ring
  /// are one Phase with repeat 2(n-1), not 2(n-1) copies of its transfers).
  size_t repeat = 1;
};

/// Calls f(src, dst, bytes) for each transfer of the phase, in order.
template <class F>
void for_each_transfer(const Phase& ph, F&& f) {
  if (ph.all_pairs) {
    const auto& m = ph.all_pairs->members;
    const double b = ph.all_pairs->bytes;
    for (size_t i = 0; i < m.size(); ++i)
      for (size_t j = 0; j < m.size(); ++j)
        if (i != j) f(m[i], m[j], b);
    return;
  }
  for (const Transfer& t : ph.transfers) f(t.src, t.dst, t.bytes);
}

/// How many transfers the phase has.
inline size_t transfer_count(const Phase& ph) {
  if (!ph.all_pairs) return ph.transfers.size();
  const size_t n = ph.all_pairs->members.size();
  return n * (n - 1);
}

/// The phase's transfers as a list (all_pairs expanded).
std::vector<Transfer> expand_transfers(const Phase& ph);

/// What an algorithm may know about the machine: node of each rank, whether NVLS exists.
struct TopologyView {
  std::vector<int> node_of_rank;
  bool nvls = false;
  double nvlink_efficiency = 1, nvls_efficiency = 0;
};

/// How the all-to-alls of a run are routed when they carry MoE tokens (DeepEP-style
/// deduplication). Set per run (`--set sim.moe.top_k=8 sim.moe.max_nodes=4`; simulate()
/// takes the defaults from the workload's MoE spec).
struct MoeRouting {
  /// Copies per token counted in an all-to-all's bytes (the MoE top-k); 0 = unknown, no
  /// deduplication (every copy travels on its own).
  int top_k = 0;
  /// Node-limited routing: a token reaches at most this many nodes (0 = unlimited).
  /// CollectiveOp::max_nodes, when set, takes precedence.
  int max_nodes = 0;
};

struct AlgorithmContext {
  MoeRouting moe;
};

struct Algorithm {
  std::string name;
  std::string description;  ///< one line, with the source it follows
  workloads::CollectiveType type;
  /// Whether it applies to this group (e.g. NVLS needs the group inside one NVLink domain).
  std::function<bool(const std::vector<int>& group, const TopologyView&)> applies;
  std::function<std::vector<Phase>(const std::vector<int>& group, const workloads::CollectiveOp&, const TopologyView&)>
      phases;
};

/// All registered algorithms, in a stable order (bound to a default AlgorithmContext).
const std::vector<Algorithm>& algorithms();
/// The registry bound to a context (what a configured AlgorithmSelector uses).
std::vector<Algorithm> algorithms(const AlgorithmContext& context);

/// Expected distinct nodes and ranks a token reaches when its top_k copies go to experts
/// spread evenly over `nodes` nodes of `gpus_per_node` ranks, limited to `max_nodes`
/// nodes (0 = unlimited), experts drawn uniformly: L (1 - (1 - 1/L)^k) with L the
/// reachable nodes (resp. ranks). The basis of DeepEP-style deduplication.
struct TokenFanout {
  double nodes = 0;  ///< distinct nodes per token
  double ranks = 0;  ///< distinct ranks per token
};
TokenFanout token_fanout(int top_k, int nodes, int gpus_per_node, int max_nodes);

/// Chooses algorithms per collective type: automatic as NCCL does (by group shape and
/// size), or forced with `--set sim.algo.<type>=<name>` (e.g. sim.algo.all_reduce=ring).
class AlgorithmSelector {
public:
  AlgorithmSelector();
  /// Takes the sim.algo.* and sim.moe.* keys; unknown types or names are InputErrors
  /// listing valid ones.
  void configure(core::Overrides& overrides);
  /// Sets the MoE routing used by all-to-alls (sim.moe.* keys given to configure win).
  void set_default_moe(const MoeRouting& moe);
  [[nodiscard]] const MoeRouting& moe() const { return context_.moe; }
  /// What decides the algorithms and their phases, as text: the forced algorithms and the
  /// MoE routing. Two selectors with the same text choose alike (EvaluationCache).
  [[nodiscard]] std::string selection() const;
  /// Throws InputError (with the fix) when a forced algorithm does not apply.
  [[nodiscard]] const Algorithm& select(const std::vector<int>& group, const workloads::CollectiveOp& op,
                                        const TopologyView& topo) const;
  /// The name auto-selection (or the override) picks, for reports and `bench`.
  static std::vector<std::string> keys();

  /// Size thresholds of the automatic choice (bytes per rank, nccl-tests convention).
  static constexpr double kTreeMaxBytes = 32.0 * 1024 * 1024;

private:
  void rebind();
  std::map<workloads::CollectiveType, std::string> forced_;
  AlgorithmContext context_;
  bool moe_top_k_set_ = false, moe_max_nodes_set_ = false;
  std::vector<Algorithm> bound_;
};

}  // namespace tcsim::sim
