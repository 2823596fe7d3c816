// Collective algorithms on idle fabrics against their alpha-beta formulas, and
// contention between concurrent collectives. Platforms come from `topo gen`'s builder:
// one node of 8 H100 (NVLink 450 GB/s per direction line rate, 3.33 us end to end),
// effective bandwidth = line rate x the Hopper NVLink efficiency (0.81) of
// platforms/calibration.textproto.
#include <gtest/gtest.h>

#include "sim/calibration.hpp"
#include "tests/sim/sim_test_util.hpp"
#include "workloads/program.hpp"

using namespace tcsim;
using workloads::CollectiveType;

namespace {

// One lane standing for ranks 0..n-1 (all do the same), issuing `count` collectives on
// separate streams at once.
workloads::Program collective_program(int n, CollectiveType type, double bytes, int count = 1) {
  workloads::Program p;
  p.world_size = n;
  workloads::Lane lane;
  for (int r = 0; r < n; ++r) lane.ranks.push_back(r);
  p.lanes.push_back(lane);
  workloads::Communicator c{"world", {{}}};
  for (int r = 0; r < n; ++r) c.groups[0].push_back(r);
  p.comms.push_back(c);
  const workloads::Stream streams[] = {workloads::Stream::DpComm, workloads::Stream::TpComm, workloads::Stream::EpComm};
  for (int i = 0; i < count; ++i) {
    workloads::Op op;
    op.kind = workloads::OpKind::Collective;
    op.stream = streams[i];
    op.coll.type = type;
    op.coll.comm = 0;
    op.coll.bytes = bytes;
    op.label = p.label("c" + std::to_string(i));
    p.lanes[0].ops.push_back(op);
  }
  return p;
}

const double kS = 1073741824.0;  // 1 GiB
const double kAlphaNvlink = 3.33e-6;
const double kBwH100 = 450e9;

double hopper_nvlink_eff() { return sim::calibration_for("hopper").nvlink_efficiency; }

}  // namespace

TEST(RingAllReduce, MatchesAlphaBetaOnIdleNode) {
  const int n = 8;
  auto xml = simtest::make_platform("H100", 1);
  const double t = simtest::step_time(xml, collective_program(n, CollectiveType::AllReduce, kS), {"sim.algo.all_reduce=ring"});
  // Ring all-reduce: 2(n-1)/n * S/B + 2(n-1) * alpha.
  const double B = kBwH100 * hopper_nvlink_eff();
  const double expected = 2.0 * (n - 1) / n * kS / B + 2.0 * (n - 1) * kAlphaNvlink;
  EXPECT_NEAR(t, expected, 0.02 * expected);
}

TEST(RingAllReduce, BusBandwidthOfH100IsNcclTestsFigure) {
  // nccl-tests busBW = algbw * 2(n-1)/n; H100 8-GPU ring: 365-370 GB/s (NCCL issue 1455).
  const int n = 8;
  auto xml = simtest::make_platform("H100", 1);
  const double t = simtest::step_time(xml, collective_program(n, CollectiveType::AllReduce, 8 * kS), {"sim.algo.all_reduce=ring"});
  const double busbw = 8 * kS / t * 2.0 * (n - 1) / n;
  EXPECT_NEAR(busbw, 367e9, 0.10 * 367e9);
}

TEST(NvlsAllReduce, H800BusBandwidthIsReported215) {
  // H800 8-GPU all-reduce busBW ~215 GB/s (NCCL issue 1374); NCCL picks NVLS there.
  const int n = 8;
  auto xml = simtest::make_platform("H800", 1);
  const double t = simtest::step_time(xml, collective_program(n, CollectiveType::AllReduce, 8 * kS));
  const double busbw = 8 * kS / t * 2.0 * (n - 1) / n;
  EXPECT_NEAR(busbw, 215e9, 0.10 * 215e9);
}

TEST(DirectAllToAll, MatchesAlphaBetaOnIdleNode) {
  const int n = 8;
  auto xml = simtest::make_platform("H100", 1);
  const double t = simtest::step_time(xml, collective_program(n, CollectiveType::AllToAll, kS));
  // All-to-all of S bytes per rank: (n-1)/n * S/B + alpha.
  const double B = kBwH100 * hopper_nvlink_eff();
  const double expected = (n - 1.0) / n * kS / B + kAlphaNvlink;
  EXPECT_NEAR(t, expected, 0.02 * expected);
}

TEST(DirectAllToAll, CrossNodeIsBoundByTheNic) {
  // 2 nodes x 8 H100: each rank sends 8 of its 16 slices across its own 400 Gb/s NIC.
  const int n = 16;
  auto xml = simtest::make_platform("H100", 2);
  const double t = simtest::step_time(xml, collective_program(n, CollectiveType::AllToAll, kS));
  const double nic = 50e9 * sim::calibration_for("hopper").nic_efficiency;
  const double expected = (kS / 2) / nic + 2.8e-6;
  EXPECT_NEAR(t, expected, 0.02 * expected);
}

TEST(Contention, TwoConcurrentAllReducesShareTheLinks) {
  const int n = 8;
  auto xml = simtest::make_platform("H100", 1);
  const double t = simtest::step_time(xml, collective_program(n, CollectiveType::AllReduce, kS, 1), {"sim.algo.all_reduce=ring"});
  auto t2 = simtest::in_child([&] {
    auto two = simtest::run_program(xml, collective_program(n, CollectiveType::AllReduce, kS, 2), {"sim.algo.all_reduce=ring"});
    return std::vector<double>{two.step_time, two.ops[0][0].end, two.ops[0][1].end};
  });
  // Both run on every NVLink port at once: each takes about twice as long.
  EXPECT_NEAR(t2.at(1), 2 * t, 0.05 * 2 * t);
  EXPECT_NEAR(t2.at(2), 2 * t, 0.05 * 2 * t);
}
