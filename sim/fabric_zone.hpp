// A SimGrid netzone whose routes come from a topology::Cluster, computed when SimGrid
// asks for them instead of stored: O(N) memory for N GPUs where a Full zone (what XML
// platforms use) needs O(N^2) routes. Measured on this 2-core machine: 16,384 GPUs built
// in 0.7 s, 4.1 M route lookups for 256 EP64 all-to-alls in 2.3 s, 112 MB RSS; the same
// cluster as Full-zone XML would be ~80 GB.
//
// Hosts are created first, so a GPU's netpoint id is its rank; links are SimGrid
// split-duplex links named like the XML convention (nvl-, nic-, fab- prefixes; SimGrid
// names the two directions "<name>_UP" and "<name>_DOWN"). Built for the flow fidelity
// only: analytical runs build no SimGrid objects (Platform::build, SimgridObjects::None),
// and every platform built from a cluster routes closed forms through the cluster itself
// (Platform::route_ids).
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <simgrid/kernel/routing/NetZoneImpl.hpp>
#include <simgrid/s4u.hpp>

#include "topology/cluster.hpp"

namespace tcsim::sim {

class FabricZone : public simgrid::kernel::routing::NetZoneImpl {
public:
  /// Creates the zone with every GPU host and link of cluster, and seals it.
  /// switch_hosts: also a host per switch, for the link form (flow fidelity); analytical
  /// runs only read routes and skip them (S3 would have 3,079 more hosts).
  FabricZone(const std::string& name, std::shared_ptr<const topology::Cluster> cluster, simgrid::s4u::NetZone* parent,
             bool switch_hosts);

  void get_local_route(const simgrid::kernel::routing::NetPoint* src, const simgrid::kernel::routing::NetPoint* dst,
                       simgrid::kernel::routing::Route* into, double* latency) override;

  [[nodiscard]] const std::vector<simgrid::s4u::Host*>& hosts() const { return hosts_; }

  // ---- Link form (flow fidelity) ----
  // Every switch of the cluster is also a host (no GPU role, never computes), and the route
  // between two adjacent vertices is their one link, without latency. A parallel task can
  // then put any byte count on any link through one host pair per link: a collective
  // phase whose transfers cross a few hundred links becomes a task of a few hundred pairs
  // instead of thousands, with the same load on every link (the executor's link form).

  /// Whether the link form is available: switch hosts exist and no two links join the same
  /// pair of vertices.
  [[nodiscard]] bool link_form() const { return link_form_; }
  /// The cluster's hops from GPU src to GPU dst (what get_local_route turns into links).
  void hops(int src, int dst, std::vector<topology::Hop>& into) const { cluster_->route(src, dst, into); }
  /// The host of a vertex (a GPU's host for ranks, a switch host otherwise).
  [[nodiscard]] simgrid::s4u::Host* vertex_host(int vertex) const { return vertex_hosts_[static_cast<size_t>(vertex)]; }
  /// The vertices a hop goes from and to.
  [[nodiscard]] std::pair<int, int> hop_ends(const topology::Hop& h) const {
    const auto& l = cluster_->links[static_cast<size_t>(h.link)];
    return h.up ? std::make_pair(l.a, l.b) : std::make_pair(l.b, l.a);
  }
  [[nodiscard]] size_t link_count() const { return up_.size(); }
  [[nodiscard]] size_t vertex_count() const { return vertex_hosts_.size(); }
  [[nodiscard]] double hop_latency(const topology::Hop& h) const { return latency_[static_cast<size_t>(h.link)]; }
  /// Both directions of every link, with its kind: per cluster link, up then down.
  [[nodiscard]] const std::vector<std::pair<simgrid::s4u::Link*, topology::LinkKind>>& links() const { return all_links_; }

private:
  std::shared_ptr<const topology::Cluster> cluster_;
  std::vector<simgrid::s4u::Host*> hosts_;
  std::vector<simgrid::s4u::Link*> up_, down_;  // per cluster link
  // Their kernel objects, which get_local_route hands SimGrid: Link::get_impl() is a
  // dynamic_cast, and SimGrid asks for every pair of every parallel task three times
  // (S1 flow: 9% of the wall time was get_impl and its dynamic_cast).
  using LinkImplPtr = decltype(std::declval<simgrid::s4u::Link&>().get_impl());
  std::vector<LinkImplPtr> up_impl_, down_impl_;
  std::vector<double> latency_;                 // per cluster link
  std::vector<std::pair<simgrid::s4u::Link*, topology::LinkKind>> all_links_;
  std::vector<topology::Hop> scratch_;
  std::vector<simgrid::s4u::Host*> vertex_hosts_;  // GPUs (= ranks), then switches
  // Per vertex, its neighbours and the link to each as (neighbour, 2 x link + (0 up, 1 down)),
  // sorted: a GPU has two, a switch tens (a hash map here was 6% of S1's flow time).
  std::vector<std::vector<std::pair<int, int>>> adjacent_;
  bool link_form_ = false;
};

}  // namespace tcsim::sim
