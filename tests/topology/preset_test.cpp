// Cluster presets (platforms/presets.textproto): every preset builds in memory with the
// size and bisection of its citation, without writing XML (a Full zone of 2,048 GPUs is
// 1.29 GB). Bisection = per-direction bandwidth from the first half of the ranks to the
// second (max-flow). Line rates: H800/H100/H20 NIC 400 Gb/s = 50 GB/s, A100 HDR 200 Gb/s = 25 GB/s.
#include <gtest/gtest.h>

#include "core/error.hpp"
#include "topology/presets.hpp"

using namespace tcsim;
using topology::LinkKind;

namespace {
constexpr double GB = 1e9;
topology::Cluster build(const std::string& name, bool example = false) {
  return topology::build_recipe(topology::recipe_of(topology::find_preset(name), example));
}
}  // namespace

TEST(Presets, EveryPresetHasACitationAndASmallExample) {
  ASSERT_GE(topology::presets().size(), 5u);
  for (const auto& p : topology::presets()) {
    EXPECT_FALSE(p.citation.empty()) << p.name;
    EXPECT_FALSE(p.description.empty()) << p.name;
    EXPECT_GE(p.example_nodes, 1) << p.name;
    EXPECT_LE(p.example_nodes * p.gpus_per_node, 64) << p.name << ": the committed example must stay small";
  }
}

TEST(Presets, DeepSeekClusterIs2048GpusOnEightDisjointPlanes) {
  // arXiv 2505.09343 §4: 256 nodes x 8, one two-tier plane per NIC index, 64-port switches:
  // 32 down / 32 up per leaf, 256 / 32 = 8 leaves per plane, 64 leaf uplink bundles.
  // Non-blocking: bisection = 1,024 GPUs x 50 GB/s = 51.2 TB/s for every GPU type.
  for (const char* name : {"deepseek-h800-2048", "deepseek-h100-2048", "deepseek-h20-2048"}) {
    auto c = build(name);
    EXPECT_EQ(c.gpu_count(), 2048) << name;
    EXPECT_EQ(c.link_count(LinkKind::nvlink), 2048) << name;
    EXPECT_EQ(c.link_count(LinkKind::nic), 2048) << name;
    EXPECT_EQ(c.link_count(LinkKind::fabric), 64) << name;
    EXPECT_NEAR(c.bisection_bandwidth().value(), 1024 * 50 * GB, 1e-6 * 1024 * 50 * GB) << name;
    EXPECT_EQ(c.worst_case_hops(), 6) << name;  // nic, leaf up, leaf down, nic, then NVLink forward 2
  }
  EXPECT_EQ(build("deepseek-h800-2048").gpu.name, "H800");
  EXPECT_EQ(build("deepseek-h20-2048").gpu.name, "H20");
}

TEST(Presets, SeleneIs3072A100WithTwentyNodesPerLeaf) {
  // Megatron-LM (arXiv 2104.04473) Table 1's largest row: 3,072 A100 = 384 DGX A100.
  // Radix 40: 20 down / 20 up; ceil(384 / 20) = 20 leaves per rail x 8 rails = 160 bundles.
  // Non-blocking per rail: bisection = 1,536 GPUs x 25 GB/s = 38.4 TB/s.
  auto c = build("selene-a100-3072");
  EXPECT_EQ(c.gpu_count(), 3072);
  EXPECT_EQ(c.gpu.name, "A100");
  EXPECT_DOUBLE_EQ(c.gpu.nic_bw.value(), 25 * GB);
  EXPECT_EQ(c.link_count(LinkKind::fabric), 160);
  EXPECT_EQ(c.links.size(), 3072u * 2 + 160);
  EXPECT_NEAR(c.bisection_bandwidth().value(), 1536 * 25 * GB, 1e-6 * 1536 * 25 * GB);
}

TEST(Presets, Llama3ClusterIs16kH100InThreeTiers) {
  // arXiv 2407.21783 §3.3.1: 2,048 nodes, 2 per rack -> 1,024 ToRs; 192 racks per pod ->
  // 6 pods (the last with 64 racks); ToR 16 x 50 = 800 GB/s non-blocking; pod down
  // 192 x 800 GB/s = 153.6 TB/s, up 153.6 / 7 = 21.94 TB/s.
  // First half of ranks = racks 0..511 = pods 0, 1 and 128 racks of pod 2 (its other 64 racks
  // are in the second half). Max-flow: pod 2's first-half racks feed its 64 second-half racks
  // inside the pod (64 x 800 GB/s = 51.2 TB/s), and the aggregation layer carries
  // 3 pod uplinks' worth (pods 0, 1, 2 up = pods 3, 4, 5 down = 3 x 21.94 TB/s).
  auto c = build("llama3-h100-16384");
  EXPECT_EQ(c.gpu_count(), 16384);
  EXPECT_EQ(c.link_count(LinkKind::fabric), 1024 + 6);
  EXPECT_EQ(c.links.size(), 16384u * 2 + 1030);
  ASSERT_EQ(c.tiers.size(), 3u);
  EXPECT_DOUBLE_EQ(c.tiers[1].oversubscription(), 7.0);
  const double expected = 64 * 800 * GB + 3 * (153.6e12 / 7);
  EXPECT_NEAR(c.bisection_bandwidth().value(), expected, 1e-6 * expected);
  EXPECT_EQ(c.worst_case_hops(), 6);  // nic, tor, pod up, pod down, tor, nic
}

TEST(Presets, ExamplesAreSmallInstancesOfTheSameShape) {
  for (const auto& p : topology::presets()) {
    auto full = topology::recipe_of(p, false);
    auto small = build(p.name, true);
    EXPECT_EQ(small.fabric, full.fabric) << p.name;
    EXPECT_EQ(small.gpu.name, full.gpu) << p.name;
    EXPECT_EQ(small.nodes, p.example_nodes) << p.name;
    EXPECT_GE(small.worst_case_hops(), 4) << p.name << ": the example should cross the switch tiers";
  }
}

TEST(Presets, UnknownPresetListsTheKnownOnes) {
  try {
    topology::find_preset("deepseek");
    FAIL();
  } catch (const core::InputError& e) {
    EXPECT_NE(std::string(e.what()).find("deepseek-h800-2048"), std::string::npos) << e.what();
  }
}

TEST(Presets, CatalogErrorsNameThePreset) {
  EXPECT_THROW(topology::parse_presets("preset { name: \"x\" gpu: \"H100\" nodes: 2 }", "t.textproto"), core::InputError);
  EXPECT_THROW(topology::parse_presets("preset { name: \"x\" gpu: \"H100\" nodes: 2 fabric: \"clos3\" citation: \"c\" }\n"
                                       "preset { name: \"x\" gpu: \"H100\" nodes: 2 fabric: \"clos3\" citation: \"c\" }",
                                       "t.textproto"),
               core::InputError);
  EXPECT_THROW(topology::parse_presets("preset { nme: \"x\" }", "t.textproto"), core::InputError);
}
