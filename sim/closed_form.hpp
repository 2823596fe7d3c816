// Closed forms: how long communication takes on an otherwise idle network, and the bytes
// it puts on each link, computed from the platform's routes without running SimGrid.
//
// One phase (sim/collectives.hpp) takes what one L07 parallel task of its transfers takes
// alone on the network: the largest route latency, then the most loaded link's bytes over
// its bandwidth (a FATPIPE link limits each flow, not their sum), times the phase's repeat.
// The analytical fidelity times every collective and send this way; the flow fidelity uses
// it for communication alone on its links (exact there) and for link accounting.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <simgrid/s4u.hpp>

#include "sim/collectives.hpp"
#include "sim/platform.hpp"

namespace tcsim::sim {

/// The closed form of one collective (all its groups) or one send.
struct Evaluation {
  double duration = 0;
  std::string algorithm;  ///< "type:name" of the first group, empty for sends
  /// Bytes per link (all phases and repeats, byte_scale included), each link once.
  std::vector<std::pair<simgrid::s4u::Link*, double>> link_bytes;
  bool groups_disjoint = true;  ///< no link carries traffic of two groups
};

/// Closed forms over one platform's routes.
class ClosedForm {
public:
  explicit ClosedForm(const Platform& platform) : platform_(platform) {}

  /// One phase: its duration, and the bytes each link carries (all repeats) appended to
  /// `carried` (one entry per link of the phase).
  double phase(const Phase& ph, std::vector<std::pair<simgrid::s4u::Link*, double>>& carried);

  /// A collective: every group's chain of phases, the slowest group sets the time.
  /// `groups` holds the phases per group (empty for groups without transfers), as
  /// planned by the collective's algorithm; `algorithm` is copied into the result.
  Evaluation collective(const std::vector<std::shared_ptr<const std::vector<Phase>>>& groups,
                        const std::string& algorithm);

  /// A send: its one phase of transfers.
  Evaluation send(const Phase& ph);

private:
  const Platform& platform_;
};

}  // namespace tcsim::sim
