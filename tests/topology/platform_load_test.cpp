// Generated XML loads in SimGrid 3.32 with the right hosts, link bandwidths, latencies and
// routes. Each load runs in a forked child (one SimGrid engine per process).
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>

#include "sim/platform_check.hpp"
#include "topology/cluster.hpp"
#include "topology/platform_reader.hpp"
#include "topology/platform_xml.hpp"

using namespace tcsim;

namespace {
std::string write(const std::string& fabric, const std::string& gpu, int nodes, int gpn, std::vector<std::string> sets,
                  const std::string& file) {
  core::Overrides o;
  for (const auto& s : sets) o.add(s);
  auto spec = topology::find_gpu(gpu);
  topology::apply_gpu_overrides(spec, o);
  auto c = topology::build_cluster(spec, nodes, gpn, fabric, o);
  std::string path = ::testing::TempDir() + file;
  std::ofstream out(path);
  topology::write_platform_xml(c, out, "test");
  return path;
}
struct Loaded {
  std::map<std::string, std::pair<double, double>> links;  // name -> (bw, lat)
  std::map<std::string, std::pair<double, std::string>> routes;  // dst -> (lat, links)
};
Loaded parse(const sim::PlatformLoad& r) {
  Loaded l;
  for (const auto& line : r.details) {
    std::istringstream in(line);
    std::string kind, a, b, links;
    double x, y;
    in >> kind;
    if (kind == "link") {
      in >> a >> x >> y;
      l.links[a] = {x, y};
    } else if (kind == "route") {
      in >> a >> b >> x >> links;
      l.routes[b] = {x, links};
    }
  }
  return l;
}
}  // namespace

TEST(PlatformXml, SingleSwitchH800LoadsWithSpecBandwidths) {
  auto path = write("single-switch", "H800", 2, 8, {}, "h800_2x8.xml");
  auto r = sim::load_platform_in_child(path, true);
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.hosts, 16);
  EXPECT_EQ(r.links, 2 * 32 + 1);  // 32 SPLITDUPLEX links as _UP/_DOWN, plus SimGrid's __loopback__
  auto l = parse(r);
  // H800 NVLink 200 GB/s per direction (DeepSeek-V3 §3.2.2); NIC 400 Gb/s = 50 GB/s.
  EXPECT_DOUBLE_EQ(l.links["nvl-n0-g3_UP"].first, 200e9);
  EXPECT_DOUBLE_EQ(l.links["nvl-n1-g7_DOWN"].first, 200e9);
  EXPECT_DOUBLE_EQ(l.links["nic-n1-g0_UP"].first, 50e9);
  // Route latencies: NVLink 3.33 us, IB same switch 2.8 us (arXiv 2505.09343 Table 5).
  EXPECT_NEAR(l.routes["gpu-n0-g1"].first, 3.33e-6, 1e-12);
  EXPECT_EQ(l.routes["gpu-n0-g1"].second, "nvl-n0-g0_UP,nvl-n0-g1_DOWN");
  EXPECT_NEAR(l.routes["gpu-n1-g5"].first, 2.8e-6, 1e-12);
  EXPECT_EQ(l.routes["gpu-n1-g5"].second, "nic-n0-g0_UP,nic-n1-g5_DOWN");
}

TEST(PlatformXml, OverriddenBandwidthReachesSimGrid) {
  auto path = write("single-switch", "H100", 1, 8, {"gpu.nvlink_bw=123GBps"}, "h100_override.xml");
  auto r = sim::load_platform_in_child(path, true);
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_DOUBLE_EQ(parse(r).links["nvl-n0-g0_UP"].first, 123e9);
}

TEST(PlatformXml, EveryFabricLoadsAndRoutesCrossLeafAt3p7us) {
  struct Case { std::string fabric, gpu; int nodes, gpn; std::vector<std::string> sets; int hosts; };
  std::vector<Case> cases = {
      {"rail-fat-tree", "H100", 4, 2, {"fabric.radix=4"}, 8},
      {"multi-plane-fat-tree", "H800", 4, 2, {"fabric.radix=4"}, 8},
      {"clos3", "H100", 4, 2, {"fabric.nodes_per_rack=1", "fabric.racks_per_pod=2"}, 8},
      {"nvl72", "GB200", 4, 4, {"fabric.domain_gpus=8"}, 16},
  };
  for (const auto& c : cases) {
    auto path = write(c.fabric, c.gpu, c.nodes, c.gpn, c.sets, c.fabric + ".xml");
    auto r = sim::load_platform_in_child(path, true);
    ASSERT_TRUE(r.ok) << c.fabric << ": " << r.error;
    EXPECT_EQ(r.hosts, c.hosts) << c.fabric;
    auto l = parse(r);
    EXPECT_EQ(l.routes.size(), static_cast<size_t>(c.hosts - 1)) << c.fabric;
    if (c.fabric == "rail-fat-tree") {
      // n0g0 -> n2g0 crosses leaves: 1.4 + 0.45 + 0.45 + 1.4 = 3.7 us (IB cross leaf, Table 5).
      EXPECT_NEAR(l.routes["gpu-n2-g0"].first, 3.7e-6, 1e-12);
      EXPECT_EQ(l.routes["gpu-n2-g0"].second, "nic-n0-g0_UP,fab-r0-l0_UP,fab-r0-l1_DOWN,nic-n2-g0_DOWN");
      EXPECT_DOUBLE_EQ(l.links["fab-r0-l0_UP"].first, 100e9);
    }
  }
}

TEST(PlatformXml, GenerationIsDeterministic) {
  auto a = write("multi-plane-fat-tree", "H800", 4, 2, {"fabric.radix=4"}, "det_a.xml");
  auto b = write("multi-plane-fat-tree", "H800", 4, 2, {"fabric.radix=4"}, "det_b.xml");
  std::ifstream fa(a), fb(b);
  std::stringstream sa, sb;
  sa << fa.rdbuf();
  sb << fb.rdbuf();
  EXPECT_EQ(sa.str(), sb.str());
  EXPECT_GT(sa.str().size(), 1000u);
}

TEST(PlatformXml, BrokenFileIsReportedNotCrashing) {
  std::string path = ::testing::TempDir() + "broken.xml";
  std::ofstream(path) << "<?xml version='1.0'?>\n<platform version=\"4.1\"><zone id=\"z\" routing=\"Full\">\n"
                         "<host id=\"a\" speed=\"1Gf\"/><route src=\"a\" dst=\"b\"><link_ctn id=\"nope\"/></route>"
                         "</zone></platform>\n";
  auto r = sim::load_platform_in_child(path);
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.error.find("SimGrid cannot load it"), std::string::npos);
}

TEST(PlatformXml, HandWrittenExampleLoadsAndChecks) {
  const std::string path = std::string(TCSIM_SOURCE_DIR) + "/platforms/examples/two_gpus.xml";
  auto s = topology::read_platform(path);
  EXPECT_TRUE(s.problems.empty()) << (s.problems.empty() ? "" : s.problems[0].text());
  ASSERT_EQ(s.gpus.size(), 2u);
  EXPECT_EQ(s.gpus[1].spec.name, "H800");
  EXPECT_DOUBLE_EQ(s.gpus[1].spec.nvlink_bw.value(), 200e9);
  EXPECT_EQ(s.routed_gpu_pairs, 2);
  auto r = sim::load_platform_in_child(path, true);
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.hosts, 2);
}

TEST(PlatformCheck, GeneratedFileHasNoProblemsAndBadOnesAreLocated) {
  auto path = write("rail-fat-tree", "H100", 4, 2, {"fabric.radix=4"}, "check_ok.xml");
  auto s = topology::read_platform(path);
  EXPECT_TRUE(s.problems.empty()) << s.problems[0].text();
  EXPECT_EQ(s.worst_case_hops, 4);
  EXPECT_EQ(s.zone_properties["tcsim.bisection_bw"], "200GBps");
  // A property without a unit is reported with file:line, the host and the key.
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  text.replace(text.find("value=\"50GBps\""), 14, "value=\"50\"");
  std::string bad = ::testing::TempDir() + "check_bad.xml";
  std::ofstream(bad) << text;
  auto b = topology::read_platform(bad);
  ASSERT_FALSE(b.problems.empty());
  EXPECT_NE(b.problems[0].text().find("check_bad.xml:"), std::string::npos) << b.problems[0].text();
  EXPECT_NE(b.problems[0].text().find("gpu.nic_bw"), std::string::npos) << b.problems[0].text();
  // Malformed XML: the line of the error.
  std::ofstream(bad) << "<?xml version='1.0'?>\n<platform version=\"4.1\">\n<zone id=\"z\" routing=\"Full\">\n<host id=\"a\" speed=1Gf/>\n";
  auto m = topology::read_platform(bad);
  ASSERT_FALSE(m.problems.empty());
  EXPECT_NE(m.problems[0].where.find(":4"), std::string::npos) << m.problems[0].text();
}
