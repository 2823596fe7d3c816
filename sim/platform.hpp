// The loaded platform: GPU hosts in rank order with their specs (read back from host
// properties, see platforms/README.md), the links by kind, and the calibration of the
// GPU family applied to link bandwidths. The only bridge between topology/ data and
// SimGrid objects.
#pragma once

#include <cstdint>
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
  simgrid::s4u::Host* host = nullptr;
  int rank = 0;
  int node = 0;
  int index = 0;  ///< GPU index inside its node (its rail / plane)
  int domain = 0; ///< NVLink domain (the node, or a rack-scale domain such as NVL72)
};

class Platform {
public:
  /// Loads path into the engine (once per process) and collects the GPU hosts. gpu.*
  /// overrides apply to every GPU's spec; gpu.nvlink_bw and gpu.nic_bw also re-rate the
  /// nvlink/nic links of the platform, so a sweep need not regenerate the XML.
  /// Link bandwidths are then scaled by the family's calibrated efficiencies.
  static Platform load(simgrid::s4u::Engine& engine, const std::string& path, core::Overrides& overrides);
  /// Builds the platform of a generated cluster in memory (sim/fabric_zone.hpp): same
  /// hosts, properties and links as its `topo gen` XML, routes computed on demand, so it
  /// scales to tens of thousands of GPUs. gpu.* overrides must already be in cluster.gpu.
  /// switch_hosts: a host per switch too, for the flow fidelity's link form
  /// (sim/link_form.hpp); the analytical fidelity has no use for them.
  static Platform build(simgrid::s4u::Engine& engine, const topology::Cluster& cluster, core::Overrides& overrides,
                        bool switch_hosts = true);

  [[nodiscard]] const std::vector<GpuHost>& gpus() const { return gpus_; }
  [[nodiscard]] int size() const { return static_cast<int>(gpus_.size()); }
  [[nodiscard]] int gpus_per_node() const { return gpus_per_node_; }
  [[nodiscard]] int nodes() const { return nodes_; }
  /// The GPU spec (all GPUs of a platform are of one type; mixed platforms are rejected).
  [[nodiscard]] const topology::GpuSpec& spec() const { return spec_; }
  [[nodiscard]] const FamilyCalibration& calibration() const { return calibration_; }
  [[nodiscard]] const std::string& path() const { return path_; }
  /// Links of one kind ("nvlink", "nic", "fabric"), each direction separately, by name.
  [[nodiscard]] const std::vector<simgrid::s4u::Link*>& links(const std::string& kind) const;
  /// The route from GPU rank src to GPU rank dst, as SimGrid routes it: links appended to
  /// links, latencies added to *latency. In-memory platforms answer from their cluster.
  void route(int src, int dst, std::vector<simgrid::s4u::Link*>& links, double* latency) const;
  /// Every link of the platform, each direction separately, by name. A link's position
  /// here is its id, for per-link arrays (closed forms, link accounting).
  [[nodiscard]] const std::vector<simgrid::s4u::Link*>& all_links() const { return links_by_name_; }
  /// route() as link ids, the links in the same order, the latencies added in the same order.
  void route_ids(int src, int dst, std::vector<uint32_t>& ids, double* latency) const;
  /// A host outside the network with a million cores of speed 1: timers (compute ops,
  /// delays) run on it in parallel without sharing, an exec of d flops lasting d seconds.
  [[nodiscard]] simgrid::s4u::Host* timer_host() const { return timer_host_; }
  /// The in-memory fabric (sim/fabric_zone.hpp), or nullptr for an XML platform.
  [[nodiscard]] const FabricZone* fabric() const { return fabric_; }

private:
  static Platform collect(simgrid::s4u::Engine& engine, const std::string& path, core::Overrides& overrides,
                          simgrid::s4u::NetZone* parent);
  std::string path_;
  std::vector<GpuHost> gpus_;
  int gpus_per_node_ = 0;
  int nodes_ = 0;
  topology::GpuSpec spec_;
  FamilyCalibration calibration_;
  simgrid::s4u::Host* timer_host_ = nullptr;
  FabricZone* fabric_ = nullptr;  // in-memory platforms (owned by SimGrid)
  std::vector<simgrid::s4u::Link*> nvlink_links_, nic_links_, fabric_links_, other_links_;
  std::vector<simgrid::s4u::Link*> links_by_name_;
  // Link ids: of an in-memory platform's links by their position in FabricZone::links(); of
  // an XML platform's links by address (route_to gives links).
  std::vector<uint32_t> zone_link_ids_;
  std::unordered_map<const simgrid::s4u::Link*, uint32_t> link_ids_;
};

/// Configures SimGrid for RDMA-like transfers: parallel-task (L07) host model, which
/// shares links max-min fairly without TCP windows, slow-start gamma or cross traffic.
/// Must be called before loading the platform.
void configure_engine(simgrid::s4u::Engine& engine);

}  // namespace tcsim::sim
