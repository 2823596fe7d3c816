#include "sim/collectives.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <unordered_map>

#include "core/error.hpp"
#include "core/quantity.hpp"

namespace tcsim::sim {

std::vector<Transfer> expand_transfers(const Phase& ph) {
  std::vector<Transfer> out;
  out.reserve(transfer_count(ph));
  for_each_transfer(ph, [&](int src, int dst, double bytes) { out.push_back({src, dst, bytes}); });
  return out;
}

using workloads::CollectiveOp;
using workloads::CollectiveType;

namespace {

using Group = std::vector<int>;

bool single_node(const Group& g, const TopologyView& t) {
  for (int r : g)
    if (t.node_of_rank[static_cast<size_t>(r)] != t.node_of_rank[static_cast<size_t>(g.front())]) return false;
  return true;
}

// The group split by node, nodes in order of first appearance, members in group order.
std::vector<Group> by_node(const Group& g, const TopologyView& t) {
  std::vector<Group> out;
  std::vector<int> node_ids;
  // Large groups (a data-parallel group spans a node per member) look their node up in a
  // map: the linear search was quadratic in the group (S3: 8% of its execution).
  std::unordered_map<int, uint32_t> index;
  const bool large = g.size() > 32;
  if (large) index.reserve(g.size());
  for (int r : g) {
    const int n = t.node_of_rank[static_cast<size_t>(r)];
    size_t at = node_ids.size();
    if (large) {
      at = index.try_emplace(n, static_cast<uint32_t>(node_ids.size())).first->second;
    } else {
      at = static_cast<size_t>(std::find(node_ids.begin(), node_ids.end(), n) - node_ids.begin());
    }
    if (at == node_ids.size()) {
      node_ids.push_back(n);
      out.push_back({r});
    } else {
      out[at].push_back(r);
    }
  }
  return out;
}

// Whether no two members share a node.
bool distinct_nodes(const Group& g, const TopologyView& t) {
  thread_local std::vector<char> seen;
  bool distinct = true;
  size_t marked = 0;
  for (; marked < g.size(); ++marked) {
    const auto n = static_cast<size_t>(t.node_of_rank[static_cast<size_t>(g[marked])]);
    if (n >= seen.size()) seen.resize(n + 1, 0);
    if (seen[n] != 0) {
      distinct = false;
      break;
    }
    seen[n] = 1;
  }
  for (size_t i = 0; i < marked; ++i) seen[static_cast<size_t>(t.node_of_rank[static_cast<size_t>(g[i])])] = 0;
  return distinct;
}

// Several nodes, each with the same number of members.
bool uniform_multi_node(const std::vector<Group>& nodes) {
  if (nodes.size() < 2) return false;
  for (const auto& n : nodes)
    if (n.size() != nodes.front().size()) return false;
  return true;
}

bool uniform_multi_node(const Group& g, const TopologyView& t) { return uniform_multi_node(by_node(g, t)); }

// The rings of one ring collective. One node (or an uneven group): the group in order.
// Several uniform nodes: one ring per local index (NCCL channels), ring c visiting each
// node's members rotated by c, so each channel leaves every node through a different
// GPU (and NIC) and the inter-node traffic spreads over all rails, as NCCL's rings do.
std::vector<Group> rings(const Group& g, const TopologyView& t) {
  // One node (a tensor-parallel group), or one member per node (a data-parallel group under
  // TP8): the one ring is the group in its order, as the general case below makes it,
  // without splitting the group by node.
  if (single_node(g, t) || (g.size() > 32 && distinct_nodes(g, t))) return {g};
  auto nodes = by_node(g, t);
  if (!uniform_multi_node(nodes)) return {g};
  const size_t G = nodes.front().size();
  std::vector<Group> out;
  for (size_t c = 0; c < G; ++c) {
    Group ring;
    for (const auto& n : nodes)
      for (size_t i = 0; i < G; ++i) ring.push_back(n[(c + i) % G]);
    out.push_back(std::move(ring));
  }
  return out;
}

// `steps` ring steps: in each, every member of every ring sends `chunk` to its successor.
std::vector<Phase> ring_steps(const std::vector<Group>& rs, double chunk, size_t steps) {
  std::vector<Phase> out;
  if (rs.empty() || rs.front().size() < 2 || chunk <= 0 || steps == 0) return out;
  Phase p;
  p.repeat = steps;
  for (const auto& r : rs)
    for (size_t i = 0; i < r.size(); ++i) p.transfers.push_back({r[i], r[(i + 1) % r.size()], chunk});
  out.push_back(std::move(p));
  return out;
}

// Ring collective over the group: `steps_per_n` x (n-1) steps of bytes / n, split over channels.
std::vector<Phase> ring_collective(const Group& g, const TopologyView& t, double bytes, size_t passes) {
  auto rs = rings(g, t);
  const double n = static_cast<double>(g.size());
  return ring_steps(rs, bytes / n / static_cast<double>(rs.size()), passes * (g.size() - 1));
}

void append(std::vector<Phase>& out, std::vector<Phase> more) {
  for (auto& p : more) out.push_back(std::move(p));
}

// Concurrent ring steps of several independent groups (e.g. every node's ring at once).
std::vector<Phase> parallel_rings(const std::vector<Group>& groups, double chunk, size_t steps) {
  std::vector<Group> rs;
  for (const auto& gr : groups)
    if (gr.size() >= 2) rs.push_back(gr);
  return ring_steps(rs, chunk, steps);
}

// Members with the same local index on every node (rails).
std::vector<Group> rails(const std::vector<Group>& nodes) {
  std::vector<Group> out(nodes.front().size());
  for (const auto& n : nodes)
    for (size_t i = 0; i < n.size(); ++i) out[i].push_back(n[i]);
  return out;
}

// ---- double binary tree (NCCL 2.4) ----
//
// NCCL builds, per channel, a chain through the GPUs of each node and two complementary
// binary trees over the nodes (a node is interior in at most one of them); each tree
// carries half the buffer, reduced up then broadcast down. We model one channel per
// local index c (chunk S/G): the chain of each node ends at local member c, which talks
// to the same-index GPU of its tree neighbours (same rail). Approximation: the pipelined
// reduce and the pipelined broadcast are one phase each (all tree and chain edges carry
// their share at once, so the phase takes as long as its most loaded link: about S/B each,
// i.e. algbw ~ B/2, which is NCCL's own tuning model for trees, "ratio .5"); the
// pipeline fill is modelled by depth-1 one-byte phases along the same edges before each
// of them, so the latency term is 2 x depth x alpha with depth = (G-1) + ceil(log2 M).
struct Edge {
  int child, parent;
  double bytes;
};

std::vector<Edge> tree_edges(const Group& g, const TopologyView& t, double S) {
  std::vector<Group> nodes = by_node(g, t);
  if (!uniform_multi_node(nodes)) nodes = {g};
  const size_t G = nodes.front().size(), M = nodes.size();
  const double c = S / static_cast<double>(G);
  std::vector<Edge> e;
  for (size_t ch = 0; ch < G; ++ch) {
    // Chain inside each node towards local member ch: ch+1 -> ch+2 -> ... -> ch.
    for (const auto& n : nodes)
      for (size_t i = 1; i < G; ++i) e.push_back({n[(ch + i) % G], n[(ch + i + 1) % G], c});
    // Two trees over the nodes on rail ch: heap order, and its mirror.
    for (size_t pos = 1; pos < M; ++pos) {
      size_t parent = (pos - 1) / 2;
      e.push_back({nodes[pos][ch], nodes[parent][ch], c / 2});
      e.push_back({nodes[M - 1 - pos][ch], nodes[M - 1 - parent][ch], c / 2});
    }
  }
  return e;
}

std::vector<Phase> tree_all_reduce(const Group& g, const CollectiveOp& op, const TopologyView& t) {
  std::vector<Phase> out;
  if (g.size() < 2 || op.bytes <= 0) return out;
  const auto nodes = by_node(g, t);
  const bool multi = uniform_multi_node(nodes);
  const size_t G = multi ? nodes.front().size() : g.size();
  const size_t M = multi ? nodes.size() : 1;
  const size_t depth = (G - 1) + static_cast<size_t>(std::ceil(std::log2(static_cast<double>(M))));
  auto edges = tree_edges(g, t, op.bytes);
  for (int dir = 0; dir < 2; ++dir) {  // 0: reduce up, 1: broadcast down
    if (depth > 1) {
      Phase fill;
      fill.repeat = depth - 1;
      for (const auto& e : edges) fill.transfers.push_back(dir == 0 ? Transfer{e.child, e.parent, 1} : Transfer{e.parent, e.child, 1});
      out.push_back(std::move(fill));
    }
    Phase bulk;
    for (const auto& e : edges)
      bulk.transfers.push_back(dir == 0 ? Transfer{e.child, e.parent, e.bytes} : Transfer{e.parent, e.child, e.bytes});
    out.push_back(std::move(bulk));
  }
  return out;
}

// ---- hierarchical (intra-node, then across rails, then intra-node) ----

std::vector<Phase> hier_all_reduce(const Group& g, const CollectiveOp& op, const TopologyView& t) {
  std::vector<Phase> out;
  if (op.bytes <= 0) return out;
  auto nodes = by_node(g, t);
  const size_t G = nodes.front().size(), M = nodes.size();
  const double S = op.bytes, Gd = static_cast<double>(G), Md = static_cast<double>(M);
  append(out, parallel_rings(nodes, S / Gd, G - 1));                      // reduce-scatter in each node
  append(out, parallel_rings(rails(nodes), S / Gd / Md, 2 * (M - 1)));   // ring all-reduce of S/G per rail
  append(out, parallel_rings(nodes, S / Gd, G - 1));                      // all-gather in each node
  return out;
}

std::vector<Phase> hier_reduce_scatter(const Group& g, const CollectiveOp& op, const TopologyView& t) {
  std::vector<Phase> out;
  if (op.bytes <= 0) return out;
  auto nodes = by_node(g, t);
  const size_t G = nodes.front().size(), M = nodes.size();
  const double S = op.bytes, Gd = static_cast<double>(G), Md = static_cast<double>(M);
  append(out, parallel_rings(nodes, S / Gd, G - 1));            // S -> S/G per GPU (blocks for its rail)
  append(out, parallel_rings(rails(nodes), S / Gd / Md, M - 1));  // S/G -> S/(G M) across the rail
  return out;
}

std::vector<Phase> hier_all_gather(const Group& g, const CollectiveOp& op, const TopologyView& t) {
  std::vector<Phase> out;
  if (op.bytes <= 0) return out;
  auto nodes = by_node(g, t);
  const size_t G = nodes.front().size(), M = nodes.size();
  const double S = op.bytes, Gd = static_cast<double>(G), Md = static_cast<double>(M);
  append(out, parallel_rings(rails(nodes), S / Gd / Md, M - 1));  // S/(G M) -> S/G across the rail
  append(out, parallel_rings(nodes, S / Gd, G - 1));              // S/G -> S in each node
  return out;
}

// ---- all-to-all ----

// Bytes member i sends to member j (matrix, or an even split of op.bytes).
// The all-to-all's n x n byte matrix (row: source position), or null for an even split.
const double* a2a_matrix(const CollectiveOp& op, size_t n) {
  return op.matrix && op.matrix->size() == n * n ? op.matrix->data() : nullptr;
}

double a2a_bytes(const CollectiveOp& op, size_t n, size_t i, size_t j) {
  if (const double* m = a2a_matrix(op, n)) return m[i * n + j];
  return op.bytes / static_cast<double>(n);
}

std::vector<Phase> direct_all_to_all(const Group& g, const CollectiveOp& op, const TopologyView&) {
  std::vector<Phase> out;
  const size_t n = g.size();
  if (n < 2) return out;
  Phase p;
  if (a2a_matrix(op, n) == nullptr) {  // even: every pair the same bytes
    const double b = a2a_bytes(op, n, 0, 1);
    if (b > 0) {
      p.all_pairs = std::make_shared<const AllPairs>(AllPairs{g, b});
      out.push_back(std::move(p));
    }
    return out;
  }
  p.transfers.reserve(n * (n - 1));  // all pairs when even: no regrowth (a million at 1,024 ranks)
  for (size_t i = 0; i < n; ++i)
    for (size_t j = 0; j < n; ++j) {
      const double b = a2a_bytes(op, n, i, j);
      if (i != j && b > 0) p.transfers.push_back({g[i], g[j], b});
    }
  if (!p.transfers.empty()) out.push_back(std::move(p));
  return out;
}

// DeepEP normal kernels (github.com/deepseek-ai/DeepEP; DeepSeek-V3 arXiv 2412.19437
// sec 3.2.2): a token for node b leaves its GPU once over RDMA to the GPU of node b with
// the same local index, which forwards it over NVLink to each GPU of b holding one of its
// experts; tokens for the own node go over NVLink directly. With MoE routing known
// (top-k copies in the bytes, optional node limit), copies are deduplicated as DeepEP
// does: one RDMA transfer per (token, target node), one NVLink transfer per (token,
// target rank), using the expected fan-out of token_fanout(). DeepEP pipelines RDMA and
// NVLink forwarding in chunks, so both legs are one phase (the slower path sets the time).
std::vector<Phase> hier_all_to_all(const Group& g, const CollectiveOp& op, const TopologyView& t, const MoeRouting& moe) {
  std::vector<Phase> out;
  const size_t n = g.size();
  if (n < 2) return out;
  auto nodes = by_node(g, t);
  const size_t M = nodes.size(), G = nodes.front().size();
  // Position of each member: node slot and local index; and the position of each member
  // of each node (relays).
  // Bytes are keyed by rank pair: canon[i] is the position that stands for rank g[i].
  std::vector<size_t> node_slot(n), local(n), canon(n);
  std::vector<std::vector<size_t>> node_pos(M);
  {
    std::map<int, size_t> pos;
    for (size_t i = 0; i < n; ++i) pos[g[i]] = i;
    for (size_t i = 0; i < n; ++i) canon[i] = pos[g[i]];
    for (size_t a = 0; a < M; ++a)
      for (size_t i = 0; i < nodes[a].size(); ++i) {
        const size_t p = pos[nodes[a][i]];
        node_slot[p] = a;
        local[p] = i;
        node_pos[a].push_back(p);
      }
  }
  double node_ratio = 1, rank_ratio = 1;  // bytes actually sent per counted copy
  const int max_nodes = op.max_nodes > 0 ? static_cast<int>(op.max_nodes) : moe.max_nodes;
  if (moe.top_k > 0) {
    auto f = token_fanout(moe.top_k, static_cast<int>(M), static_cast<int>(G), max_nodes);
    node_ratio = f.nodes / moe.top_k;
    rank_ratio = f.ranks / moe.top_k;
  }
  // Bytes per (source position, destination position): an n x n array, not a map keyed by
  // rank pair (S1 plans 64-rank all-to-alls of this kind; the map was 8% of its analytical
  // execution). Emitted below in (source rank, destination rank) order, as the map was.
  std::vector<double> acc(n * n, 0.0);
  // The positions on each node, ascending (the order the sums below add them in): scanning
  // all n positions for every (source, node) was n x n x nodes steps, 13% of plan search.
  std::vector<std::vector<size_t>> on_node(M);
  for (size_t j = 0; j < n; ++j) on_node[node_slot[j]].push_back(j);
  // a2a_bytes, with the even split's op.bytes / n computed once.
  const double* matrix = a2a_matrix(op, n);
  const double even = op.bytes / static_cast<double>(n);
  for (size_t i = 0; i < n; ++i) {
    const double* row = matrix != nullptr ? matrix + i * n : nullptr;
    double* own_row = acc.data() + canon[i] * n;
    for (size_t b = 0; b < M; ++b) {
      if (b == node_slot[i]) {  // own node: NVLink
        for (size_t j : on_node[b]) {
          const double bytes = row != nullptr ? row[j] : even;
          if (bytes > 0 && i != j) own_row[canon[j]] += bytes * rank_ratio;
        }
        continue;
      }
      // Forwarded by the same-index GPU of node b, unless that GPU is the target.
      const size_t relay = node_pos[b][std::min(local[i], nodes[b].size() - 1)];
      double* relay_row = acc.data() + relay * n;
      double to_node = 0;
      for (size_t j : on_node[b]) {
        const double bytes = row != nullptr ? row[j] : even;
        if (bytes <= 0) continue;
        to_node += bytes;
        if (relay != canon[j]) relay_row[canon[j]] += bytes * rank_ratio;
      }
      if (to_node > 0) own_row[relay] += to_node * node_ratio;
    }
  }
  std::vector<size_t> by_rank;  // one position per rank, by rank
  for (size_t i = 0; i < n; ++i)
    if (canon[i] == i) by_rank.push_back(i);
  std::sort(by_rank.begin(), by_rank.end(), [&](size_t a, size_t b) { return g[a] < g[b]; });
  Phase p;
  for (size_t s : by_rank)
    for (size_t d : by_rank)
      if (const double v = acc[s * n + d]; v > 0) p.transfers.push_back({g[s], g[d], v});
  if (!p.transfers.empty()) out.push_back(std::move(p));
  return out;
}

std::vector<Algorithm> build(const AlgorithmContext& ctx) {
  std::vector<Algorithm> a;
  auto always = [](const Group&, const TopologyView&) { return true; };
  auto uniform = [](const Group& g, const TopologyView& t) { return uniform_multi_node(g, t); };
  auto one_or_uniform = [](const Group& g, const TopologyView& t) { return single_node(g, t) || uniform_multi_node(g, t); };

  a.push_back({"ring",
               "ring all-reduce: reduce-scatter then all-gather, 2(n-1) steps of S/n; across nodes one ring per local "
               "index (NCCL channels over all rails) (NCCL ring; Patarasuk & Yuan 2009)",
               CollectiveType::AllReduce, always,
               [](const Group& g, const CollectiveOp& op, const TopologyView& t) { return ring_collective(g, t, op.bytes, 2); }});
  a.push_back({"tree",
               "double binary tree all-reduce: chain in each node, two complementary binary trees over nodes per rail, "
               "reduce then broadcast; latency 2 x depth x alpha (NCCL 2.4 trees, Sanders et al. 2009)",
               CollectiveType::AllReduce, one_or_uniform, tree_all_reduce});
  a.push_back({"hierarchical",
               "hierarchical all-reduce: ring reduce-scatter in each node, ring all-reduce of S/G across nodes between "
               "same-index GPUs (rails), ring all-gather in each node (Horovod/BlueConnect hierarchical all-reduce)",
               CollectiveType::AllReduce, uniform, hier_all_reduce});
  a.push_back({"nvls",
               "NVLink SHARP all-reduce inside one NVSwitch domain: each GPU sends S into the switch and receives the reduced "
               "S (NCCL NVLS algorithm); needs NVSwitch gen 3 (Hopper and later)",
               CollectiveType::AllReduce,
               [](const Group& g, const TopologyView& t) { return t.nvls && t.nvls_efficiency > 0 && single_node(g, t); },
               [](const Group& g, const CollectiveOp& op, const TopologyView& t) {
                 // S up and S down per GPU: spread over the other members so each GPU's
                 // NVLink port carries exactly S each way; NVLS's own efficiency applies.
                 std::vector<Phase> out;
                 if (g.size() < 2 || op.bytes <= 0) return out;
                 Phase p;
                 const double per_peer = op.bytes / static_cast<double>(g.size() - 1);
                 for (int s : g)
                   for (int d : g)
                     if (s != d) p.transfers.push_back({s, d, per_peer});
                 p.byte_scale = t.nvlink_efficiency / t.nvls_efficiency;
                 out.push_back(std::move(p));
                 return out;
               }});
  a.push_back({"ring", "ring reduce-scatter: n-1 steps of S/n; across nodes one ring per local index (NCCL ring)",
               CollectiveType::ReduceScatter, always,
               [](const Group& g, const CollectiveOp& op, const TopologyView& t) { return ring_collective(g, t, op.bytes, 1); }});
  a.push_back({"hierarchical",
               "hierarchical reduce-scatter: ring reduce-scatter in each node (S -> S/G), then across nodes between "
               "same-index GPUs (S/G -> S/(G M))",
               CollectiveType::ReduceScatter, uniform, hier_reduce_scatter});
  a.push_back({"ring", "ring all-gather: n-1 steps of S/n; across nodes one ring per local index (NCCL ring)",
               CollectiveType::AllGather, always,
               [](const Group& g, const CollectiveOp& op, const TopologyView& t) { return ring_collective(g, t, op.bytes, 1); }});
  a.push_back({"hierarchical",
               "hierarchical all-gather: across nodes between same-index GPUs (S/(G M) -> S/G), then ring all-gather in "
               "each node (S/G -> S)",
               CollectiveType::AllGather, uniform, hier_all_gather});
  a.push_back({"ring", "pipelined ring broadcast: the buffer flows once around the ring (NCCL ring)", CollectiveType::Broadcast, always,
               [](const Group& g, const CollectiveOp& op, const TopologyView&) {
                 std::vector<Phase> out;
                 if (g.size() < 2) return out;
                 Phase p;
                 for (size_t i = 0; i + 1 < g.size(); ++i) p.transfers.push_back({g[i], g[i + 1], op.bytes});
                 out.push_back(std::move(p));
                 return out;
               }});
  a.push_back({"ring", "pipelined ring reduce towards the root (NCCL ring)", CollectiveType::Reduce, always,
               [](const Group& g, const CollectiveOp& op, const TopologyView&) {
                 std::vector<Phase> out;
                 if (g.size() < 2) return out;
                 Phase p;
                 for (size_t i = g.size() - 1; i > 0; --i) p.transfers.push_back({g[i], g[i - 1], op.bytes});
                 out.push_back(std::move(p));
                 return out;
               }});
  a.push_back({"direct", "direct all-to-all: every rank sends its S/n slice to every other rank at once (NCCL all-to-all via send/recv)",
               CollectiveType::AllToAll, always, direct_all_to_all});
  a.push_back({"hierarchical",
               "DeepEP-style all-to-all: RDMA once per (token, node) to the same-index GPU of the target node, then NVLink "
               "forwarding; node-limited routing; pipelined (DeepEP normal kernels, DeepSeek-V3 arXiv 2412.19437 sec 3.2.2)",
               CollectiveType::AllToAll, always,
               [moe = ctx.moe](const Group& g, const CollectiveOp& op, const TopologyView& t) {
                 return hier_all_to_all(g, op, t, moe);
               }});
  return a;
}

const char* type_key(CollectiveType t) { return workloads::to_string(t); }

}  // namespace

TokenFanout token_fanout(int top_k, int nodes, int gpus_per_node, int max_nodes) {
  TokenFanout f;
  if (top_k <= 0 || nodes <= 0 || gpus_per_node <= 0) return f;
  const double L = static_cast<double>(max_nodes > 0 ? std::min(max_nodes, nodes) : nodes);
  const double R = L * gpus_per_node;
  const double k = top_k;
  f.nodes = L * (1 - std::pow(1 - 1 / L, k));
  f.ranks = R * (1 - std::pow(1 - 1 / R, k));
  return f;
}

const std::vector<Algorithm>& algorithms() {
  static const std::vector<Algorithm> all = build(AlgorithmContext{});
  return all;
}

std::vector<Algorithm> algorithms(const AlgorithmContext& context) { return build(context); }

AlgorithmSelector::AlgorithmSelector() { rebind(); }

void AlgorithmSelector::rebind() { bound_ = build(context_); }

std::vector<std::string> AlgorithmSelector::keys() {
  std::vector<std::string> k;
  std::set<std::string> seen;
  for (const auto& a : algorithms()) {
    std::string key = std::string("sim.algo.") + type_key(a.type);
    if (seen.insert(key).second) k.push_back(key);
  }
  k.push_back("sim.moe.top_k");
  k.push_back("sim.moe.max_nodes");
  return k;
}

std::string AlgorithmSelector::selection() const {
  std::string s = "moe.top_k=" + std::to_string(context_.moe.top_k) + " moe.max_nodes=" + std::to_string(context_.moe.max_nodes);
  for (const auto& [type, name] : forced_) s += " " + std::string(type_key(type)) + "=" + name;
  return s;
}

void AlgorithmSelector::set_default_moe(const MoeRouting& moe) {
  if (!moe_top_k_set_) context_.moe.top_k = moe.top_k;
  if (!moe_max_nodes_set_) context_.moe.max_nodes = moe.max_nodes;
  rebind();
}

void AlgorithmSelector::configure(core::Overrides& overrides) {
  for (const char* key : {"sim.moe.top_k", "sim.moe.max_nodes"}) {
    if (auto v = overrides.take(key)) {
      const int64_t x = core::parse_integer(*v, overrides.where(key));
      if (x < 0 || x > 1024) throw core::InputError(overrides.where(key), "expected a whole number in 0..1024, got '" + *v + "'");
      if (std::string(key) == "sim.moe.top_k") {
        context_.moe.top_k = static_cast<int>(x);
        moe_top_k_set_ = true;
      } else {
        context_.moe.max_nodes = static_cast<int>(x);
        moe_max_nodes_set_ = true;
      }
    }
  }
  for (const auto& key : overrides.keys_with_prefix("sim.algo.")) {
    std::string type = key.substr(9);
    bool type_known = false;
    std::string names;
    for (const auto& a : algorithms()) {
      if (type_key(a.type) != type) continue;
      type_known = true;
      names += (names.empty() ? "" : ", ") + a.name;
    }
    if (!type_known) {
      std::string types;
      for (const auto& k : keys())
        if (k.rfind("sim.algo.", 0) == 0) types += (types.empty() ? "" : ", ") + k;
      throw core::InputError(overrides.where(key), "unknown collective type; valid keys: " + types);
    }
    std::string value = *overrides.take(key);
    if (value == "auto") continue;
    bool found = false;
    for (const auto& a : algorithms())
      if (type_key(a.type) == type && a.name == value) {
        forced_[a.type] = value;
        found = true;
      }
    if (!found) throw core::InputError(overrides.where(key), "unknown algorithm '" + value + "'; valid: auto, " + names);
  }
  rebind();
}

const Algorithm& AlgorithmSelector::select(const std::vector<int>& group, const CollectiveOp& op,
                                           const TopologyView& topo) const {
  auto find = [&](const char* name) -> const Algorithm* {
    for (const auto& a : bound_)
      if (a.type == op.type && a.name == name) return &a;
    return nullptr;
  };
  auto forced = forced_.find(op.type);
  if (forced != forced_.end()) {
    const Algorithm* a = find(forced->second.c_str());
    if (a != nullptr) {
      if (!a->applies(group, topo)) {
        std::string why;
        if (a->name == "nvls") why = "this GPU's NVSwitch has no in-switch reduction (NVLS needs Hopper or later) or the group spans nodes";
        else if (a->name == "hierarchical" || a->name == "tree") why = "the group must span several nodes with the same number of members on each";
        throw core::InputError("--set sim.algo." + std::string(type_key(op.type)) + "=" + a->name,
                               "algorithm '" + a->name + "' does not apply to a group of " + std::to_string(group.size()) +
                                   " ranks here" + (why.empty() ? "" : " (" + why + ")") +
                                   "; use sim.algo." + type_key(op.type) + "=auto or another algorithm (" + a->description + ")");
      }
      return *a;
    }
  }
  // Automatic, as NCCL does. All-reduce: NVLS inside one NVSwitch domain when the switch
  // reduces; ring inside a node otherwise; across nodes the latency-bound tree for small
  // buffers and rings (one per rail) for large ones. Reduce-scatter and all-gather: ring.
  // All-to-all: DeepEP-style hierarchical when the run routes MoE tokens with a node
  // limit (DeepSeek-V3's setting), direct otherwise.
  auto pick = [&](const char* name) -> const Algorithm* {
    const Algorithm* a = find(name);
    return a != nullptr && a->applies(group, topo) ? a : nullptr;
  };
  const Algorithm* chosen = nullptr;
  switch (op.type) {
    case CollectiveType::AllReduce:
      chosen = pick("nvls");
      if (chosen == nullptr && !single_node(group, topo) && op.bytes <= kTreeMaxBytes) chosen = pick("tree");
      break;
    case CollectiveType::AllToAll:
      if (!single_node(group, topo) && (op.max_nodes > 0 || context_.moe.max_nodes > 0)) chosen = pick("hierarchical");
      break;
    default: break;
  }
  if (chosen == nullptr) chosen = pick(op.type == CollectiveType::AllToAll ? "direct" : "ring");
  if (chosen == nullptr) throw std::logic_error("no collective algorithm registered for " + std::string(type_key(op.type)));
  return *chosen;
}

}  // namespace tcsim::sim
