// `tcsim plan search`: every plan that fits is simulated on the cluster and ranked by
// throughput; the ranking agrees with `tcsim run` on the same plan, the flow verification
// with the analytical ranking, and bad input is refused.
#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>

#include <nlohmann/json.hpp>

#include "tests/cli/cli_test_util.hpp"

namespace tcsim::clitest {
namespace {

Result run(const std::string& args) { return run_tcsim(args, tmp_dir()); }

const char* kSearch = "plan search --workload moe-demo --gpu H800 --nodes 2 ";

TEST(PlanSearch, RanksEveryFittingPlanAndAgreesWithRun) {
  auto r = run(std::string(kSearch) + "--top 200 --verify 1 --json");
  ASSERT_EQ(r.code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  // The same plans as `plan enumerate` lists for 16 H800 (80 GB each).
  auto e = run("plan enumerate --workload moe-demo --gpus 16 --gpu H800 --json");
  ASSERT_EQ(e.code, 0) << e.err;
  const auto enumerated = nlohmann::json::parse(e.out)["plans"].size();
  EXPECT_EQ(j["fitting"].get<size_t>(), enumerated);
  EXPECT_GT(enumerated, 10u);
  EXPECT_EQ(j["evaluated"].get<size_t>() + j["skipped"].size(), enumerated);
  const auto& plans = j["plans"];
  ASSERT_EQ(plans.size(), j["evaluated"].get<size_t>());
  for (size_t i = 1; i < plans.size(); ++i)
    EXPECT_GE(plans[i - 1]["tokens_per_second"].get<double>(), plans[i]["tokens_per_second"].get<double>()) << i;
  EXPECT_EQ(j["fidelity"], "analytical");

  // The best plan, run on its own with `tcsim run`, takes the same step (same generator,
  // same executor, same platform): to 1e-9.
  const auto& best = plans[0];
  std::string sets;
  for (const char* k : {"tp", "pp", "ep", "cp", "dp", "zero_stage"})
    sets += " --set plan." + std::string(k) + "=" + std::to_string(best[k].get<int64_t>());
  sets += " --set plan.recompute=" + best["recompute"].get<std::string>();
  sets += std::string(" --set plan.sp=") + (best["tp"].get<int64_t>() > 1 ? "true" : "false");
  auto one = run("run --workload moe-demo --gpu H800 --nodes 2 --fidelity analytical --json" + sets);
  ASSERT_EQ(one.code, 0) << one.err;
  const double step = nlohmann::json::parse(one.out)["step_time_s"].get<double>();
  EXPECT_NEAR(step, best["step_time_s"].get<double>(), 1e-9 * step);

  // --verify 1: the flow fidelity within 5% of the analytical ranking's step.
  ASSERT_TRUE(best.contains("flow_step_time_s"));
  EXPECT_NEAR(best["flow_step_time_s"].get<double>(), best["step_time_s"].get<double>(), 0.05 * step);
  EXPECT_FALSE(plans[1].contains("flow_step_time_s"));

  // Deterministic: the same command prints the same bytes (the timing line is on stderr).
  auto again = run(std::string(kSearch) + "--top 200 --verify 1 --json");
  EXPECT_EQ(again.out, r.out);
  EXPECT_NE(r.err.find("plans simulated in"), std::string::npos) << r.err;
  // No progress line when stderr is not a terminal (it is a pipe here).
  EXPECT_EQ(r.err.find('\r'), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("verifying plan"), std::string::npos) << r.err;
}

TEST(PlanSearch, TableShowsTheTopRows) {
  auto r = run(std::string(kSearch) + "--top 3");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("moe-demo on 16 H800 GPUs"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\n   3 "), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("\n   4 "), std::string::npos) << r.out;
}

TEST(PlanSearch, SchedulesMicroBatchesAndChunksAreSearchedToo) {
  auto r = run("plan search --workload dense-demo --gpu H100 --nodes 4 --top 1000 --schedule 1f1b interleaved-1f1b "
               "--micro-batch 1 2 --virtual-stages 2 --json");
  ASSERT_EQ(r.code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  std::set<std::string> seen;
  int interleaved = 0, pp1 = 0;
  for (const auto& p : j["plans"]) {
    if (p["schedule"] == "interleaved-1f1b") {
      ++interleaved;
      EXPECT_EQ(p["virtual_stages"], 2);
      EXPECT_GE(p["pp"].get<int>(), 2);
    }
    if (p["pp"] == 1) ++pp1;
    // A plan without a pipeline appears once, whatever the schedule list.
    nlohmann::json key = p["plan"];
    if (p["pp"] == 1) key.erase("schedule"), key.erase("virtual_stages");
    EXPECT_TRUE(seen.insert(key.dump()).second) << key.dump();
  }
  EXPECT_GT(interleaved, 0);
  EXPECT_GT(pp1, 0);
  std::set<int> mbs;
  for (const auto& p : j["plans"]) mbs.insert(p["micro_batch"].get<int>());
  EXPECT_EQ(mbs, (std::set<int>{1, 2}));
}

// Plans with many micro-batches per pipeline are timed from three shorter steps
// (sim/steady_state.hpp). Against the full steps (--exact): a dense model's pipeline is
// periodic, so its extrapolation is exact (1e-9); MoE plans with skewed routing vary a little
// from one micro-batch to the next, and the slopes must agree to 0.1% before they are
// extrapolated: those stay within 0.1% (moe-demo: worst 0.008%, one dualpipe plan).
TEST(PlanSearch, LongStepsAreExtrapolatedAlongTheSteadyState) {
  struct Case {
    std::string args;
    double tolerance;
    double tokens;  // per step: global batch x 4,096-token sequences
  };
  for (const Case& c : {Case{"--workload dense-demo --gpu H100 --nodes 2 --schedule 1f1b interleaved-1f1b zb-h1 "
                             "--virtual-stages 2 --set plan.global_batch=1024",
                             1e-9, 1024.0 * 4096},
                        Case{"--workload moe-demo --gpu H800 --nodes 2 --schedule 1f1b dualpipe --set plan.global_batch=512",
                             1e-3, 512.0 * 4096}}) {
    const std::string cmd = "plan search --top 1000 --json --set plan.num_micro_batches=0 " + c.args;
    auto fast = run(cmd);
    auto exact = run(cmd + " --exact");
    ASSERT_EQ(fast.code, 0) << fast.err;
    ASSERT_EQ(exact.code, 0) << exact.err;
    const auto f = nlohmann::json::parse(fast.out), e = nlohmann::json::parse(exact.out);
    EXPECT_EQ(e["extrapolated"], 0);
    EXPECT_GT(f["extrapolated"].get<int>(), 50) << c.args;
    ASSERT_EQ(f["plans"].size(), e["plans"].size());
    std::map<std::string, double> full;
    for (const auto& p : e["plans"]) full[p["plan"].dump()] = p["step_time_s"].get<double>();
    int extrapolated = 0;
    for (const auto& p : f["plans"]) {
      const double step = p["step_time_s"].get<double>(), want = full.at(p["plan"].dump());
      if (!p.contains("extrapolated_from_micro_batches")) {
        EXPECT_EQ(step, want) << p["plan"].dump();
        continue;
      }
      ++extrapolated;
      EXPECT_EQ(p["extrapolated_from_micro_batches"].size(), 3u);
      EXPECT_NEAR(step, want, c.tolerance * want) << p["plan"].dump();
      // Throughput from the full step's tokens: the same batch as the exact run.
      EXPECT_NEAR(p["tokens_per_second"].get<double>() * step, c.tokens, 1e-9 * c.tokens) << p["plan"].dump();
    }
    EXPECT_EQ(extrapolated, f["extrapolated"].get<int>());
  }
  // The table marks extrapolated steps and says so.
  auto table = run("plan search --top 3 --workload dense-demo --gpu H100 --nodes 2 --set plan.num_micro_batches=0 "
                   "--set plan.global_batch=1024");
  ASSERT_EQ(table.code, 0) << table.err;
  EXPECT_NE(table.out.find("timed from three shorter steps"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("~"), std::string::npos) << table.out;
}

// Plans are shared among forked workers (--jobs); the outcomes come back in plan order, so
// the ranking, skipped plans and extrapolations are the same to the byte for any number
// of workers (two schedules whose plans cost very different times; DualPipe on one stage is
// skipped).
TEST(PlanSearch, AnyNumberOfWorkersGivesTheSameRanking) {
  const std::string cmd = "plan search --top 1000 --json --workload moe-demo --gpu H800 --nodes 2 --schedule dualpipe 1f1b "
                          "--set plan.global_batch=512 --set plan.num_micro_batches=0";
  auto one = run(cmd + " --jobs 1");
  ASSERT_EQ(one.code, 0) << one.err;
  const auto j = nlohmann::json::parse(one.out);
  EXPECT_GT(j["evaluated"].get<int>(), 50);
  EXPECT_GT(j["skipped"].size(), 0u);  // dualpipe without a pipeline (pp = 1)
  EXPECT_GT(j["extrapolated"].get<int>(), 0);
  for (const char* jobs : {" --jobs 2", " --jobs 5", ""}) {
    auto many = run(cmd + jobs);
    ASSERT_EQ(many.code, 0) << many.err;
    EXPECT_EQ(many.out, one.out) << jobs;
  }
}

TEST(PlanSearch, BadInputIsRefused) {
  expect_input_error(run(std::string(kSearch) + "--jobs -1"), "--jobs");
  expect_input_error(run(std::string(kSearch) + "--schedule pipedream"), "valid: gpipe, 1f1b");
  expect_input_error(run(std::string(kSearch) + "--micro-batch 0"), "--micro-batch");
  expect_input_error(run(std::string(kSearch) + "--set sim.fidelity=flow"), "--verify K");
  // Interleaving needs a pipeline: Megatron refuses one stage with chunks, and so does tcsim.
  expect_input_error(run("run --gpu H100 --nodes 1 --workload dense-demo --set plan.pp=1 --set plan.schedule=interleaved-1f1b "
                         "--set plan.virtual_stages=2"),
                     "need pp >= 2");
  expect_input_error(run(std::string(kSearch) + "--top 0"), "--top");
  expect_input_error(run(std::string(kSearch) + "--top 2 --verify 3"), "--verify");
  expect_input_error(run(std::string(kSearch) + "--zero 4"), "--zero");
  expect_input_error(run(std::string(kSearch) + "--set gpu.hbm=1GB"), "no plan of moe-demo");
  expect_input_error(run(std::string(kSearch) + "--set plan.bogus=1"), "plan.bogus");
  expect_input_error(run("plan search --workload moe-demo --nodes 2"), "--platform");
}

}  // namespace
}  // namespace tcsim::clitest
