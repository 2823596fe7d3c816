// SM contention (issue 5): a communication kernel occupies a configurable number of SMs
// while it runs, slowing concurrent compute. DeepSeek-V3 (arXiv 2412.19437 §3.2.2): its
// all-to-all kernels use 20 of the H800's 132 SMs (platforms/calibration.textproto,
// hopper comm_sms = 20; platforms/gpus.textproto, H800 sm_count = 132). A compute op
// launched while a communication kernel of its rank runs gets the remaining SMs, so it
// takes sm_count / (sm_count - comm_sms) times as long (sim/cost_model.cpp
// sm_contention_factor): 132 / 112 = 1.178571... on the H800.
//
// The program: ranks 0 and 1 on one H800 node (NVLink), each with
//   0 "lead-in"   compute (BF16 GEMM) on the compute stream, no deps,
//   1 "all-reduce" of 64 GiB over {0, 1} on the DP stream, no deps: it starts at t = 0
//                 and runs for about 0.4 s (S / 162 GB/s effective NVLink),
//   2 "during"    compute after the lead-in: launched while the all-reduce runs and done
//                 before it ends,
//   3 "after"     compute after the all-reduce: nothing communicates any more.
// The durations of 2 and 3 are compared with the cost model's time of the op on an idle
// GPU (CostModel::seconds from the catalog H800 and the hopper calibration), to 1e-6
// relative: compute ops are timers of exactly that many seconds (sim/executor.cpp), so
// only SimGrid's clock rounding remains.
#include <gtest/gtest.h>

#include "sim/calibration.hpp"
#include "sim/cost_model.hpp"
#include "tests/sim/sim_test_util.hpp"
#include "topology/gpu.hpp"
#include "workloads/program.hpp"

using namespace tcsim;
namespace wl = tcsim::workloads;

namespace {

wl::ComputeOp gemm(double flops) {
  wl::ComputeOp c;
  c.flops = flops;
  c.cls = wl::ComputeClass::Gemm;
  c.precision = wl::Precision::BF16;
  return c;
}

const double kLeadIn = 2e13, kDuring = 1e14, kAfter = 1e14;  // FLOP per rank
const double kAllReduce = 64.0 * (1ull << 30);              // bytes per rank

// folded: one lane standing for both ranks (the all-reduce then has one lane, the
// analytical fidelity's shortcut for folded TP and EP groups).
wl::Program contention_program(bool folded = false) {
  wl::Program p;
  p.world_size = 2;
  p.comms.push_back(wl::Communicator{"pair", {{0, 1}}});
  for (int r = 0; r < (folded ? 1 : 2); ++r) {
    wl::Lane lane{folded ? std::vector<int>{0, 1} : std::vector<int>{r}, {}};
    auto compute = [&](const char* name, double flops, std::vector<uint32_t> deps) {
      wl::Op op;
      op.kind = wl::OpKind::Compute;
      op.stream = wl::Stream::Compute;
      op.compute = gemm(flops);
      op.label = p.label(name);
      op.deps = std::move(deps);
      lane.ops.push_back(op);
    };
    compute("lead-in", kLeadIn, {});
    wl::Op ar;
    ar.kind = wl::OpKind::Collective;
    ar.stream = wl::Stream::DpComm;
    ar.category = wl::CommCategory::DpAllReduce;
    ar.coll.type = wl::CollectiveType::AllReduce;
    ar.coll.comm = 0;
    ar.coll.bytes = kAllReduce;
    ar.label = p.label("all-reduce");
    lane.ops.push_back(ar);
    compute("during", kDuring, {0});
    compute("after", kAfter, {1, 2});
    p.lanes.push_back(lane);
  }
  wl::validate(p, "sm contention test");
  return p;
}

// Per lane: the all-reduce's start and end, the durations of "during" and "after".
std::vector<double> run(const std::string& xml, bool contention, sim::Fidelity fidelity = sim::Fidelity::Flow,
                        bool folded = false) {
  const wl::Program p = contention_program(folded);
  return simtest::in_child([&] {
    sim::ExecutorOptions o;
    o.sm_contention = contention;
    o.fidelity = fidelity;
    auto t = simtest::run_program(xml, p, {}, o);
    std::vector<double> out;
    for (const auto& lane : t.ops) {
      out.push_back(lane[1].start);
      out.push_back(lane[1].end);
      out.push_back(lane[2].end - lane[2].start);
      out.push_back(lane[3].end - lane[3].start);
    }
    return out;
  });
}

// Seconds of a GEMM on an idle GPU with all its SMs, from the same inputs the run uses.
double idle_seconds(const topology::GpuSpec& spec, double flops) {
  return sim::CostModel(spec, sim::calibration_for(spec.family)).seconds(gemm(flops));
}

}  // namespace

TEST(SmContention, ComputeDuringACommunicationKernelRunsOnTheRemainingSms) {
  const auto spec = topology::find_gpu("H800");
  ASSERT_EQ(spec.sm_count, 132);
  ASSERT_EQ(sim::calibration_for(spec.family).comm_sms, 20);
  const double factor = 132.0 / (132.0 - 20.0);
  EXPECT_NEAR(sim::CostModel(spec, sim::calibration_for(spec.family)).sm_contention_factor(), factor, 1e-12);

  const auto xml = simtest::make_platform("H800", 1);
  const double during = idle_seconds(spec, kDuring), after = idle_seconds(spec, kAfter);
  const auto on = run(xml, true), off = run(xml, false);
  ASSERT_EQ(on.size(), 8u);
  ASSERT_EQ(off.size(), 8u);
  for (size_t lane = 0; lane < 2; ++lane) {
    const double* a = &on[4 * lane];
    const double* b = &off[4 * lane];
    // Premise: the all-reduce starts at 0 and outlasts "during" (lead-in + slowed op).
    EXPECT_EQ(a[0], 0.0);
    ASSERT_GT(a[1], idle_seconds(spec, kLeadIn) * factor + during * factor);
    // Overlapping the all-reduce: slowed by exactly 132/112 with contention, not without.
    EXPECT_NEAR(a[2], during * factor, 1e-6 * during * factor) << "lane " << lane;
    EXPECT_NEAR(b[2], during, 1e-6 * during) << "lane " << lane;
    // After the all-reduce: no communication kernel, the idle-GPU time either way.
    EXPECT_NEAR(a[3], after, 1e-6 * after) << "lane " << lane;
    EXPECT_NEAR(b[3], after, 1e-6 * after) << "lane " << lane;
  }
}

TEST(SmContention, FactorFollowsTheConfiguredSmCount) {
  // The same program on an H800 with gpu.sm_count=66: the all-reduce's 20 SMs leave 46,
  // so compute during it takes 66/46 = 1.4348 times as long.
  const auto xml = simtest::make_platform("H800", 1, {"gpu.sm_count=66"});
  auto spec = topology::find_gpu("H800");
  spec.sm_count = 66;
  const double factor = 66.0 / 46.0;
  EXPECT_NEAR(sim::CostModel(spec, sim::calibration_for(spec.family)).sm_contention_factor(), factor, 1e-12);
  const double during = idle_seconds(spec, kDuring);
  const auto on = run(xml, true);
  ASSERT_EQ(on.size(), 8u);
  ASSERT_GT(on[1], idle_seconds(spec, kLeadIn) * factor + during * factor);
  EXPECT_NEAR(on[2], during * factor, 1e-6 * during * factor);
  EXPECT_NEAR(on[6], during * factor, 1e-6 * during * factor);
}

TEST(SmContention, OneLaneCollectiveInTheAnalyticalFidelityHoldsSmsUntilItEnds) {
  // The same program folded into one lane, analytical: the all-reduce is a timer of its
  // closed form with no rendezvous (sim/executor_comm.cpp, arrive_collective); compute
  // launched while it runs is slowed, compute after it is not, as in flow.
  const auto spec = topology::find_gpu("H800");
  const double factor = 132.0 / 112.0;
  const auto xml = simtest::make_platform("H800", 1);
  const double during = idle_seconds(spec, kDuring), after = idle_seconds(spec, kAfter);
  const auto a = run(xml, true, sim::Fidelity::Analytical, true);
  const auto b = run(xml, false, sim::Fidelity::Analytical, true);
  ASSERT_EQ(a.size(), 4u);
  ASSERT_EQ(b.size(), 4u);
  EXPECT_EQ(a[0], 0.0);
  ASSERT_GT(a[1], idle_seconds(spec, kLeadIn) * factor + during * factor);
  EXPECT_NEAR(a[2], during * factor, 1e-12 * during);
  EXPECT_NEAR(b[2], during, 1e-12 * during);
  EXPECT_NEAR(a[3], after, 1e-12 * after);
  // The all-reduce takes its closed form whether or not compute is slowed beside it.
  EXPECT_EQ(a[1], b[1]);
  // And as long as the unfolded run's analytical all-reduce.
  const auto unfolded = run(xml, true, sim::Fidelity::Analytical);
  EXPECT_NEAR(unfolded[1], a[1], 1e-12 * a[1]);
}
