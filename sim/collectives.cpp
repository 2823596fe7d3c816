#include "sim/collectives.hpp"

#include <set>

#include "core/error.hpp"

namespace tcsim::sim {
using workloads::CollectiveOp;
using workloads::CollectiveType;

namespace {

bool single_node(const std::vector<int>& g, const TopologyView& t) {
  for (int r : g)
    if (t.node_of_rank[static_cast<size_t>(r)] != t.node_of_rank[static_cast<size_t>(g.front())]) return false;
  return true;
}

// One ring step: every member sends `bytes` to its successor.
Phase ring_step(const std::vector<int>& g, double bytes) {
  Phase p;
  const size_t n = g.size();
  for (size_t i = 0; i < n; ++i) p.transfers.push_back({g[i], g[(i + 1) % n], bytes});
  return p;
}

std::vector<Phase> ring(const std::vector<int>& g, double chunk, size_t steps) {
  std::vector<Phase> out;
  if (g.size() < 2 || chunk <= 0) return out;
  for (size_t s = 0; s < steps; ++s) out.push_back(ring_step(g, chunk));
  return out;
}

std::vector<Algorithm> build() {
  std::vector<Algorithm> a;
  auto always = [](const std::vector<int>&, const TopologyView&) { return true; };

  a.push_back({"ring", "ring all-reduce: reduce-scatter then all-gather, 2(n-1) steps of S/n (NCCL ring; Patarasuk & Yuan 2009)",
               CollectiveType::AllReduce, always,
               [](const std::vector<int>& g, const CollectiveOp& op, const TopologyView&) {
                 const double n = static_cast<double>(g.size());
                 return ring(g, op.bytes / n, 2 * (g.size() - 1));
               }});
  a.push_back({"nvls", "NVLink SHARP all-reduce inside one NVSwitch domain: each GPU sends S into the switch and receives the reduced S (NCCL NVLS algorithm)",
               CollectiveType::AllReduce,
               [](const std::vector<int>& g, const TopologyView& t) { return t.nvls && t.nvls_efficiency > 0 && single_node(g, t); },
               [](const std::vector<int>& g, const CollectiveOp& op, const TopologyView& t) {
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
  a.push_back({"ring", "ring reduce-scatter: n-1 steps of S/n (NCCL ring)", CollectiveType::ReduceScatter, always,
               [](const std::vector<int>& g, const CollectiveOp& op, const TopologyView&) {
                 return ring(g, op.bytes / static_cast<double>(g.size()), g.size() - 1);
               }});
  a.push_back({"ring", "ring all-gather: n-1 steps of S/n (NCCL ring)", CollectiveType::AllGather, always,
               [](const std::vector<int>& g, const CollectiveOp& op, const TopologyView&) {
                 return ring(g, op.bytes / static_cast<double>(g.size()), g.size() - 1);
               }});
  a.push_back({"ring", "pipelined ring broadcast: the buffer flows once around the ring (NCCL ring)", CollectiveType::Broadcast, always,
               [](const std::vector<int>& g, const CollectiveOp& op, const TopologyView&) {
                 std::vector<Phase> out;
                 if (g.size() < 2) return out;
                 Phase p;
                 for (size_t i = 0; i + 1 < g.size(); ++i) p.transfers.push_back({g[i], g[i + 1], op.bytes});
                 out.push_back(std::move(p));
                 return out;
               }});
  a.push_back({"ring", "pipelined ring reduce towards the root (NCCL ring)", CollectiveType::Reduce, always,
               [](const std::vector<int>& g, const CollectiveOp& op, const TopologyView&) {
                 std::vector<Phase> out;
                 if (g.size() < 2) return out;
                 Phase p;
                 for (size_t i = g.size() - 1; i > 0; --i) p.transfers.push_back({g[i], g[i - 1], op.bytes});
                 out.push_back(std::move(p));
                 return out;
               }});
  a.push_back({"direct", "direct all-to-all: every rank sends its S/n slice to every other rank at once (NCCL all-to-all via send/recv)",
               CollectiveType::AllToAll, always,
               [](const std::vector<int>& g, const CollectiveOp& op, const TopologyView&) {
                 std::vector<Phase> out;
                 const size_t n = g.size();
                 if (n < 2) return out;
                 Phase p;
                 if (op.matrix && op.matrix->size() == n * n) {
                   for (size_t i = 0; i < n; ++i)
                     for (size_t j = 0; j < n; ++j)
                       if (i != j && (*op.matrix)[i * n + j] > 0) p.transfers.push_back({g[i], g[j], (*op.matrix)[i * n + j]});
                 } else {
                   const double slice = op.bytes / static_cast<double>(n);
                   if (slice <= 0) return out;
                   for (size_t i = 0; i < n; ++i)
                     for (size_t j = 0; j < n; ++j)
                       if (i != j) p.transfers.push_back({g[i], g[j], slice});
                 }
                 out.push_back(std::move(p));
                 return out;
               }});
  return a;
}

const char* type_key(CollectiveType t) { return workloads::to_string(t); }

}  // namespace

const std::vector<Algorithm>& algorithms() {
  static const std::vector<Algorithm> all = build();
  return all;
}

std::vector<std::string> AlgorithmSelector::keys() {
  std::vector<std::string> k;
  std::set<std::string> seen;
  for (const auto& a : algorithms()) {
    std::string key = std::string("sim.algo.") + type_key(a.type);
    if (seen.insert(key).second) k.push_back(key);
  }
  return k;
}

void AlgorithmSelector::configure(core::Overrides& overrides) {
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
      for (const auto& k : keys()) types += (types.empty() ? "" : ", ") + k;
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
}

const Algorithm& AlgorithmSelector::select(const std::vector<int>& group, const CollectiveOp& op,
                                           const TopologyView& topo) const {
  auto forced = forced_.find(op.type);
  if (forced != forced_.end()) {
    for (const auto& a : algorithms()) {
      if (a.type == op.type && a.name == forced->second) {
        if (!a.applies(group, topo)) {
          throw core::InputError("--set sim.algo." + std::string(type_key(op.type)),
                                 "algorithm '" + a.name + "' does not apply here (" + a.description +
                                     "); use auto or another algorithm");
        }
        return a;
      }
    }
  }
  // Automatic, as NCCL does on NVSwitch systems: NVLS for all-reduce inside one NVLink
  // domain when the switch supports it, ring otherwise; direct all-to-all.
  const Algorithm* fallback = nullptr;
  for (const auto& a : algorithms()) {
    if (a.type != op.type) continue;
    if (a.name == "nvls" && a.applies(group, topo)) return a;
    if (fallback == nullptr && a.applies(group, topo)) fallback = &a;
  }
  if (fallback == nullptr) throw std::logic_error("no collective algorithm registered for " + std::string(type_key(op.type)));
  return *fallback;
}

}  // namespace tcsim::sim
