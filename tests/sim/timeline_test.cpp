// The Chrome/Perfetto trace of one step: valid JSON, a process per lane, a thread per
// stream, one complete event per executed op, flow arrows for pipeline sends.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "core/error.hpp"
#include "sim/simulate.hpp"
#include "sim/timeline.hpp"
#include "tests/sim/sim_test_util.hpp"

using namespace tcsim;

TEST(Timeline, MoeDemoTraceHasTracksAndOneEventPerOp) {
  auto path = std::filesystem::temp_directory_path() / ("tcsim-trace-" + std::to_string(getpid()) + ".json");
  sim::RunRequest r;
  r.gpu = "H800";
  r.nodes = 2;
  r.workload = "moe-demo";
  r.trace = path.string();
  auto res = sim::simulate_in_child(r);
  std::ifstream in(path);
  auto j = nlohmann::json::parse(in);  // throws if not valid JSON
  std::map<std::string, int> ph;
  std::set<int> pids, tids;
  for (const auto& e : j["traceEvents"]) {
    ph[e["ph"].get<std::string>()]++;
    if (e["ph"] == "X") {
      pids.insert(e["pid"].get<int>());
      tids.insert(e["tid"].get<int>());
      EXPECT_GE(e["dur"].get<double>(), 0.0);
      EXPECT_LE((e["ts"].get<double>() + e["dur"].get<double>()) * 1e-6, res.step_time_s * (1 + 1e-9));
    }
  }
  // moe-demo is folded: one lane stands for all ranks (one process), compute and comm
  // streams as threads; every op of the lane ran once.
  EXPECT_EQ(pids.size(), j["otherData"]["lanes_shown"].get<size_t>());
  EXPECT_GE(tids.size(), 2u);
  EXPECT_EQ(static_cast<size_t>(ph["X"]), res.ops);
  EXPECT_GE(ph["M"], 3);
  std::filesystem::remove(path);
}

TEST(Timeline, PipelineSendsBecomeFlowArrows) {
  // A two-lane program: lane 0 computes then sends, lane 1 receives.
  workloads::Program p = simtest::send_recv_program(0, 1e6);
  sim::ExecutionTrace t;
  t.step_time = 3e-3;
  t.ops = {{{0, 0, 1e-3}, {1e-3, 1e-3, 2e-3}}, {{0, 0, 2e-3}}};
  auto j = sim::build_timeline(p, t);
  int s_count = 0, f_count = 0, x = 0;
  for (const auto& e : j["traceEvents"]) {
    s_count += e["ph"] == "s";
    f_count += e["ph"] == "f";
    x += e["ph"] == "X";
  }
  EXPECT_EQ(x, 3);
  EXPECT_EQ(s_count, 1);
  EXPECT_EQ(f_count, 1);
  // Capped tracks: 200 lanes -> 64 processes.
  workloads::Program big;
  big.world_size = 200;
  big.lanes.resize(200);
  sim::ExecutionTrace bt;
  bt.ops.resize(200);
  for (int i = 0; i < 200; ++i) big.lanes[static_cast<size_t>(i)].ranks = {i};
  auto bj = sim::build_timeline(big, bt);
  EXPECT_EQ(bj["otherData"]["lanes_shown"].get<size_t>(), 64u);
}

TEST(Timeline, UnwritablePathIsAnInputError) {
  EXPECT_THROW(sim::check_trace_path("/nonexistent-dir/t.json"), core::InputError);
}
