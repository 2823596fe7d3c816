// Export-rule classification reproduces the history (hardware.md, "US export-control
// thresholds"): A100 and H100 controlled under both the Oct 2022 and Oct 2023 rules;
// A800 and H800 not in 2022 (NVLink cut to 400 GB/s < 600 GB/s) but in 2023;
// H20 under neither (TPP ~2,368 < 4,800 and PD ~2.9 < 5.92).
#include <gtest/gtest.h>

#include "topology/export_rules.hpp"

using namespace tcsim;

namespace {
topology::RuleVerdict verdict(const std::string& gpu, const std::string& rule) {
  for (const auto& v : topology::classify(topology::find_gpu(gpu)).rules) {
    if (v.rule == rule) return v;
  }
  ADD_FAILURE() << "no rule " << rule;
  return {};
}
}  // namespace

TEST(ExportRules, RulesAreData) {
  EXPECT_EQ(topology::export_rule_ids(), (std::vector<std::string>{"2022-10", "2023-10"}));
}

TEST(ExportRules, TppFromDatasheetFigures) {
  // H100: max(989 x 16, 1979 x 8) = 15,832; A100: 312 x 16 = 4,992; H20: 148 x 16 = 2,368.
  EXPECT_NEAR(topology::total_processing_performance(topology::find_gpu("H100")), 15832, 1e-6);
  EXPECT_NEAR(topology::total_processing_performance(topology::find_gpu("A100")), 4992, 1e-6);
  EXPECT_NEAR(topology::total_processing_performance(topology::find_gpu("H20")), 2368, 1e-6);
  auto c = topology::classify(topology::find_gpu("H100"));
  EXPECT_NEAR(c.pd, 15832.0 / 814, 1e-9);  // die 814 mm2
  EXPECT_NEAR(c.interconnect_gbps, 900, 1e-9);
}

TEST(ExportRules, HistoryOf2022Rule) {
  EXPECT_TRUE(verdict("A100", "2022-10").controlled);
  EXPECT_TRUE(verdict("H100", "2022-10").controlled);
  EXPECT_FALSE(verdict("H20", "2022-10").controlled);
  for (const char* g : {"A800", "H800"}) {
    auto v = verdict(g, "2022-10");
    EXPECT_FALSE(v.controlled) << g;
    // Decided by the interconnect: 400 GB/s vs 600 GB/s, margin -200 GB/s.
    EXPECT_EQ(v.deciding.metric, "interconnect_bw") << g;
    EXPECT_NEAR(v.deciding.margin(), -200, 1e-9) << g;
  }
  // A100 sits exactly on the 600 GB/s line (>=): margin 0.
  EXPECT_NEAR(verdict("A100", "2022-10").deciding.margin(), 0, 1e-9);
}

TEST(ExportRules, HistoryOf2023Rule) {
  for (const char* g : {"A100", "H100", "A800", "H800"}) EXPECT_TRUE(verdict(g, "2023-10").controlled) << g;
  auto a800 = verdict("A800", "2023-10");
  EXPECT_EQ(a800.deciding.criterion, "3A090.a(1)");  // TPP 4,992 >= 4,800 by 192
  EXPECT_NEAR(a800.deciding.margin(), 192, 1e-9);
  auto h20 = verdict("H20", "2023-10");
  EXPECT_FALSE(h20.controlled);
  EXPECT_LT(h20.deciding.margin(), 0);
}

TEST(ExportRules, OverriddenVariantCrossesTheLine) {
  // An H20 with H100 compute is controlled under 2023-10.
  auto s = topology::find_gpu("H20");
  core::Overrides o;
  o.add("gpu.bf16_flops=989TFLOPS");
  o.add("gpu.fp8_flops=1979TFLOPS");
  topology::apply_gpu_overrides(s, o);
  for (const auto& v : topology::classify(s).rules) {
    if (v.rule == "2023-10") {
      EXPECT_TRUE(v.controlled);
    }
  }
}
