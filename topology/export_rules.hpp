// Export-control classification of a GPU spec against rules kept as data
// (platforms/export_rules.textproto, embedded): TPP, performance density and chip-to-chip
// bandwidth, and for each rule whether the chip is controlled, which threshold decides
// it and by what margin.
#pragma once

#include <string>
#include <vector>

#include "topology/gpu.hpp"

namespace tcsim::topology {

/// One threshold evaluated on a chip.
struct ThresholdCheck {
  std::string criterion;   ///< "3A090.a(2)"
  std::string metric;      ///< "tpp", "pd", "interconnect_bw"
  std::string threshold;   ///< as written in the rule: "600GBps"
  double value = 0;        ///< chip's value in the metric's unit (TPP; TPP/mm2; GB/s)
  double limit = 0;        ///< threshold in the same unit
  bool met = false;
  bool known = true;       ///< false when the chip lacks the figure (e.g. no die area)
  [[nodiscard]] double margin() const { return value - limit; }
  [[nodiscard]] double margin_ratio() const { return limit != 0 ? value / limit - 1 : 0; }
  [[nodiscard]] std::string text() const;  ///< "tpp >= 4800"
};

struct RuleVerdict {
  std::string rule;     ///< "2023-10"
  std::string title;
  std::string source;
  bool controlled = false;
  ThresholdCheck deciding;  ///< the threshold that decides (see export_rules.cpp)
  std::vector<ThresholdCheck> checks;  ///< every threshold of every criterion
};

struct Classification {
  std::string gpu;
  double tpp = 0;
  double pd = 0;             ///< 0 when the die area is unknown
  double interconnect_gbps = 0;  ///< aggregate bidirectional, GB/s
  std::vector<RuleVerdict> rules;
};

/// TPP = max over precisions of dense TFLOPS x bit length (BF16 x 16, FP8 x 8).
double total_processing_performance(const GpuSpec& spec);
/// The ids of the rules in the data, in order.
std::vector<std::string> export_rule_ids();
Classification classify(const GpuSpec& spec);

}  // namespace tcsim::topology
