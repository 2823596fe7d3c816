// Fabric builders: GPU, link and switch counts, bisection bandwidth and hop counts of
// small instances, each checked against a hand computation written beside it.
// Bisection = per-direction bandwidth from the first half of the ranks to the second.
// H100: NIC 400 Gb/s = 50 GB/s per direction, NVLink 450 GB/s per direction.
#include <gtest/gtest.h>

#include <map>

#include "core/error.hpp"
#include "topology/cluster.hpp"

using namespace tcsim;
using topology::build_cluster;
using topology::LinkKind;

namespace {
topology::Cluster make(const std::string& fabric, int nodes, int gpn, std::vector<std::string> sets = {},
                       const std::string& gpu = "H100") {
  core::Overrides o;
  for (const auto& s : sets) o.add(s);
  auto c = build_cluster(topology::find_gpu(gpu), nodes, gpn, fabric, o);
  o.check_all_taken({});
  return c;
}
constexpr double GB = 1e9;
}  // namespace

TEST(Fabrics, RegistryListsAllWithDescriptions) {
  std::vector<std::string> names;
  for (const auto& f : topology::fabrics()) {
    names.push_back(f.name);
    EXPECT_FALSE(f.description.empty());
    EXPECT_FALSE(f.citation.empty());
  }
  EXPECT_EQ(names, (std::vector<std::string>{"single-switch", "rail-fat-tree", "multi-plane-fat-tree", "clos3", "nvl72"}));
}

TEST(SingleSwitch, TwoNodesOfEight) {
  auto c = make("single-switch", 2, 8);
  EXPECT_EQ(c.gpu_count(), 16);
  EXPECT_EQ(c.link_count(LinkKind::nvlink), 16);
  EXPECT_EQ(c.link_count(LinkKind::nic), 16);
  EXPECT_EQ(c.link_count(LinkKind::fabric), 0);
  // 8 GPUs of node 0 send through their own NICs: 8 x 50 GB/s = 400 GB/s.
  EXPECT_NEAR(c.bisection_bandwidth().value(), 400 * GB, 1e-6 * GB);
  EXPECT_EQ(c.worst_case_hops(), 2);
  EXPECT_NO_THROW(c.check_routes_sampled());
  std::vector<topology::Hop> hops;
  c.route(0, 1, hops);  // same node: nvl UP, nvl DOWN
  ASSERT_EQ(hops.size(), 2u);
  EXPECT_EQ(c.links[hops[0].link].name, "nvl-n0-g0");
  EXPECT_TRUE(hops[0].up);
  EXPECT_EQ(c.links[hops[1].link].name, "nvl-n0-g1");
  EXPECT_FALSE(hops[1].up);
  c.route(0, 9, hops);  // cross node: nic UP, nic DOWN
  EXPECT_EQ(c.links[hops[0].link].name, "nic-n0-g0");
  EXPECT_EQ(c.links[hops[1].link].name, "nic-n1-g1");
  // Latencies: NVLink 3.33 us and IB same leaf 2.8 us end to end (arXiv 2505.09343 Table 5).
  EXPECT_NEAR(c.links[0].latency.value() * 2, 3.33e-6, 1e-12);
  EXPECT_NEAR(c.links[16].latency.value() * 2, 2.8e-6, 1e-12);
}

TEST(SingleSwitch, OneNodeBisectionIsNvlink) {
  // One node of 8: GPUs 0-3 to 4-7 over NVLink (4 x 450 GB/s) plus through their NICs
  // and the switch (4 x 50 GB/s) = 2000 GB/s.
  auto c = make("single-switch", 1, 8);
  EXPECT_NEAR(c.bisection_bandwidth().value(), 2000 * GB, 1e-6 * GB);
}

TEST(RailFatTree, TwoLeavesPerRail) {
  // 4 nodes x 2 GPUs, radix 4, 1:1 -> 2 down / 2 up ports per leaf, 2 leaves per rail,
  // 4 leaves in all (<= radix 4). Fabric links = one aggregated uplink per leaf = 4.
  auto c = make("rail-fat-tree", 4, 2, {"fabric.radix=4"});
  EXPECT_EQ(c.gpu_count(), 8);
  EXPECT_EQ(c.link_count(LinkKind::fabric), 4);
  EXPECT_NEAR(c.links[16].bandwidth.value(), 2 * 50 * GB, 1);  // 2 uplinks x 50 GB/s
  // Half = nodes 0,1 = leaf 0 of both rails: uplinks 2 x 100 GB/s = NICs 4 x 50 GB/s = 200 GB/s.
  EXPECT_NEAR(c.bisection_bandwidth().value(), 200 * GB, 1e-6 * GB);
  EXPECT_EQ(c.worst_case_hops(), 4);
  EXPECT_NO_THROW(c.check_routes_sampled());
  std::vector<topology::Hop> hops;
  c.route(0, 4, hops);  // n0g0 -> n2g0: other leaf of rail 0
  ASSERT_EQ(hops.size(), 4u);
  EXPECT_EQ(c.links[hops[1].link].name, "fab-r0-l0");
  EXPECT_EQ(c.links[hops[2].link].name, "fab-r0-l1");
  c.route(0, 2, hops);  // n0g0 -> n1g0: same leaf
  EXPECT_EQ(hops.size(), 2u);
}

TEST(RailFatTree, OversubscriptionLimitsBisection) {
  // 1 GPU per node, 12 nodes, radix 8, 3:1 -> 6 down / 2 up: leaf 0 holds nodes 0-5 (the
  // first half), its uplink is 2 x 50 = 100 GB/s = 300 GB/s of NICs / 3.
  auto c = make("rail-fat-tree", 12, 1, {"fabric.radix=8", "fabric.oversubscription=3"});
  EXPECT_NEAR(c.bisection_bandwidth().value(), 100 * GB, 1e-6 * GB);
  ASSERT_EQ(c.tiers.size(), 2u);
  EXPECT_DOUBLE_EQ(c.tiers[0].oversubscription(), 3.0);
}

TEST(RailFatTree, RadixTooSmallIsAnError) {
  // Radix 4: 4 leaves x 2 down = 8 GPUs at most in two tiers.
  try {
    make("rail-fat-tree", 8, 2, {"fabric.radix=4"});
    FAIL();
  } catch (const core::InputError& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("at most 8 GPUs"), std::string::npos) << m;
    EXPECT_NE(m.find("fabric.radix"), std::string::npos) << m;
  }
}

TEST(MultiPlaneFatTree, PlanesAreDisjointAndForwardOverNvlink) {
  // 4 nodes x 2 GPUs, radix 4: each plane has 2 leaves; 4 fabric links; 2 planes.
  auto c = make("multi-plane-fat-tree", 4, 2, {"fabric.radix=4"});
  EXPECT_EQ(c.link_count(LinkKind::fabric), 4);
  EXPECT_NEAR(c.bisection_bandwidth().value(), 200 * GB, 1e-6 * GB);
  std::vector<topology::Hop> hops;
  c.route(0, 7, hops);  // n0g0 -> n3g1: plane 0 to n3g0, then NVLink to n3g1
  std::vector<std::string> names;
  for (auto h : hops) names.push_back(c.links[h.link].name);
  EXPECT_EQ(names, (std::vector<std::string>{"nic-n0-g0", "fab-p0-l0", "fab-p0-l1", "nic-n3-g0", "nvl-n3-g0", "nvl-n3-g1"}));
  EXPECT_EQ(c.worst_case_hops(), 6);
  EXPECT_NO_THROW(c.check_routes_sampled());
}

TEST(MultiPlaneFatTree, DeepSeekScaleFitsRadix64) {
  // arXiv 2505.09343 §4: 64-port switches, two layers, 8 planes: up to 16,384 GPUs.
  core::Overrides o;
  EXPECT_THROW(build_cluster(topology::find_gpu("H800"), 2049, 8, "multi-plane-fat-tree", o), core::InputError);
  auto c = build_cluster(topology::find_gpu("H800"), 2048, 8, "multi-plane-fat-tree", o);
  EXPECT_EQ(c.gpu_count(), 16384);
  EXPECT_EQ(c.link_count(LinkKind::fabric), 8 * 64);  // 64 leaves per plane
  // Non-blocking: bisection = 8192 NICs x 50 GB/s = 409.6 TB/s.
  EXPECT_NEAR(c.bisection_bandwidth().value(), 8192 * 50 * GB, 1e-3 * GB);
}

TEST(Clos3, PodUplinksAreOversubscribed) {
  // 4 nodes x 2 GPUs, 1 node per rack, 2 racks per pod -> 4 ToRs, 2 pods.
  // ToR uplink = 2 x 50 = 100 GB/s; pod uplink = 2 x 100 / 7 GB/s.
  // Half = pod 0: bisection = 200/7 = 28.571 GB/s.
  auto c = make("clos3", 4, 2, {"fabric.nodes_per_rack=1", "fabric.racks_per_pod=2"});
  EXPECT_EQ(c.link_count(LinkKind::fabric), 6);
  EXPECT_NEAR(c.bisection_bandwidth().value(), 200.0 / 7 * GB, 1e-6 * GB);
  EXPECT_EQ(c.worst_case_hops(), 6);
  EXPECT_NO_THROW(c.check_routes_sampled());
  ASSERT_EQ(c.tiers.size(), 3u);
  EXPECT_DOUBLE_EQ(c.tiers[1].oversubscription(), 7.0);
}

TEST(Nvl72, DomainSpansNodes) {
  // GB200, 4 GPUs per tray, 36 trays = 2 NVL72 domains of 72 GPUs.
  auto c = make("nvl72", 36, 4, {}, "GB200");
  EXPECT_EQ(c.gpu_count(), 144);
  EXPECT_EQ(c.domain_gpus, 72);
  std::vector<topology::Hop> hops;
  c.route(0, 71, hops);  // tray 0 to tray 17: same domain, NVLink
  EXPECT_EQ(c.links[hops[0].link].kind, LinkKind::nvlink);
  c.route(0, 72, hops);  // other domain: NICs
  EXPECT_EQ(c.links[hops[0].link].kind, LinkKind::nic);
  // First half = domain 0: its 72 NICs x 50 GB/s = 3.6 TB/s.
  EXPECT_NEAR(c.bisection_bandwidth().value(), 3600 * GB, 1e-6 * GB);
  EXPECT_NO_THROW(c.check_routes_sampled());
}

TEST(Nvl72, PartialDomainIsAnError) {
  EXPECT_THROW(make("nvl72", 10, 4, {}, "GB200"), core::InputError);
  EXPECT_THROW(make("nvl72", 3, 8, {"fabric.domain_gpus=12"}, "GB200"), core::InputError);  // 12 % 8 != 0
}

TEST(Fabrics, UnknownFabricAndMisappliedOptionAreErrors) {
  EXPECT_THROW(make("torus", 2, 8), core::InputError);
  try {
    make("single-switch", 2, 8, {"fabric.radix=64"});
    FAIL();
  } catch (const core::InputError& e) {
    EXPECT_NE(std::string(e.what()).find("does not apply"), std::string::npos) << e.what();
  }
  EXPECT_THROW(make("rail-fat-tree", 2, 8, {"fabric.radix=abc"}), core::InputError);
  EXPECT_THROW(make("rail-fat-tree", 2, 8, {"fabric.oversubscription=0.5"}), core::InputError);
  EXPECT_THROW(make("single-switch", 0, 8), core::InputError);
  EXPECT_THROW(make("single-switch", 2, 8, {"fabric.nic_latency=3"}), core::InputError);  // no unit
}

// Routing::shift: when it says the ranks lo..hi may move by delta, every route between two
// of them, both moved, is the moved route hop for hop (the ground on which closed forms
// are reused, sim/closed_form.hpp ShiftedForms). Checked on every pair of every range of
// whole nodes, for every delta a node multiple, on each fabric. Where it refuses, the
// moved routes cannot be had by any relabelling of links (the refusal is needed): some
// pair's moved route has other hops, or one link would have to become two.
namespace {
struct ShiftCount {
  int valid = 0, refused = 0, wrong = 0, refused_needlessly = 0;
};

// Whether the routes among lo..hi, moved by delta, cross links that a one-to-one, kind-
// and direction-keeping relabelling of the original routes' links gives.
bool some_relabelling_moves(const topology::Cluster& c, int lo, int hi, int delta) {
  std::map<std::pair<int, bool>, std::pair<int, bool>> to, from;
  std::vector<topology::Hop> a, b;
  for (int s = lo; s <= hi; ++s)
    for (int d = lo; d <= hi; ++d) {
      if (s == d) continue;
      c.route(s, d, a);
      c.route(s + delta, d + delta, b);
      if (a.size() != b.size()) return false;
      for (size_t k = 0; k < a.size(); ++k) {
        const std::pair<int, bool> x{a[k].link, a[k].up}, y{b[k].link, b[k].up};
        if (x.second != y.second || c.links[static_cast<size_t>(x.first)].kind != c.links[static_cast<size_t>(y.first)].kind) return false;
        if (to.try_emplace(x, y).first->second != y || from.try_emplace(y, x).first->second != x) return false;
      }
    }
  return true;
}

ShiftCount check_shifts(const topology::Cluster& c) {
  ShiftCount n;
  const auto& rt = c.routing;
  const int G = c.gpus_per_node, N = c.gpu_count();
  std::vector<topology::Hop> a, b;
  for (int lo = 0; lo < N; lo += G)
    for (int hi = lo + G - 1; hi < N; hi += G)
      for (int delta = -lo; hi + delta < N; delta += G) {
        if (delta == 0) continue;
        const auto by = rt.shift(lo, hi, delta);
        if (!by.valid) {
          ++n.refused;
          n.refused_needlessly += some_relabelling_moves(c, lo, hi, delta);
          continue;
        }
        ++n.valid;
        bool moves = true;
        for (int s = lo; s <= hi && moves; ++s)
          for (int d = lo; d <= hi && moves; ++d) {
            if (s == d) continue;
            c.route(s, d, a);
            c.route(s + delta, d + delta, b);
            moves = a.size() == b.size();
            for (size_t k = 0; k < a.size() && moves; ++k) moves = a[k].up == b[k].up && rt.shift_link(a[k].link, by) == b[k].link;
          }
        n.wrong += !moves;
      }
  return n;
}
}  // namespace

TEST(RoutingShift, MovedRanksCrossMovedLinks) {
  struct Case {
    std::string fabric;
    int nodes, gpn;
    std::vector<std::string> sets;
    std::string gpu;
    bool some_refused;
  };
  const std::vector<Case> cases = {
      {"single-switch", 4, 2, {}, "H100", false},
      // 8 nodes, 4 downlinks per leaf: 2 leaves per rail; planes: 2 downlinks, 4 leaves.
      {"rail-fat-tree", 8, 2, {"fabric.radix=8"}, "H100", true},
      {"multi-plane-fat-tree", 8, 2, {"fabric.radix=4"}, "H800", true},
      // 2 nodes per rack, 2 racks per pod: 3 pods, the last one partial (one rack).
      {"clos3", 10, 2, {"fabric.nodes_per_rack=2", "fabric.racks_per_pod=2"}, "H100", true},
      {"nvl72", 36, 4, {}, "GB200", false},
  };
  for (const auto& k : cases) {
    const auto c = make(k.fabric, k.nodes, k.gpn, k.sets, k.gpu);
    const auto n = check_shifts(c);
    EXPECT_GT(n.valid, 10) << k.fabric;
    EXPECT_EQ(n.wrong, 0) << k.fabric;
    if (k.some_refused) {
      EXPECT_GT(n.refused, 0) << k.fabric;
    }
    EXPECT_EQ(n.refused_needlessly, 0) << k.fabric << " of " << n.refused;
  }
}

// The cases the rule names, on clos3 with pods of 2 racks x 2 nodes x 2 GPUs (8 ranks):
// by a whole pod, valid for any ranks; by a rack, only for ranks within one pod before
// and after; by a node, only within one rack.
TEST(RoutingShift, Clos3MovesByPodsOrWithinAPod) {
  const auto c = make("clos3", 10, 2, {"fabric.nodes_per_rack=2", "fabric.racks_per_pod=2"});
  const auto& rt = c.routing;
  EXPECT_TRUE(rt.shift(0, 11, 8).valid);   // a pod and a half by a pod
  EXPECT_TRUE(rt.shift(0, 3, 4).valid);    // rack 0 to rack 1, both in pod 0
  EXPECT_FALSE(rt.shift(0, 7, 4).valid);   // pod 0 by a rack: would straddle pods 0 and 1
  EXPECT_TRUE(rt.shift(4, 7, 4).valid);    // rack 1 (pod 0) to rack 2 (pod 1): one pod each
  EXPECT_FALSE(rt.shift(0, 3, 2).valid);   // rack 0 by a node: would straddle racks 0 and 1
  EXPECT_TRUE(rt.shift(0, 1, 2).valid);    // node 0 to node 1: within rack 0, NIC to NIC
  EXPECT_FALSE(rt.shift(0, 3, 1).valid);   // not a node multiple
  EXPECT_FALSE(rt.shift(16, 19, 4).valid); // off the cluster (20 ranks)
  EXPECT_FALSE(rt.shift(0, 11, -8).valid); // off the cluster
  const auto by = rt.shift(0, 11, 8);
  EXPECT_EQ(by.tors, 2);
  EXPECT_EQ(by.pods, 1);
  EXPECT_EQ(rt.shift_link(rt.pod_link[2], by), -1);  // no pod 3
}
