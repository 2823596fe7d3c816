// Collective algorithms, registered by name with the library or paper they follow. An
// algorithm turns one collective on one group of ranks into a sequence of phases; each
// phase is a set of simultaneous transfers that the executor runs as one SimGrid
// parallel task, so every phase loads the real links of the platform and shares them
// max-min fairly with whatever else runs (DESIGN.md, key decision 5).
#pragma once

#include <functional>
#include <map>
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

struct Phase {
  std::vector<Transfer> transfers;
  /// Multiplier on the bytes of this phase for algorithms whose data path has its own
  /// measured efficiency (NVLS): bytes x nvlink_eff / nvls_eff. 1 otherwise.
  double byte_scale = 1.0;
};

/// What an algorithm may know about the machine: node of each rank, whether NVLS exists.
struct TopologyView {
  std::vector<int> node_of_rank;
  bool nvls = false;
  double nvlink_efficiency = 1, nvls_efficiency = 0;
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

/// All registered algorithms, in a stable order.
const std::vector<Algorithm>& algorithms();

/// Chooses algorithms per collective type: automatic as NCCL does (by group shape and
/// size), or forced with `--set sim.algo.<type>=<name>` (e.g. sim.algo.all_reduce=ring).
class AlgorithmSelector {
public:
  AlgorithmSelector() = default;
  /// Takes the sim.algo.* keys; unknown types or names are InputErrors listing valid ones.
  void configure(core::Overrides& overrides);
  [[nodiscard]] const Algorithm& select(const std::vector<int>& group, const workloads::CollectiveOp& op,
                                        const TopologyView& topo) const;
  static std::vector<std::string> keys();

private:
  std::map<workloads::CollectiveType, std::string> forced_;
};

}  // namespace tcsim::sim
