// The link form of a collective phase (flow fidelity, in-memory fabrics).
//
// SimGrid routes every host pair of a parallel task three times (twice when it starts, once
// when its latency is paid) and adds each link of each route to the task's constraints with
// a linear search, so a task costs pairs x hops x links. On an in-memory fabric a phase can
// instead list one pair per link it crosses, between the link's two ends (switches are
// hosts there, sim/fabric_zone.hpp), carrying the bytes the phase puts on that link: the
// same load on every link, hence the same max-min shares. The latency SimGrid charges a task
// is its longest route's, so the phase's longest GPU-to-GPU route is added as one more pair
// of a vanishing size (1e-200 bytes, lost in any sum with a real load). S1's 64-rank
// DeepEP all-to-all: 896 GPU pairs of 2 to 4 links each become one pair per link.
#pragma once

#include <cstdint>
#include <optional>
#include <tuple>
#include <unordered_map>
#include <vector>

#include <simgrid/s4u.hpp>

#include "sim/collectives.hpp"
#include "topology/cluster.hpp"

namespace tcsim::sim {

class FabricZone;

struct LinkForm {
  /// Bytes of the pair that carries the phase's latency (see above).
  static constexpr double kLatencyCarrier = 1e-200;
  std::vector<simgrid::s4u::Host*> hosts;
  std::vector<std::tuple<uint32_t, uint32_t, double>> entries;  ///< (from, to, bytes) by position in hosts
};

class LinkForms {
public:
  /// fabric: the platform's in-memory fabric, or nullptr (XML platforms have no link form).
  explicit LinkForms(const FabricZone* fabric) : fabric_(fabric) {}

  /// The link form of a phase's transfers, built once per phase and kept: the phase must
  /// outlive this object (the executor's planned collectives do). nullptr when the platform
  /// cannot express it or it would not have fewer pairs than the transfers.
  const LinkForm* get(const Phase& phase, const std::vector<const Transfer*>& transfers);

private:
  const FabricZone* fabric_;
  std::unordered_map<const Phase*, std::optional<LinkForm>> forms_;
  // Scratch, by directed link (2 x cluster link + down) and by vertex.
  std::vector<double> load_;
  std::vector<char> used_;
  std::vector<int> pos_;
  std::vector<topology::Hop> hops_;
};

}  // namespace tcsim::sim
