// A cluster: N nodes x G GPUs of one type, each node an NVSwitch domain, joined by a
// scale-out fabric chosen by name from a registry. The cluster is a graph (GPUs and
// switches as vertices, links as edges) plus one explicit route for every ordered GPU
// pair, which is what a SimGrid Full-routing zone needs (see platforms/README.md).
// Routes are computed on demand (their number grows as N^2), never stored.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/overrides.hpp"
#include "core/units.hpp"
#include "topology/gpu.hpp"

namespace tcsim::topology {

/// other: a link of a hand-written platform that says none of these (generated clusters
/// have none).
enum class LinkKind : uint8_t { nvlink, nic, fabric, other };
const char* to_string(LinkKind kind);

/// A full-duplex link: `bandwidth` in each direction separately (SimGrid SPLITDUPLEX).
/// UP goes from endpoint `a` to endpoint `b` (from the GPU towards the core), DOWN back.
struct Link {
  std::string name;          ///< nvl-n{node}-g{i}, nic-n{node}-g{i}, fab-...
  core::BytesPerSecond bandwidth;  ///< per direction
  core::Seconds latency;
  LinkKind kind = LinkKind::fabric;
  int a = 0;                 ///< vertex at the lower end (GPU or lower-tier switch)
  int b = 0;                 ///< vertex at the upper end (switch)
};

/// One link of a route and the direction it is crossed in.
struct Hop {
  int link = 0;
  bool up = true;
};

/// A switching tier, for reports: its switches, how many downlinks and uplinks it has in
/// capacity, and the resulting oversubscription (down / up capacity; 1 = non-blocking).
struct Tier {
  std::string name;
  int switches = 0;
  core::BytesPerSecond down_capacity;  ///< per switch, per direction
  core::BytesPerSecond up_capacity;    ///< per switch, per direction (0 = top tier)
  [[nodiscard]] double oversubscription() const {
    return up_capacity.value() > 0 ? down_capacity.value() / up_capacity.value() : 1.0;
  }
};

/// Fabric options from `--set fabric.<key>=value`; each fabric declares which apply.
struct FabricOptions {
  core::Seconds nvlink_latency = core::Seconds(3.33e-6);  ///< GPU-to-GPU through the NVSwitch, end to end
  core::Seconds nic_latency = core::Seconds(2.8e-6);      ///< GPU-to-GPU under one leaf, end to end
  core::Seconds hop_latency = core::Seconds(0.45e-6);     ///< per switch-to-switch link
  int radix = 64;                 ///< switch ports (leaf and spine)
  double oversubscription = 1.0;  ///< leaf downlink : uplink capacity
  int nodes_per_rack = 2;         ///< clos3: nodes under one ToR
  int racks_per_pod = 192;        ///< clos3
  double pod_oversubscription = 7.0;  ///< clos3: pod uplinks to the aggregation layer
  int domain_gpus = 72;           ///< nvl72: GPUs per NVLink domain
};

/// One option key a fabric accepts, with its description and default.
struct FabricOption {
  std::string key;  ///< "fabric.radix"
  std::string description;
  std::string default_value;
};

struct FabricInfo {
  std::string name;
  std::string description;  ///< one line
  std::string citation;     ///< the paper or datasheet the shape follows
  std::vector<std::string> options;  ///< keys of fabric_options() it accepts
};

/// Every registered fabric, in a stable order.
const std::vector<FabricInfo>& fabrics();
/// Every fabric.* option key with description and default.
const std::vector<FabricOption>& fabric_options();

/// How a generated cluster routes, as plain data that Cluster::visit_route reads (closed
/// forms route every pair of every collective: S3 routes 100,000 pairs a run, and two
/// std::function calls and a hop vector per route were a tenth of its analytical run).
/// Filled by build_cluster per fabric. Link indices as in Cluster::links: nvl of rank r at
/// r, nic of rank r at gpus + r.
struct Routing {
  /// What a route between NVLink domains crosses: one switch (single-switch, nvl72), a
  /// two-tier tree per rail (rail-fat-tree), a disjoint tree per plane with NVLink
  /// forwarding at the destination (multi-plane-fat-tree), or ToR, pod and aggregation
  /// tiers (clos3).
  enum class ScaleOut : uint8_t { Switch, RailTree, Planes, Clos3 };
  ScaleOut scale_out = ScaleOut::Switch;
  int gpus = 0;
  int gpus_per_node = 1;
  int domain_gpus = 1;
  int leaves_per_rail = 0, downlinks = 1;      ///< RailTree, Planes: leaf of rank r
  int nodes_per_rack = 1, racks_per_pod = 1;   ///< Clos3
  std::vector<int> leaf_link, tor_link, pod_link;  ///< uplink of each leaf, ToR, pod

  /// How routes among a set of ranks move when every rank moves by the same number: per
  /// tier, how far its links move (positions in leaf_link, tor_link, pod_link). Valid when
  /// every route between two ranks of the set, both moved, has as many hops, hop k on the
  /// moved link of hop k (shift_link).
  struct Shift {
    bool valid = false;
    int ranks = 0, leaves = 0, tors = 0, pods = 0;
  };
  /// The shift of the ranks lo..hi (inclusive) by delta, when it moves their routes hop
  /// for hop: delta a multiple of the node size, and for each block that routes go through
  /// (NVLink domain; a leaf's nodes in trees; rack and pod in clos3) either a multiple of
  /// its size or lo..hi inside one block before and after (their routes then never leave
  /// it). Invalid (valid = false) otherwise, or when the moved ranks leave the cluster.
  [[nodiscard]] Shift shift(int lo, int hi, int delta) const;
  /// The link that `link` (a Cluster::links index on a route among the shifted ranks)
  /// becomes; -1 when there is none (not a link routes use, or moved off the cluster).
  [[nodiscard]] int shift_link(int link, const Shift& by) const {
    if (by.valid && link >= 0 && link < 2 * gpus) {  // nvl of rank link, nic of rank link - gpus
      const int r = (link < gpus ? link : link - gpus) + by.ranks;
      return r >= 0 && r < gpus ? link + by.ranks : -1;
    }
    return shift_uplink(link, by);
  }

private:
  [[nodiscard]] int shift_uplink(int link, const Shift& by) const;
};

class Cluster {
public:
  GpuSpec gpu;
  int nodes = 0;
  int gpus_per_node = 0;
  std::string fabric;
  FabricOptions options;
  std::vector<Link> links;
  /// Names of the switch vertices, which follow the GPUs': vertex v >= gpu_count() is
  /// switch_names[v - gpu_count()]. GPU vertices (vertex = rank) are named by host_name(),
  /// not stored (a 16,384-GPU cluster made 16,384 strings no analytical run reads).
  std::vector<std::string> switch_names;
  std::vector<Tier> tiers;
  int domain_gpus = 0;  ///< GPUs per NVLink domain (= gpus_per_node except nvl72)

  [[nodiscard]] int gpu_count() const { return nodes * gpus_per_node; }
  [[nodiscard]] int node_of(int rank) const { return rank / gpus_per_node; }
  [[nodiscard]] int index_of(int rank) const { return rank % gpus_per_node; }
  [[nodiscard]] int domain_of(int rank) const { return rank / domain_gpus; }
  /// "gpu-n{node}-g{index}"
  [[nodiscard]] std::string host_name(int rank) const;
  /// GPUs first (vertex = rank), then switches.
  [[nodiscard]] int vertex_count() const { return gpu_count() + static_cast<int>(switch_names.size()); }
  [[nodiscard]] std::string vertex_name(int v) const {
    return v < gpu_count() ? host_name(v) : switch_names[static_cast<size_t>(v - gpu_count())];
  }
  /// The route from GPU src to GPU dst (src != dst), into out (cleared first).
  void route(int src, int dst, std::vector<Hop>& out) const;
  /// The same route, hop by hop: hop(link index, up) in route order, nothing stored.
  template <class F>
  void visit_route(int src, int dst, F&& hop) const;
  /// Links of one kind.
  [[nodiscard]] int link_count(LinkKind kind) const;
  /// Per-direction bandwidth between the first and second half of the GPUs (by rank),
  /// computed as a max-flow over the link graph.
  [[nodiscard]] core::BytesPerSecond bisection_bandwidth() const;
  /// Most links on any route (sampled from the first and last GPU to all others).
  [[nodiscard]] int worst_case_hops() const;
  /// Checks that every sampled route is a path in the graph from src to dst; throws
  /// std::logic_error otherwise (a builder bug, not an input error).
  void check_routes_sampled() const;

  Routing routing;  ///< set by the builder
};

template <class F>
void Cluster::visit_route(int s, int d, F&& hop) const {
  const Routing& r = routing;
  if (s / r.domain_gpus == d / r.domain_gpus) {
    hop(s, true);   // nvl(s) UP
    hop(d, false);  // nvl(d) DOWN
    return;
  }
  const int n = r.gpus, G = r.gpus_per_node;
  // Up to the leaf of s's rail, across the spine when d's leaf is another, down to d.
  auto tree = [&](int a, int b) {
    hop(n + a, true);
    const int la = (a % G) * r.leaves_per_rail + (a / G) / r.downlinks, lb = (b % G) * r.leaves_per_rail + (b / G) / r.downlinks;
    if (la != lb) {
      hop(r.leaf_link[static_cast<size_t>(la)], true);
      hop(r.leaf_link[static_cast<size_t>(lb)], false);
    }
    hop(n + b, false);
  };
  switch (r.scale_out) {
    case Routing::ScaleOut::Switch:
      hop(n + s, true);
      hop(n + d, false);
      return;
    case Routing::ScaleOut::RailTree: tree(s, d); return;
    case Routing::ScaleOut::Planes: {
      // Planes are disjoint: over the source's plane to the destination node's GPU of the
      // same index, then forward over NVLink (as DeepEP does across nodes).
      const int m = (d / G) * G + s % G;
      tree(s, m);
      if (m != d) {
        hop(m, true);
        hop(d, false);
      }
      return;
    }
    case Routing::ScaleOut::Clos3: {
      const int ts = (s / G) / r.nodes_per_rack, td = (d / G) / r.nodes_per_rack;
      const int ps = ts / r.racks_per_pod, pd = td / r.racks_per_pod;
      hop(n + s, true);
      if (ts != td) {
        hop(r.tor_link[static_cast<size_t>(ts)], true);
        if (ps != pd) {
          hop(r.pod_link[static_cast<size_t>(ps)], true);
          hop(r.pod_link[static_cast<size_t>(pd)], false);
        }
        hop(r.tor_link[static_cast<size_t>(td)], false);
      }
      hop(n + d, false);
      return;
    }
  }
}

/// Builds a cluster; consumes the fabric.* keys of overrides that apply to the fabric.
/// Throws InputError for an unknown fabric, an option that does not apply, a radix that
/// cannot build the size, or nodes/gpus_per_node out of range.
Cluster build_cluster(const GpuSpec& gpu, int nodes, int gpus_per_node, const std::string& fabric,
                      core::Overrides& overrides);

}  // namespace tcsim::topology
