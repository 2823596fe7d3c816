// Results beyond the step: training estimate (time, GPU hours, cost, energy, power),
// link utilisation per tier, determinism of the new outputs.
#include <gtest/gtest.h>

#include "core/error.hpp"
#include "sim/bench.hpp"
#include "sim/energy.hpp"
#include "sim/simulate.hpp"

using namespace tcsim;

namespace {
sim::RunRequest moe(std::vector<std::string> sets = {}, std::string tokens = "") {
  sim::RunRequest r;
  r.gpu = "H800";
  r.nodes = 2;
  r.workload = "moe-demo";
  r.sets = std::move(sets);
  r.tokens = std::move(tokens);
  return r;
}
}  // namespace

TEST(TrainingEstimate, FollowsFromTheStepAndThePowerModel) {
  auto r = sim::simulate_in_child(moe({"gpu.price_per_hour_usd=2USD/h", "sim.pue=1.25", "sim.node_overhead_w=4000W"}, "14.8T"));
  ASSERT_TRUE(r.training.tokens.has_value());
  const double seconds = 14.8e12 / r.tokens_per_second;
  EXPECT_NEAR(r.training.time_to_train_days, seconds / 86400, 1e-9 * seconds);
  EXPECT_NEAR(r.training.gpu_hours, seconds * 16 / 3600, 1e-6 * seconds);
  EXPECT_NEAR(r.training.cost_usd, 2 * r.training.gpu_hours, 1e-6 * r.training.cost_usd);
  EXPECT_NEAR(r.training.gpu_hours_per_trillion_tokens, r.training.gpu_hours / 14.8, 1e-6 * r.training.gpu_hours);
  // P = PUE (gpus TDP (u + 0.3 (1-u)) + nodes overhead), u = compute / step.
  const double u = r.breakdown.compute_s / r.step_time_s;
  const double watts = 1.25 * (16 * 700 * (u + 0.3 * (1 - u)) + 2 * 4000);
  EXPECT_NEAR(r.training.avg_cluster_power_mw, watts / 1e6, 1e-9);
  EXPECT_NEAR(r.training.energy_mwh, watts * seconds / 3.6e9, 1e-6 * r.training.energy_mwh);
}

TEST(TrainingEstimate, BadTokenCountsAndPueAreInputErrors) {
  EXPECT_THROW(sim::parse_tokens("abc", "--tokens"), core::InputError);
  EXPECT_THROW(sim::parse_tokens("-5T", "--tokens"), core::InputError);
  EXPECT_DOUBLE_EQ(sim::parse_tokens("14.8T", "--tokens"), 14.8e12);
  EXPECT_THROW(sim::simulate_in_child(moe({"sim.pue=0.5"})), core::InputError);
}

TEST(LinkUtilisation, IsReportedPerTierAndBelowOne) {
  auto r = sim::simulate_in_child(moe());
  ASSERT_TRUE(r.link_utilisation.count("nvlink"));
  ASSERT_TRUE(r.link_utilisation.count("nic"));
  for (const auto& [k, v] : r.link_utilisation) {
    EXPECT_GE(v, 0.0) << k;
    EXPECT_LE(v, 1.0 + 1e-9) << k;
  }
  EXPECT_GT(r.link_utilisation.at("nvlink"), 0.01);
  EXPECT_GT(r.link_utilisation.at("nic"), 0.0);  // DP traffic crosses nodes
}

TEST(Determinism, NewOutputsAreByteIdentical) {
  auto a = sim::simulate_in_child(moe({}, "1T"));
  auto b = sim::simulate_in_child(moe({}, "1T"));
  EXPECT_EQ(sim::to_json(a).dump(), sim::to_json(b).dump());
  sim::BenchRequest q;
  q.op = "dispatch";
  q.gpu = "H800";
  q.gpus = 16;
  q.min_bytes = 1 << 20;
  q.max_bytes = 1 << 22;
  EXPECT_EQ(sim::bench_json(q, sim::bench_collective(q)).dump(), sim::bench_json(q, sim::bench_collective(q)).dump());
}

TEST(BenchJson, RowsCarryTheNcclTestsFields) {
  sim::BenchRequest q;
  q.op = "all_gather";
  q.gpu = "H100";
  q.gpus = 8;
  q.min_bytes = 1024;
  q.max_bytes = 8192;
  auto rows = sim::bench_collective(q);
  ASSERT_EQ(rows.size(), 4u);  // 1, 2, 4, 8 KiB
  auto j = sim::bench_json(q, rows);
  for (const char* k : {"bytes", "time_s", "algbw_GBps", "busbw_GBps", "algorithm"}) EXPECT_TRUE(j[0].contains(k)) << k;
  // all_gather busbw = algbw (n-1)/n (nccl-tests PERFORMANCE.md)
  EXPECT_NEAR(j[3]["busbw_GBps"].get<double>(), j[3]["algbw_GBps"].get<double>() * 7 / 8, 1e-9);
  q.op = "broadcastx";
  EXPECT_THROW(sim::bench_collective(q), core::InputError);
}

// The breakdown from hand-written records: compute [0, 4) on the compute stream, a TP
// all-reduce [3, 6) and then one [1, 2) on the TP stream, out of time order in their stream
// (the executor never writes that; compute_breakdown then sorts the lane's boundaries
// instead of merging its streams'), step 8. By hand: compute 4, of which 2 overlapped with
// the all-reduces; tp_all_reduce in flight 1 + 1 + 2 = 4, exposed 2 ([4, 6)); bubble 2.
// The same records in stream order take the merge and give the same numbers.
TEST(Breakdown, HandWrittenRecordsInAndOutOfStreamOrder) {
  auto op = [](workloads::OpKind kind, workloads::Stream stream) {
    workloads::Op o;
    o.kind = kind;
    o.stream = stream;
    o.category = workloads::CommCategory::TpAllReduce;
    return o;
  };
  workloads::Program p;
  p.world_size = 2;
  p.lanes.push_back({{0, 1},
                     {op(workloads::OpKind::Compute, workloads::Stream::Compute),
                      op(workloads::OpKind::Collective, workloads::Stream::TpComm),
                      op(workloads::OpKind::Collective, workloads::Stream::TpComm)}});
  for (bool in_order : {false, true}) {
    sim::ExecutionTrace t;
    t.step_time = 8;
    t.ops = {{{0, 0, 4}, {3, 3, 6}, {1, 1, 2}}};
    if (in_order) std::swap(t.ops[0][1], t.ops[0][2]);
    const sim::Breakdown b = sim::compute_breakdown(p, t);
    SCOPED_TRACE(in_order ? "in stream order" : "out of stream order");
    EXPECT_DOUBLE_EQ(b.compute_s, 4);
    EXPECT_DOUBLE_EQ(b.overlapped_comm_s, 2);
    EXPECT_DOUBLE_EQ(b.bubble_s, 2);
    ASSERT_EQ(b.comm_s.size(), 1u);
    EXPECT_DOUBLE_EQ(b.comm_s.at("tp_all_reduce"), 4);
    ASSERT_EQ(b.exposed_comm_s.size(), 1u);
    EXPECT_DOUBLE_EQ(b.exposed_comm_s.at("tp_all_reduce"), 2);
  }
}
