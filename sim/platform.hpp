// The loaded platform: GPUs in rank order with their spec, every link direction with its
// effective bandwidth (line rate x the GPU family's calibrated efficiency), and the routes
// between GPUs as link ids. XML platforms are loaded into SimGrid and read back from it
// (host properties, see platforms/README.md). Generated clusters are built in memory:
// as SimGrid objects for the flow fidelity, or without any (no zone, host or link) for
// the analytical fidelity, whose closed forms only need the link table and the routes.
// The only bridge between topology/ data and SimGrid objects.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include <simgrid/s4u.hpp>

#include "core/overrides.hpp"
#include "sim/calibration.hpp"
#include "topology/cluster.hpp"
#include "topology/gpu.hpp"

namespace tcsim::sim {

class FabricZone;

struct GpuHost {
  simgrid::s4u::Host* host = nullptr;  ///< nullptr on a platform built without SimGrid objects
  int rank = 0;
  int node = 0;
  int index = 0;  ///< GPU index inside its node (its rail / plane)
  int domain = 0; ///< NVLink domain (the node, or a rack-scale domain such as NVL72)
};

/// One direction of a link. Its id is its position in Platform::all_links(); its name is
/// Platform::link_name(id) (a 16,384-GPU cluster has 100,000 of them: no string here).
struct LinkInfo {
  double bandwidth = 0;  ///< effective: line rate (after gpu.* re-rating) x calibrated efficiency
  double latency = 0;
  simgrid::s4u::Link* sg = nullptr;  ///< the SimGrid link; nullptr without SimGrid objects
  topology::LinkKind kind = topology::LinkKind::other;
  bool fatpipe = false;  ///< limits each flow, not their sum (SimGrid's FATPIPE)
};
static_assert(sizeof(LinkInfo) <= 32, "S3 holds 100,000 links: first writes to their memory cost more than the work");

/// What SimGrid objects Platform::build creates for a generated cluster.
enum class SimgridObjects {
  None,             ///< none (analytical fidelity): GPUs, links and routes from the cluster alone
  Gpus,             ///< a zone with the GPU hosts and links (flow fidelity)
  GpusAndSwitches,  ///< and a host per switch, for the flow fidelity's link form (sim/link_form.hpp)
};

class Platform {
public:
  /// Loads path into the engine (once per process) and collects the GPU hosts. gpu.*
  /// overrides apply to every GPU's spec; gpu.nvlink_bw and gpu.nic_bw also re-rate the
  /// nvlink/nic links of the platform, so a sweep need not regenerate the XML.
  /// Link bandwidths are then scaled by the family's calibrated efficiencies.
  static Platform load(simgrid::s4u::Engine& engine, const std::string& path, core::Overrides& overrides);
  /// Builds the platform of a generated cluster in memory, routes computed on demand, so
  /// it scales to tens of thousands of GPUs. gpu.* overrides must already be in
  /// cluster.gpu. With SimGrid objects: the zone of sim/fabric_zone.hpp, same hosts,
  /// properties and links as the cluster's `topo gen` XML. Without (analytical fidelity):
  /// the same GPUs, spec, link table (names, order, bandwidths) and routes, and nothing in
  /// the engine; GpuHost::host, timer_host() and fabric() are then nullptr. The platform
  /// keeps the cluster (move it in: S3's took 8 ms to copy).
  static Platform build(simgrid::s4u::Engine& engine, topology::Cluster cluster, core::Overrides& overrides,
                        SimgridObjects objects = SimgridObjects::GpusAndSwitches);
  /// The same without SimGrid objects (SimgridObjects::None), for which no engine is
  /// needed: the analytical fidelity runs without one (creating it costs 3 ms).
  static Platform build(topology::Cluster cluster, core::Overrides& overrides);

  [[nodiscard]] const std::vector<GpuHost>& gpus() const { return gpus_; }
  [[nodiscard]] int size() const { return static_cast<int>(gpus_.size()); }
  [[nodiscard]] int gpus_per_node() const { return gpus_per_node_; }
  [[nodiscard]] int nodes() const { return nodes_; }
  /// The GPU spec (all GPUs of a platform are of one type; mixed platforms are rejected).
  [[nodiscard]] const topology::GpuSpec& spec() const { return spec_; }
  [[nodiscard]] const FamilyCalibration& calibration() const { return calibration_; }
  [[nodiscard]] const std::string& path() const { return path_; }
  /// Every link of the platform, each direction separately, sorted by name (as SimGrid
  /// names them). A link's position here is its id, for per-link arrays (closed forms,
  /// link accounting, utilisation reports). XML platforms also list SimGrid's
  /// __loopback__; in-memory ones list the cluster's links only.
  [[nodiscard]] const std::vector<LinkInfo>& all_links() const { return links_; }
  /// SimGrid's name of link id: "<link>_UP" / "<link>_DOWN" for split-duplex links.
  [[nodiscard]] std::string link_name(uint32_t id) const;
  /// The route from GPU rank src to GPU rank dst as link ids, latencies added to *latency,
  /// as SimGrid routes it (in-memory platforms answer from their cluster, hop by hop).
  void route_ids(int src, int dst, std::vector<uint32_t>& ids, double* latency) const;
  /// The same route, link id by link id: f(id) in route order, nothing stored for
  /// in-memory platforms. Returns the route's latency (added hop by hop, as route_ids).
  template <class F>
  double for_each_hop(int src, int dst, F&& f) const;
  /// How routes among ranks lo..hi move when the ranks move by delta
  /// (topology::Routing::shift) on an in-memory platform; never valid on an XML platform,
  /// whose routes are SimGrid's.
  [[nodiscard]] topology::Routing::Shift route_shift(int lo, int hi, int delta) const {
    return cluster_ != nullptr ? cluster_->routing.shift(lo, hi, delta) : topology::Routing::Shift{};
  }
  /// The links of `from` (id, bytes) as the moved routes cross them: each id replaced by
  /// that of the same direction of its moved link, bytes kept, into `to`. False when a link
  /// does not move (topology::Routing::shift_link) or moves onto one of another bandwidth,
  /// latency, kind or sharing (a route over it would not take the same time).
  bool shift_links(const std::vector<std::pair<uint32_t, double>>& from, const topology::Routing::Shift& by,
                   std::vector<std::pair<uint32_t, double>>& to) const;
  /// A host outside the network with a million cores of speed 1: timers (compute ops,
  /// delays) run on it in parallel without sharing, an exec of d flops lasting d seconds.
  /// nullptr without SimGrid objects (the flow fidelity only).
  [[nodiscard]] simgrid::s4u::Host* timer_host() const { return timer_host_; }
  /// The in-memory fabric's SimGrid zone (sim/fabric_zone.hpp), or nullptr for an XML
  /// platform or one built without SimGrid objects.
  [[nodiscard]] const FabricZone* fabric() const { return fabric_; }

private:
  static Platform build(simgrid::s4u::Engine* engine, topology::Cluster cluster, core::Overrides& overrides, SimgridObjects objects);
  // The GPU hosts of the engine (every host with tcsim.role=gpu), checked, in rank order,
  // and spec_ from the first one's properties; a timer host is added under parent.
  void collect_hosts(simgrid::s4u::Engine& engine, simgrid::s4u::NetZone* parent);
  // gpu.* overrides on spec_, then calibration_ for its family.
  void apply_overrides(core::Overrides& overrides);
  // Fills links_ in `order` (input positions in name order; link_at(input position) gives
  // one, name_of(input position) its name as two parts to join), checks them, re-rates
  // nvlink/nic links where gpu.nvlink_bw / gpu.nic_bw moved spec_ away from `before`,
  // applies the calibrated efficiencies (to the SimGrid links too).
  template <class NameOf, class LinkAt>
  void set_links(const std::vector<uint32_t>& order, NameOf name_of, LinkAt link_at, const topology::GpuSpec& before);
  std::string path_;
  std::vector<GpuHost> gpus_;
  int gpus_per_node_ = 0;
  int nodes_ = 0;
  topology::GpuSpec spec_;
  FamilyCalibration calibration_;
  simgrid::s4u::Host* timer_host_ = nullptr;
  FabricZone* fabric_ = nullptr;  // in-memory platforms (owned by SimGrid)
  std::vector<LinkInfo> links_;  // by name
  // In-memory platforms: the cluster, which routes, and the id of each hop: of cluster link
  // i going up at 2i, going down at 2i + 1; and back, the hop (2i or 2i + 1) of each id.
  // XML platforms: link ids by SimGrid link (route_to gives links) and names by id.
  std::shared_ptr<const topology::Cluster> cluster_;
  // hop_ids_ holds each hop's id and its link's latency side by side: routing a
  // collective's pairs reads one entry per hop instead of two scattered ones.
  struct HopId {
    uint32_t id = 0;
    double latency = 0;
  };
  std::vector<HopId> hop_ids_;
  std::vector<uint32_t> id_hops_;
  // In-memory platforms: every link of a tier (nvl, nic, leaves, ToRs, pods) has the same
  // bandwidth, latency and kind, so a moved link never needs comparing (shift_links).
  bool uniform_tiers_ = false;
  std::vector<std::string> names_;
  std::unordered_map<const simgrid::s4u::Link*, uint32_t> link_ids_;
  mutable std::vector<uint32_t> route_scratch_;  // for_each_hop on XML platforms
};

template <class F>
double Platform::for_each_hop(int src, int dst, F&& f) const {
  double latency = 0;
  if (cluster_ != nullptr) {
    if (src == dst) return latency;
    cluster_->visit_route(src, dst, [&](int link, bool up) {
      const HopId& h = hop_ids_[2 * static_cast<size_t>(link) + (up ? 0 : 1)];
      f(h.id);
      latency += h.latency;
    });
    return latency;
  }
  route_scratch_.clear();
  route_ids(src, dst, route_scratch_, &latency);
  for (uint32_t id : route_scratch_) f(id);
  return latency;
}

/// Configures SimGrid for RDMA-like transfers: parallel-task (L07) host model, which
/// shares links max-min fairly without TCP windows, slow-start gamma or cross traffic.
/// Must be called before loading the platform.
void configure_engine(simgrid::s4u::Engine& engine);

}  // namespace tcsim::sim
