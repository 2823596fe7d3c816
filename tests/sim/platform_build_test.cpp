// Platform::build without SimGrid objects (the analytical fidelity's in-memory platforms)
// leaves the engine empty, and gives the same GPUs, link table, routes and analytical step
// as the platform built with SimGrid objects (what every in-memory build was before).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "sim_test_util.hpp"
#include "workloads/generator.hpp"
#include "workloads/model.hpp"

using namespace tcsim;

namespace {

struct Both {
  double hosts = -1, links = -1;  ///< in the engine after the build without SimGrid objects
  double mismatches = -1;         ///< GPUs, links, routes or link loads that differ
  double step_none = 0, step_simgrid = 0;
};

// Builds the cluster both ways in one child's engine (without objects first) and runs
// moe-demo with the analytical fidelity on each.
Both build_both(const std::string& gpu, int nodes, const std::string& fabric, const std::vector<std::string>& sets = {}) {
  auto v = simtest::in_child([&] {
    auto engine_ptr = simtest::make_engine();
    auto& engine = *engine_ptr;
    core::Overrides o = simtest::overrides(sets);
    auto spec = topology::find_gpu(gpu);
    topology::apply_gpu_overrides(spec, o);
    const auto cluster = topology::build_cluster(spec, nodes, 8, fabric, o);
    core::Overrides o_none = o, o_simgrid = o;
    const auto none = sim::Platform::build(engine, cluster, o_none, sim::SimgridObjects::None);
    const auto hosts = static_cast<double>(engine.get_host_count());
    const auto links = static_cast<double>(engine.get_link_count());
    const auto simgrid = sim::Platform::build(engine, cluster, o_simgrid, sim::SimgridObjects::GpusAndSwitches);

    double bad = 0;
    bad += none.timer_host() != nullptr || none.fabric() != nullptr || simgrid.timer_host() == nullptr;
    bad += none.path() != simgrid.path() || none.spec().name != simgrid.spec().name ||
           none.spec().nvlink_bw != simgrid.spec().nvlink_bw || none.calibration().family != simgrid.calibration().family;
    bad += none.size() != simgrid.size() || none.nodes() != simgrid.nodes() || none.gpus_per_node() != simgrid.gpus_per_node();
    for (size_t i = 0; i < none.gpus().size() && i < simgrid.gpus().size(); ++i) {
      const auto &a = none.gpus()[i], &b = simgrid.gpus()[i];
      bad += a.host != nullptr || b.host == nullptr || a.rank != b.rank || a.node != b.node || a.index != b.index || a.domain != b.domain;
    }
    // The table with SimGrid objects is SimGrid's links (all but its __loopback__), as SimGrid
    // names and rates them; the one without must be the same, link by link.
    const auto &ln = none.all_links(), &ls = simgrid.all_links();
    bad += ln.size() != ls.size() || ls.size() + 1 != engine.get_link_count();
    for (size_t i = 0; i < ln.size() && i < ls.size(); ++i) {
      const auto &a = ln[i], &b = ls[i];
      bad += a.sg != nullptr || none.link_name(static_cast<uint32_t>(i)) != simgrid.link_name(static_cast<uint32_t>(i)) || a.kind != b.kind || a.bandwidth != b.bandwidth || a.latency != b.latency ||
             a.fatpipe != b.fatpipe;
      bad += b.sg == nullptr || b.sg->get_name() != simgrid.link_name(static_cast<uint32_t>(i)) || b.sg->get_bandwidth() != b.bandwidth || b.sg->get_latency() != b.latency;
    }
    // Ids are positions in name order (strictly ascending as std::string compares names).
    for (uint32_t i = 1; i < ln.size(); ++i) bad += !(none.link_name(i - 1) < none.link_name(i));
    for (int s = 0; s < none.size(); s += 3)
      for (int d = 0; d < none.size(); ++d) {
        std::vector<uint32_t> ra, rb;
        double la = 0, lb = 0;
        none.route_ids(s, d, ra, &la);
        simgrid.route_ids(s, d, rb, &lb);
        bad += ra != rb || la != lb;
      }

    const auto w = workloads::find_workload("moe-demo", "test");
    const auto program = workloads::generate(w, none.size());
    sim::AlgorithmSelector selector;
    if (program.moe_top_k > 0) selector.set_default_moe({program.moe_top_k, program.moe_max_nodes});
    sim::ExecutorOptions opts;
    opts.fidelity = sim::Fidelity::Analytical;
    const sim::CostModel cost_none(none.spec(), none.calibration()), cost_simgrid(simgrid.spec(), simgrid.calibration());
    const auto ta = sim::execute(none, program, cost_none, selector, opts);
    const auto tb = sim::execute(simgrid, program, cost_simgrid, selector, opts);
    bad += ta.link_bytes != tb.link_bytes;
    return std::vector<double>{hosts, links, bad, ta.step_time, tb.step_time};
  });
  return {v.at(0), v.at(1), v.at(2), v.at(3), v.at(4)};
}

void expect_same(const Both& b, const std::string& what) {
  EXPECT_EQ(b.hosts, 0) << what;
  EXPECT_EQ(b.links, 0) << what;
  EXPECT_EQ(b.mismatches, 0) << what;
  EXPECT_GT(b.step_none, 0) << what;
  EXPECT_NEAR(b.step_none, b.step_simgrid, 1e-12 * b.step_simgrid) << what;
}

}  // namespace

TEST(PlatformBuild, WithoutSimgridObjectsSameAsWith) {
  for (const auto& fabric : {"single-switch", "multi-plane-fat-tree", "rail-fat-tree"}) {
    expect_same(build_both("H800", 2, fabric), fabric);
  }
}

TEST(PlatformBuild, WithoutSimgridObjectsSameOnClos3AndNvl72) {
  expect_same(build_both("H100", 8, "clos3"), "clos3");
  expect_same(build_both("H800", 18, "nvl72"), "nvl72");
}

// gpu.* overrides re-rate the links the same way (applied to the cluster's GPU first, as
// `tcsim run --gpu` does).
TEST(PlatformBuild, WithoutSimgridObjectsSameWithOverrides) {
  expect_same(build_both("H800", 2, "multi-plane-fat-tree", {"gpu.nvlink_bw=300GBps", "gpu.nic_bw=100GBps"}), "overrides");
}

// Link ids are positions in name order whatever the names: the directions of a cluster are
// ordered by sorting its links when no name holds '_' (generated clusters), else by sorting
// every direction's whole name. Names that would break the shortcut ("x" beside "x_DOWNa":
// "x_DOWN" < "x_DOWNa_DOWN" < "x_UP") still come out in order.
// The names are ordered by merging the runs already in order (a few for generated
// clusters), or sorted when there are many: names scrambled into 100 runs and more take
// that path, and names in reverse order (one run per name).
TEST(PlatformBuild, LinkIdsAreInNameOrderWhateverTheNames) {
  for (const std::string names : {"generated", "underscores", "scrambled", "reversed"}) {
    core::Overrides o;
    auto cluster = topology::build_cluster(topology::find_gpu("H800"), names == "generated" ? 2 : 32, 8, "single-switch", o);
    if (names == "underscores") {
      cluster.links[0].name = "x";
      cluster.links[1].name = "x_DOWNa";
      cluster.links[2].name = "x_";
      cluster.links[3].name = "w_UP";
    }
    const size_t n = cluster.links.size();
    for (size_t i = 0; i < n && names == "scrambled"; ++i) cluster.links[i].name = "l" + std::to_string((i * 7919) % n);
    for (size_t i = 0; i < n && names == "reversed"; ++i) cluster.links[i].name = "l" + std::to_string(100000 - i);
    const auto p = sim::Platform::build(std::move(cluster), o);
    ASSERT_EQ(p.all_links().size(), 2u * n);
    for (uint32_t i = 1; i < p.all_links().size(); ++i) {
      EXPECT_LT(p.link_name(i - 1), p.link_name(i)) << "ids " << i - 1 << " and " << i << " (" << names << ")";
    }
  }
}
