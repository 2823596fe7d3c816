// End-to-end steps through sim::simulate (each in its own process).
#include <gtest/gtest.h>

#include <filesystem>

#include "core/overrides.hpp"
#include "sim/calibration.hpp"
#include "sim/report.hpp"
#include "sim/simulate.hpp"
#include "tests/sim/sim_test_util.hpp"
#include "workloads/chakra/chakra.hpp"
#include "workloads/generator.hpp"
#include "workloads/model.hpp"

using namespace tcsim;

namespace {

workloads::Program compute_only(int n) {
  workloads::Program p;
  p.world_size = n;
  workloads::Lane lane;
  for (int r = 0; r < n; ++r) lane.ranks.push_back(r);
  p.lanes.push_back(lane);
  for (int i = 0; i < 10; ++i) {
    workloads::Op op;
    op.kind = workloads::OpKind::Compute;
    op.compute.flops = 4e12;  // a large BF16 GEMM
    op.compute.cls = workloads::ComputeClass::Gemm;
    op.label = p.label("gemm");
    if (i > 0) op.deps = {static_cast<uint32_t>(i - 1)};
    p.lanes[0].ops.push_back(op);
  }
  return p;
}

}  // namespace

TEST(Step, ComputeOnlyRunIsEquallyFastOnH100AndH800) {
  // Same SMs, clocks and HBM: only NVLink differs, and this step never communicates.
  auto h100 = simtest::make_platform("H100", 1);
  auto h800 = simtest::make_platform("H800", 1);
  auto a = simtest::in_child([&] { return std::vector<double>{simtest::run_program(h100, compute_only(8)).step_time}; });
  auto b = simtest::in_child([&] { return std::vector<double>{simtest::run_program(h800, compute_only(8)).step_time}; });
  EXPECT_GT(a.at(0), 0.0);
  EXPECT_DOUBLE_EQ(a.at(0), b.at(0));
}

TEST(Step, AllToAllDominatedMoeIsSlowerOnH800) {
  // moe-demo: EP8 inside each node, so dispatch/combine cross NVLink (450 vs 200 GB/s).
  auto h100 = simtest::make_platform("H100", 2);
  auto h800 = simtest::make_platform("H800", 2);
  auto a = sim::simulate_in_child(simtest::request(h100, "moe-demo"));
  auto b = sim::simulate_in_child(simtest::request(h800, "moe-demo"));
  EXPECT_GT(b.step_time_s, a.step_time_s * 1.02);
  EXPECT_GT(b.breakdown.exposed_comm_s.at("ep_all_to_all"), 1.5 * a.breakdown.exposed_comm_s.at("ep_all_to_all"));
  // Same GEMMs; only SM contention (compute launched while a comm kernel runs) differs.
  EXPECT_NEAR(a.breakdown.compute_s, b.breakdown.compute_s, 0.02 * a.breakdown.compute_s);
  // Accounting adds up: compute + exposed comm + idle = step time (per GPU average).
  double exposed = 0;
  for (const auto& [k, v] : b.breakdown.exposed_comm_s) exposed += v;
  EXPECT_NEAR(b.breakdown.compute_s + exposed + b.breakdown.bubble_s, b.step_time_s, 1e-9 * b.step_time_s);
}

TEST(Step, FoldedAndUnfoldedProgramsGiveTheSameStepTime) {
  auto xml = simtest::make_platform("H800", 2);
  auto folded = sim::simulate_in_child(simtest::request(xml, "moe-demo", {"sim.fold=true"}));
  auto unfolded = sim::simulate_in_child(simtest::request(xml, "moe-demo", {"sim.fold=false"}));
  EXPECT_NEAR(folded.step_time_s, unfolded.step_time_s, 1e-9 * unfolded.step_time_s);
  EXPECT_LT(folded.ops, unfolded.ops);
}

TEST(Step, SameInputsGiveByteIdenticalResults) {
  auto xml = simtest::make_platform("H800", 2);
  auto a = sim::simulate_in_child(simtest::request(xml, "moe-demo", {"gpu.nvlink_bw=100GBps"}));
  auto b = sim::simulate_in_child(simtest::request(xml, "moe-demo", {"gpu.nvlink_bw=100GBps"}));
  EXPECT_EQ(sim::to_json(a).dump(), sim::to_json(b).dump());
}

TEST(Step, NvlinkOverrideReratesThePlatform) {
  auto xml = simtest::make_platform("H100", 2);
  auto full = sim::simulate_in_child(simtest::request(xml, "moe-demo"));
  auto cut = sim::simulate_in_child(simtest::request(xml, "moe-demo", {"gpu.nvlink_bw=200GBps"}));
  EXPECT_GT(cut.step_time_s, full.step_time_s);
}

TEST(ChakraReplay, AstraSimAllReduceMatchesAlphaBeta) {
  // ASTRA-sim's microbenchmark: 1 MiB all-reduce on 8 ranks (shared/external, MANIFEST.tsv),
  // replayed on one node of 8 H100 with the ring algorithm:
  // 2(n-1)/n * S/B + 2(n-1) * alpha, B = 450 GB/s x Hopper NVLink efficiency, alpha = 3.33 us.
  auto xml = simtest::make_platform("H100", 1);
  const std::string prefix = std::string(TCSIM_SOURCE_DIR) +
                             "/../shared/external/astra-sim/astra-sim/examples/workload/microbenchmarks/all_reduce/8npus_1MB/all_reduce";
  auto r = sim::simulate_in_child(simtest::request(xml, "", {"sim.algo.all_reduce=ring"}, prefix));
  const double n = 8, S = 1048576, B = 450e9 * sim::calibration_for("hopper").nvlink_efficiency;
  const double expected = 2 * (n - 1) / n * S / B + 2 * (n - 1) * 3.33e-6;
  EXPECT_NEAR(r.step_time_s, expected, 0.02 * expected);
  EXPECT_GT(r.breakdown.exposed_comm_s.size(), 0u);
}

TEST(Step, InMemoryClusterMatchesItsXmlPlatformExactly) {
  // `run --gpu/--nodes/--fabric` builds the cluster in memory (routes computed on demand);
  // it must give the same result as the `topo gen` XML of the same cluster.
  auto xml = simtest::make_platform("H800", 2);
  auto from_xml = sim::simulate_in_child(simtest::request(xml, "moe-demo"));
  sim::RunRequest mem = simtest::request("", "moe-demo");
  mem.gpu = "H800";
  mem.nodes = 2;
  auto in_memory = sim::simulate_in_child(mem);
  EXPECT_DOUBLE_EQ(from_xml.step_time_s, in_memory.step_time_s);
  EXPECT_DOUBLE_EQ(from_xml.breakdown.compute_s, in_memory.breakdown.compute_s);
}

TEST(ChakraReplay, SendRecvRingReplaysWithEagerSends) {
  // ASTRA-sim's custom ring all-reduce made of send/recv nodes (8 ranks, 1 MiB): each rank
  // sends before it receives, so sends must be eager (data moves when the send is issued).
  // On platforms/examples/astra_ring8.xml (50 GB/s, 500 ns per link, no efficiency factor):
  // 14 steps x (0.5 us + 131,072 B / 50 GB/s) + 7 reductions x 7 us = 92.70 us.
  const std::string prefix = std::string(TCSIM_SOURCE_DIR) +
                             "/../shared/external/astra-sim/astra-sim/examples/system/custom_collectives/"
                             "custom_ring_allreduce_8npus_1MB/custom_allreduce";
  const std::string xml = std::string(TCSIM_SOURCE_DIR) + "/platforms/examples/astra_ring8.xml";
  auto r = sim::simulate_in_child(simtest::request(xml, "", {}, prefix));
  const double expected = 14 * (0.5e-6 + 131072.0 / 50e9) + 7 * 7e-6;
  EXPECT_NEAR(r.step_time_s, expected, 0.01 * expected);
}

// A receive posted before its producer has sent is waiting on the pipeline, not moving data:
// lane 1 posts its receive at t = 0, lane 0 computes 1e12 FLOP and then sends 8 MB over
// NVLink. Lane 1's time before the send is bubble; its receive is in flight only while the
// bytes move (tens of microseconds), in both fidelities.
TEST(Step, ReceiveWaitingForItsProducerIsBubbleNotCommunication) {
  workloads::Program p = simtest::send_recv_program(1e12, 8e6);
  workloads::Op after = p.lanes[0].ops[0];  // lane 1 computes on what it received
  after.deps = {0};
  p.lanes[1].ops.push_back(after);
  auto xml = simtest::make_platform("H100", 1);
  for (auto fidelity : {sim::Fidelity::Flow, sim::Fidelity::Analytical}) {
    auto v = simtest::in_child([&] {
      sim::ExecutorOptions o;
      o.fidelity = fidelity;
      auto t = simtest::run_program(xml, p, {}, o);
      auto b = sim::compute_breakdown(p, t);
      // Lane 1 only (the breakdown averages lanes weighted by ranks): recompute from its records.
      const auto& r = t.ops[1][0];
      return std::vector<double>{t.ops[0][0].end, r.start, r.end, b.bubble_s, b.comm_s["pp_p2p"]};
    });
    const double compute_end = v[0], recv_start = v[1], recv_end = v[2];
    EXPECT_NEAR(recv_start, compute_end, 1e-9) << "the receive starts when the send does";
    // 8 MB at the H100's calibrated NVLink rate (450 GB/s x 0.81) is ~22 us, plus latency.
    EXPECT_GT(recv_end - recv_start, 0.0);
    EXPECT_LT(recv_end - recv_start, 50e-6);
    // Lane 1 idles for lane 0's compute: half of the averaged bubble is at least that.
    EXPECT_GE(v[3], 0.5 * compute_end * (1 - 1e-9));
    EXPECT_LT(v[4], 50e-6);
  }
}

TEST(ChakraReplay, ExportedPipelineWorkloadReplaysAtItsStepTime) {
  // `tcsim trace export` then `tcsim run --chakra` of pipeline-parallel workloads (sends and
  // receives between stages; with TP, Megatron's scatter/gather) on the cluster of `tcsim run`:
  // the replay takes the generated run's step time. The export is the folded program unfolded
  // replica-wise, with exact durations, FLOP and bytes (tcsim_* attributes), so the replay runs
  // the same ops on the same links; only the order of floating-point sums may differ (one lane
  // per rank instead of per folded lane), hence 1e-9 relative, far below any modelled effect.
  struct Case {
    std::string workload;
    int nodes;
    std::vector<std::string> sets;
  };
  const std::vector<Case> cases = {
      {"moe-demo", 2, {"plan.pp=2"}},
      {"dense-demo", 1, {"plan.pp=2", "plan.schedule=interleaved-1f1b", "plan.virtual_stages=2"}},
      {"dense-demo", 1, {"plan.pp=4"}},
      {"dense-demo", 2, {"plan.pp=2", "plan.tp=2"}},
  };
  for (size_t k = 0; k < cases.size(); ++k) {
    const Case& c = cases[k];
    std::string what = c.workload;
    for (const auto& s : c.sets) what += " " + s;
    SCOPED_TRACE(what);
    auto w = workloads::find_workload(c.workload, "test");
    core::Overrides o;
    for (const auto& s : c.sets) o.add(s, "test");
    workloads::apply_workload_overrides(w, o);
    const auto dir = std::filesystem::temp_directory_path() /
                     ("tcsim-test-" + std::to_string(getpid()) + "-pp-export-" + std::to_string(k));
    std::filesystem::create_directories(dir);
    const std::string prefix = (dir / "step").string();
    workloads::write_chakra(workloads::generate(w, 8 * c.nodes), prefix);  // what `trace export` does

    auto request = [&](const std::string& workload, const std::string& chakra, const std::vector<std::string>& sets) {
      sim::RunRequest r = simtest::request("", workload, sets, chakra);
      r.gpu = "H800";
      r.nodes = c.nodes;
      return r;
    };
    auto generated = sim::simulate_in_child(request(c.workload, "", c.sets));
    auto replay = sim::simulate_in_child(request("", prefix, {}));
    std::filesystem::remove_all(dir);
    EXPECT_NEAR(replay.step_time_s, generated.step_time_s, 1e-9 * generated.step_time_s);
    EXPECT_NEAR(replay.mfu, generated.mfu, 1e-9 * generated.mfu);
    ASSERT_TRUE(replay.breakdown.exposed_comm_s.count("pp_p2p"));
    EXPECT_NEAR(replay.breakdown.exposed_comm_s.at("pp_p2p"), generated.breakdown.exposed_comm_s.at("pp_p2p"),
                1e-9 * generated.step_time_s);
  }
}
