// Graphviz drawings (topology/dot.hpp): node boxes, switches by tier, aggregated edges,
// from a built cluster and inferred from a platform file's routes.
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "topology/dot.hpp"
#include "topology/platform_reader.hpp"
#include "topology/platform_xml.hpp"
#include "topology/presets.hpp"

using namespace tcsim;

namespace {
topology::Cluster small(const std::string& fabric, int nodes, std::vector<std::string> sets) {
  return topology::build_recipe({"H800", nodes, 8, fabric, sets});
}
std::string temp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() / ("tcsim-dot-" + std::to_string(getpid()) + "-" + name)).string();
}
topology::DotSummary dot_of_file(const topology::Cluster& c, std::string* text = nullptr) {
  std::string path = temp_path(c.fabric + ".xml");
  {
    std::ofstream out(path);
    topology::write_platform_xml(c, out, "test");
  }
  topology::FabricGraph g;
  auto s = topology::read_platform(path, &g);
  EXPECT_TRUE(s.problems.empty());
  std::filesystem::remove(path);
  std::ostringstream dot;
  auto d = topology::write_dot(g, dot);
  if (text) *text = dot.str();
  return d;
}
}  // namespace

TEST(DotDrawing, MultiPlaneCollapsesNodesAndKeepsLeavesAndSpines) {
  // 2 nodes, radix 2: per plane a leaf per node (1 down, 1 up) under the plane's spine.
  // Boxes: 2 nodes (NVSwitch inside); switches: 8 planes x (2 leaves + 1 spine) = 24 in 2 tiers;
  // edges: node-leaf 2 x 8, leaf-spine 16.
  auto c = small("multi-plane-fat-tree", 2, {"fabric.radix=2"});
  std::ostringstream out;
  auto d = topology::write_dot(topology::graph_of(c), out);
  EXPECT_EQ(d.node_boxes, 2);
  EXPECT_EQ(d.switches, 24);
  EXPECT_EQ(d.tiers, 2);
  EXPECT_EQ(d.edges, 32);
  EXPECT_NE(out.str().find("nvlink 8 x 200 GB/s = 1600 GB/s"), std::string::npos) << out.str();
  EXPECT_NE(out.str().find("nic 50 GB/s"), std::string::npos);
}

TEST(DotDrawing, SingleSwitchBundlesTheNicsOfANode) {
  auto c = small("single-switch", 4, {});
  std::ostringstream out;
  auto d = topology::write_dot(topology::graph_of(c), out);
  EXPECT_EQ(d.node_boxes, 4);
  EXPECT_EQ(d.switches, 1);
  EXPECT_EQ(d.edges, 4);
  EXPECT_NE(out.str().find("nic 8 x 50 GB/s = 400 GB/s"), std::string::npos) << out.str();
}

TEST(DotDrawing, FabricInferredFromTheXmlRoutesMatchesTheCluster) {
  // The file has no switches (a Full zone): they are found where the routes' links meet.
  for (auto [fabric, sets] : std::vector<std::pair<std::string, std::vector<std::string>>>{
           {"multi-plane-fat-tree", {"fabric.radix=2"}},
           {"rail-fat-tree", {"fabric.radix=16"}},
           {"clos3", {"fabric.nodes_per_rack=1", "fabric.racks_per_pod=1"}},
           {"single-switch", {}}}) {
    auto c = small(fabric, 2, sets);
    std::ostringstream direct;
    auto want = topology::write_dot(topology::graph_of(c), direct);
    auto got = dot_of_file(c);
    EXPECT_EQ(got.node_boxes, want.node_boxes) << fabric;
    EXPECT_EQ(got.switches, want.switches) << fabric;
    EXPECT_EQ(got.tiers, want.tiers) << fabric;
    EXPECT_EQ(got.edges, want.edges) << fabric;
  }
}

TEST(DotDrawing, HandWrittenRingHasNoSwitches) {
  // platforms/examples/astra_ring8.xml: 8 one-GPU nodes, link ring-i between i and i+1.
  topology::FabricGraph g;
  auto s = topology::read_platform(std::string(TCSIM_SOURCE_DIR) + "/platforms/examples/astra_ring8.xml", &g);
  ASSERT_TRUE(s.problems.empty()) << s.problems.front().text();
  std::ostringstream out;
  auto d = topology::write_dot(g, out);
  EXPECT_EQ(d.node_boxes, 8);
  EXPECT_EQ(d.switches, 0);
  EXPECT_EQ(d.edges, 8);
  EXPECT_NE(out.str().find("n0 -- n1 [label=\"other 50 GB/s\"]"), std::string::npos) << out.str();
  EXPECT_NE(out.str().find("n0 -- n7 [label=\"other 50 GB/s\"]"), std::string::npos) << out.str();
}
