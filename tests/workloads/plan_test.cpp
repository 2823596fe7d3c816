// Plan validation (issue 4 bad inputs), defaults and rank layout.
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include <gtest/gtest.h>

#include "core/error.hpp"
#include "workloads/model.hpp"
#include "workloads/plan.hpp"

namespace tcsim::workloads {
namespace {

config::ParallelPlan make(int64_t tp, int64_t pp, int64_t ep, int64_t gb = 0) {
  config::ParallelPlan p;
  p.set_tp(tp);
  p.set_pp(pp);
  p.set_ep(ep);
  p.set_global_batch(gb);
  return p;
}

/// The InputError validate_plan throws, or fails the test.
core::InputError error_of(const config::ModelSpec& m, const config::ParallelPlan& p, int64_t gpus) {
  try {
    validate_plan(m, p, gpus, "--set");
  } catch (const core::InputError& e) {
    return e;
  }
  ADD_FAILURE() << "expected InputError";
  return core::InputError("", "");
}

bool has(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

TEST(PlanValidation, AcceptsPublishedPlans) {
  // DeepSeek-V3 (arXiv 2412.19437 §3.2): PP16 DualPipe, EP64, 2048 GPUs; 61 layers need uneven stages.
  auto v3 = find_model("deepseek-v3", "t");
  auto p = make(1, 16, 64, 15360);
  p.set_schedule("dualpipe");
  p.set_uneven_stages(true);
  EXPECT_NO_THROW(validate_plan(v3, p, 2048, "--set"));
  // Llama 3 405B (arXiv 2407.21783 §3.3): TP8 PP16 on 16K GPUs, 16M tokens = 2048 x 8192.
  auto l3 = find_model("llama3-405b", "t");
  EXPECT_NO_THROW(validate_plan(l3, make(8, 14, 1, 2048 * 8), 8 * 14 * 128, "--set"));
  auto w = find_workload("moe-demo", "t");
  EXPECT_NO_THROW(validate_plan(workload_model(w, "t"), w.plan(), 16, "--set"));
  EXPECT_NO_THROW(validate_plan(workload_model(w, "t"), w.plan(), 32, "--set"));
}

TEST(PlanValidation, RejectsTpNotDividingHeads) {
  auto e = error_of(find_model("llama3-8b", "t"), make(3, 1, 1), 3);
  EXPECT_EQ(e.where(), "--set plan.tp");
  EXPECT_TRUE(has(e.problem(), "3 does not divide the 32 attention heads"));
  EXPECT_TRUE(has(e.problem(), "valid: 1, 2, 4, 8, 16, 32"));
}

TEST(PlanValidation, RejectsPpNotDividingLayersUnlessUneven) {
  auto m = find_model("deepseek-v3", "t");
  auto p = make(1, 16, 1, 64);
  auto e = error_of(m, p, 16);
  EXPECT_EQ(e.where(), "--set plan.pp");
  EXPECT_TRUE(has(e.problem(), "16 does not divide the 61 layers; valid: 1, 61"));
  EXPECT_TRUE(has(e.problem(), "uneven_stages"));
  p.set_uneven_stages(true);
  EXPECT_NO_THROW(validate_plan(m, p, 16, "--set"));
  auto r = resolve_plan(m, p, 16);
  auto chunks = chunk_layers(m, r);
  ASSERT_EQ(chunks.size(), 16u);
  EXPECT_EQ(chunks[0].count, 3);
  EXPECT_EQ(chunks[1].count, 4);  // 61 = 16 x 3 + 13: chunks 1..13 get 4
  EXPECT_EQ(chunks[15].count, 3);
  EXPECT_EQ(chunks[15].first + chunks[15].count, 61);
}

TEST(PlanValidation, RejectsEpNotDividingExperts) {
  auto e = error_of(find_model("mixtral-8x7b", "t"), make(1, 1, 3), 6);
  EXPECT_EQ(e.where(), "--set plan.ep");
  EXPECT_TRUE(has(e.problem(), "3 does not divide the 8 routed experts; valid: 1, 2, 4, 8"));
  auto dense = error_of(find_model("llama3-8b", "t"), make(1, 1, 2), 2);
  EXPECT_EQ(dense.where(), "--set plan.ep");
  EXPECT_TRUE(has(dense.problem(), "no routed experts"));
  auto not_dp = error_of(find_model("mixtral-8x7b", "t"), make(1, 1, 8), 4);
  EXPECT_TRUE(has(not_dp.problem(), "does not divide dp = 4"));
}

TEST(PlanValidation, RejectsRanksNotMatchingProduct) {
  auto p = make(8, 2, 1);
  p.set_dp(4);
  auto e = error_of(find_model("llama3-70b", "t"), p, 128);
  EXPECT_EQ(e.where(), "--set plan.dp");
  EXPECT_TRUE(has(e.problem(), "= 64 ranks, but there are 128 GPUs; valid dp: 8"));
  auto g = error_of(find_model("llama3-70b", "t"), make(8, 2, 1), 100);
  EXPECT_EQ(g.where(), "--gpus");
  EXPECT_TRUE(has(g.problem(), "not a multiple of tp x cp x pp = 16"));
}

TEST(PlanValidation, RejectsTooFewMicroBatchesForSchedule) {
  auto m = find_model("llama3-70b", "t");
  auto p = make(8, 8, 1, 4 * 4);  // dp = 4 on 256 GPUs: 4 micro-batches for 8 stages
  auto e = error_of(m, p, 256);
  EXPECT_EQ(e.where(), "--set plan.global_batch");
  EXPECT_TRUE(has(e.problem(), "4 micro-batches per pipeline, but schedule 1f1b with pp=8 needs at least 8"));
  EXPECT_TRUE(has(e.problem(), "global_batch >= 32"));
  p.set_schedule("gpipe");
  EXPECT_NO_THROW(validate_plan(m, p, 256, "--set"));
  p.set_schedule("dualpipe");
  p.set_global_batch(4 * 10);
  auto d = error_of(m, p, 256);
  EXPECT_TRUE(has(d.problem(), "dualpipe with pp=8 needs at least 16"));
  p.set_schedule("interleaved-1f1b");
  p.set_virtual_stages(2);
  p.set_global_batch(4 * 12);
  auto i = error_of(m, p, 256);
  EXPECT_TRUE(has(i.problem(), "needs a multiple of pp=8"));
}

TEST(PlanValidation, RejectsUnknownScheduleOrderAndBadValues) {
  auto m = find_model("llama3-8b", "t");
  auto p = make(1, 2, 1);
  p.set_schedule("zigzag");
  auto e = error_of(m, p, 2);
  EXPECT_EQ(e.where(), "--set plan.schedule");
  EXPECT_TRUE(has(e.problem(), "gpipe, 1f1b, interleaved-1f1b, zb-h1, dualpipe"));
  auto o = make(1, 1, 1);
  o.set_order("tp-dp");
  EXPECT_EQ(error_of(m, o, 1).where(), "--set plan.order");
  auto z = make(1, 1, 1);
  z.set_zero_stage(4);
  EXPECT_EQ(error_of(m, z, 1).where(), "--set plan.zero_stage");
  auto c = make(1, 1, 1);
  c.set_cp(3);
  EXPECT_EQ(error_of(m, c, 3).where(), "--set plan.cp");
  auto gb = make(1, 1, 1, 10);
  EXPECT_TRUE(has(error_of(m, gb, 4).problem(), "not a multiple of micro_batch x dp = 1 x 4 = 4; nearest valid: 8 or 12"));
}

TEST(PlanValidation, WhereNamesTheCaller) {
  try {
    validate_plan(find_model("llama3-8b", "t"), make(3, 1, 1), 3, "workload foo");
    FAIL();
  } catch (const core::InputError& e) {
    EXPECT_EQ(e.where(), "workload foo: plan.tp");
  }
}

TEST(PlanDefaults, ResolveFillsDefaults) {
  auto m = find_model("llama3-70b", "t");
  auto r = resolve_plan(m, make(8, 4, 0), 128);
  EXPECT_EQ(r.dp(), 4);
  EXPECT_EQ(r.ep(), 1);
  EXPECT_EQ(r.seq_len(), 8192);
  EXPECT_EQ(r.schedule(), "1f1b");
  EXPECT_EQ(r.num_micro_batches(), 16);  // max(4 x pp, schedule minimum)
  EXPECT_EQ(r.global_batch(), 64);
  EXPECT_EQ(micro_batches(r), 16);
}

TEST(RankLayout, TpInnermostKeepsTpGroupsContiguous) {
  config::ParallelPlan p = make(2, 2, 2);
  p.set_dp(4);
  p.set_order("tp-cp-ep-dp-pp");
  RankLayout l(p);
  EXPECT_EQ(l.world(), 16);
  auto c = l.coord(5);  // 5 = tp 1 + 2 x dp 2
  EXPECT_EQ(c.tp, 1);
  EXPECT_EQ(c.dp, 2);
  EXPECT_EQ(c.pp, 0);
  EXPECT_EQ(l.rank(c), 5);
  EXPECT_EQ(l.group_of(ParallelDim::TP, 5), (std::vector<int>{4, 5}));
  EXPECT_EQ(l.group_of(ParallelDim::DP, 5), (std::vector<int>{1, 3, 5, 7}));
  EXPECT_EQ(l.group_of(ParallelDim::PP, 5), (std::vector<int>{5, 13}));
  EXPECT_EQ(l.group_of(ParallelDim::EP, 5), (std::vector<int>{5, 7}));   // dp 2, 3
  EXPECT_EQ(l.group_of(ParallelDim::EDP, 5), (std::vector<int>{1, 5}));  // dp 0, 2
  EXPECT_EQ(l.groups(ParallelDim::TP).size(), 8u);
  EXPECT_EQ(l.groups(ParallelDim::EP).size(), 8u);
  config::ParallelPlan q = p;
  q.set_order("dp-tp-cp-pp");
  RankLayout dp_first(q);
  EXPECT_EQ(dp_first.group_of(ParallelDim::DP, 0), (std::vector<int>{0, 1, 2, 3}));
}

// The groups as a map from (kind, key) to ranks ascending gives them, the construction
// comm_groups replaced: same groups, same order, for rank orders that put tp or dp first.
TEST(RankLayout, CommGroupsInTheOrderOfTheirKeys) {
  for (const char* order : {"tp-cp-ep-dp-pp", "dp-pp-cp-tp", "pp-tp-dp-cp"}) {
    config::ParallelPlan p = make(2, 3, 2);
    p.set_cp(2);
    p.set_dp(4);
    p.set_order(order);
    RankLayout l(p);
    const int64_t first = 0, last = 2;
    std::map<std::tuple<int, int64_t, int64_t, int64_t, int64_t>, std::vector<int>> m;
    for (int r = 0; r < l.world(); ++r) {
      const RankCoord c = l.coord(r);
      m[{0, c.cp, c.dp, c.pp, 0}].push_back(r);
      m[{1, c.tp, c.dp, c.pp, 0}].push_back(r);
      m[{2, c.tp, c.cp, c.edp, c.pp}].push_back(r);
      m[{3, c.tp, c.pp, 0, 0}].push_back(r);
      m[{4, c.tp, c.pp, c.ep, 0}].push_back(r);
      if (c.pp == first || c.pp == last) m[{5, c.tp, c.cp, c.dp, 0}].push_back(r);
    }
    std::vector<std::vector<int>> want[6];
    for (const auto& [key, g] : m) want[std::get<0>(key)].push_back(g);
    for (int k = 0; k < 6; ++k) {
      EXPECT_EQ(l.comm_groups(static_cast<RankLayout::CommGroups>(k), first, last), want[k]) << order << " kind " << k;
    }
  }
}

TEST(Schedules, InFlightMicroBatches) {
  auto r = resolve_plan(find_model("llama3-70b", "t"), make(8, 8, 1), 512);
  EXPECT_DOUBLE_EQ(in_flight_micro_batches(r, 0), 8);  // 1F1B: pp - stage
  EXPECT_DOUBLE_EQ(in_flight_micro_batches(r, 7), 1);
  r.set_schedule("gpipe");
  EXPECT_DOUBLE_EQ(in_flight_micro_batches(r, 7), static_cast<double>(micro_batches(r)));
  r.set_schedule("dualpipe");
  EXPECT_DOUBLE_EQ(in_flight_micro_batches(r, 0), 9);  // DeepSeek-V3 Table 2: PP + 1
  r.set_schedule("interleaved-1f1b");
  r.set_virtual_stages(2);
  // Megatron warm-up on rank 0: (8-1)·2 + (2-1)·8 + 1 = 23 chunk passes of half a stage.
  EXPECT_DOUBLE_EQ(in_flight_micro_batches(r, 0), 11.5);
}

}  // namespace
}  // namespace tcsim::workloads
