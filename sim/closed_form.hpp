// Closed forms: how long communication takes on an otherwise idle network, and the bytes
// it puts on each link, computed from the platform's routes without running SimGrid.
//
// One phase (sim/collectives.hpp) takes what one L07 parallel task of its transfers takes
// alone on the network: the largest route latency, then the most loaded link's bytes over
// its bandwidth (a FATPIPE link limits each flow, not their sum), times the phase's repeat.
// The analytical fidelity times every collective and send this way; the flow fidelity uses
// it for communication alone on its links (exact there) and for link accounting; LinkUsers
// tracks which links running communication holds (flow).
#pragma once

#include <compare>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "sim/collectives.hpp"
#include "sim/platform.hpp"

namespace tcsim::sim {

/// The closed form of one collective (all its groups) or one send.
struct Evaluation {
  double duration = 0;
  std::string algorithm;  ///< "type:name" of the first group, empty for sends
  /// Bytes per link id (Platform::all_links() position), all phases and repeats,
  /// byte_scale included; each link once, in no particular order.
  std::vector<std::pair<uint32_t, double>> link_bytes;
  bool groups_disjoint = true;  ///< no link carries traffic of two groups
  /// Point-to-point transfers of all phases, repeats included (the work the step's
  /// communication comprises: n(n-1) for an all-to-all over n ranks).
  size_t transfers = 0;
};

/// Closed forms over one platform's routes. Per-link state lives in arrays indexed by link
/// id, not in maps keyed by link: a 1,024-rank all-to-all routes about a million pairs.
class ClosedForm {
public:
  explicit ClosedForm(const Platform& platform);

  /// A collective: every group's chain of phases, the slowest group sets the time.
  /// `groups` holds the phases per group (empty for groups without transfers), as
  /// planned by the collective's algorithm; `algorithm` is copied into the result.
  Evaluation collective(const std::vector<std::shared_ptr<const std::vector<Phase>>>& groups,
                        const std::string& algorithm);

  /// A send: its one phase of transfers.
  Evaluation send(const Phase& ph);

private:
  // One phase of group `group` (1-based): adds the bytes it puts on each link (all repeats)
  // to the evaluation being built; returns its duration.
  double phase(const Phase& ph, uint32_t group, Evaluation& ev);
  // Moves the evaluation's per-link bytes into ev.link_bytes and clears them.
  void collect(Evaluation& ev);

  const Platform& platform_;
  // Per link id, in one record (routing a phase's pairs touches each hop's record once,
  // not six arrays): its bandwidth and sharing; scratch cleared after each use: the current
  // phase's load on it, the evaluation's bytes on it, the group that first used it (0:
  // none), whether the phase touched it.
  struct LinkState {
    double bandwidth = 0;
    double load = 0;
    double bytes = 0;
    uint32_t owner = 0;
    bool fatpipe = false;  // limits each flow, not their sum
    bool in_phase = false;
  };
  std::vector<LinkState> links_;
  // The links the phase and the evaluation touched.
  std::vector<uint32_t> phase_links_;
  std::vector<uint32_t> ev_links_;
};

/// Closed forms kept from one run to the next, for callers that execute many programs on
/// one platform: a plan search's plans and the shorter steps it extrapolates from share
/// most of their collectives (same groups, type and size). A closed form depends on the
/// platform, the algorithm selection and what the key holds: a collective's groups, type,
/// bytes, uneven matrix and node limit; a send's two rank lists and bytes. bind() forgets
/// everything when the platform or the selection changes.
class EvaluationCache {
public:
  struct Collective {
    std::vector<std::vector<int>> groups;
    int type = 0;
    double bytes = 0;
    std::vector<double> matrix;  ///< empty: even split
    uint32_t max_nodes = 0;
    auto operator<=>(const Collective&) const = default;
  };
  struct Send {
    std::vector<int> src, dst;  ///< the two lanes' ranks, replica k to replica k
    double bytes = 0;
    auto operator<=>(const Send&) const = default;
  };

  /// Called by the executor before each run.
  void bind(const Platform& platform, const std::string& selection);
  [[nodiscard]] const Evaluation* find(const Collective& key) const;
  [[nodiscard]] const Evaluation* find(const Send& key) const;
  void insert(Collective key, const Evaluation& ev);
  void insert(Send key, const Evaluation& ev);
  [[nodiscard]] size_t size() const { return collectives_.size() + sends_.size(); }
  /// Runs that found a closed form here instead of computing it.
  [[nodiscard]] size_t hits() const { return hits_; }

  /// At most this many (link, bytes) entries are kept (64 MiB); a run that would add more
  /// starts the cache afresh.
  static constexpr size_t kMaxLinkEntries = size_t{4} << 20;

private:
  template <class Map>
  const Evaluation* lookup(const Map& map, const typename Map::key_type& key) const;
  template <class Map>
  void keep(Map& map, typename Map::key_type key, const Evaluation& ev);
  const Platform* platform_ = nullptr;
  size_t links_ = 0;
  std::string selection_;
  std::map<Collective, Evaluation> collectives_;
  std::map<Send, Evaluation> sends_;
  size_t entries_ = 0;
  mutable size_t hits_ = 0;
};

/// Closed forms found again by symmetry. Communication whose ranks are those of an
/// evaluated one, all moved by the same number, crosses transfer by transfer and hop by hop
/// the moved links, when the fabric's routes move with them (Platform::route_shift: by
/// whole NVLink domains, leaves' nodes, racks or pods, or within one before and after);
/// where those links have the same bandwidth, latency and sharing, its closed form is the
/// same number (the same additions in the same order) and its bytes lie on the moved
/// links. The collectives of a folded pipeline's stages are such moves of one another
/// (S3: each stage's 1,024 ranks are a third of a pod), and so are its sends.
/// Algorithms plan a group from its order and its members' nodes, so a shifted group gets
/// the shifted phases (tests/sim/algorithms_test.cpp, AlgorithmPlans, checks every
/// registered one).
class ShiftedForms {
public:
  explicit ShiftedForms(const Platform& platform);
  /// What a closed form depends on besides where its ranks lie: which communication (a
  /// collective's type, size, uneven matrix and node limit; a send's size) and its ranks
  /// relative to the first: per group (a send: its source, then its destination ranks)
  /// the member count, then each member minus the first rank.
  struct Shape {
    int kind = 0;  ///< 0: collective, 1: send
    int type = 0;
    double bytes = 0;
    uint32_t matrix = 0;
    uint32_t max_nodes = 0;
    std::vector<int> ranks;
    int lo = 0, hi = 0;  ///< the least and greatest offset (add_group keeps them)
    auto operator<=>(const Shape&) const = default;
  };
  /// Appends group's count and offsets from base to shape.ranks.
  static void add_group(Shape& shape, const std::vector<int>& group, int base);
  /// When an evaluation of the same shape was kept at a base from which the fabric's
  /// routes move to this one, fills out with it, its links moved (none when `links` is
  /// false: the caller needs only the time and the transfer count), and returns true.
  bool find(const Shape& shape, int base, Evaluation& out, bool links = true);
  /// Keeps ev (which must outlive this object) as the closed form of shape at base.
  void insert(Shape shape, int base, const Evaluation& ev);

private:
  const Platform& platform_;
  std::map<Shape, std::vector<std::pair<int, const Evaluation*>>> kept_;
};

/// How many running communications use each link (the flow fidelity's shortcuts): an
/// array by link id, not a map keyed by link, since every collective and send of a flow
/// run adds and later removes all its links.
class LinkUsers {
public:
  void resize(size_t links) { count_.assign(links, 0); }
  /// Adds delta users to each link of ev.
  void add(const Evaluation& ev, int delta) {
    for (const auto& [id, bytes] : ev.link_bytes) {
      int& c = count_[id];
      if (c == 0) ++in_use_;
      c += delta;
      if (c == 0) --in_use_;
    }
  }
  /// Whether any link of ev has a user.
  [[nodiscard]] bool touches(const Evaluation& ev) const {
    if (in_use_ == 0) return false;
    for (const auto& [id, bytes] : ev.link_bytes)
      if (count_[id] != 0) return true;
    return false;
  }

private:
  std::vector<int> count_;
  size_t in_use_ = 0;  // links with any user
};

}  // namespace tcsim::sim
