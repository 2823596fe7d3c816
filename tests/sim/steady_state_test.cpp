// sim/steady_state.hpp: a long step is timed from three shorter ones when their slopes
// agree, and simulated in full otherwise. The step function here is a stand-in with a known
// shape, so the test sees exactly which steps were asked for; search_cli_test.cpp checks
// the extrapolation against full simulations of real plans.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "core/error.hpp"
#include "sim/steady_state.hpp"
#include "workloads/generator.hpp"
#include "workloads/model.hpp"

namespace tcsim::sim {
namespace {
namespace wl = tcsim::workloads;

// dense-demo on 16 GPUs as pp stages with `mbs` micro-batches per pipeline.
wl::config::Workload dense(int64_t pp, int64_t mbs, const char* schedule, int64_t v = 1) {
  auto w = wl::find_workload("dense-demo", "test");
  w.mutable_plan()->set_pp(pp);
  w.mutable_plan()->set_schedule(schedule);
  w.mutable_plan()->set_virtual_stages(v);
  w.mutable_plan()->set_num_micro_batches(mbs);
  return w;
}

struct Recorder {
  std::vector<int64_t> asked;  // micro-batch counts simulated
  double offset = 3, slope = 0.5, wobble = 0;
  double operator()(const wl::config::Workload& w) {
    const int64_t m = w.plan().num_micro_batches();
    asked.push_back(m);
    EXPECT_EQ(w.plan().global_batch(), 0);  // the shorter steps set micro-batches, not the batch
    return offset + slope * static_cast<double>(m) + (m % 2 == 0 ? wobble : 0);
  }
};

TEST(SteadyState, AffineStepsAreExtrapolatedFromThreeShortOnes) {
  Recorder rec;
  const auto e = estimate_step(dense(4, 400, "1f1b"), 16, std::ref(rec));
  // One more than the pipeline depth, then one and two more (1f1b takes any count).
  EXPECT_EQ(rec.asked, (std::vector<int64_t>{5, 6, 7}));
  ASSERT_TRUE(e.extrapolated());
  EXPECT_EQ(e.micro_batches, 400);
  EXPECT_NEAR(e.step_time_s, 3 + 0.5 * 400, 1e-9);
}

TEST(SteadyState, SchedulesKeepTheirGranularity) {
  Recorder rec;
  // interleaved-1f1b takes multiples of pp (5 rounds up to 8); dualpipe even counts from 2 x pp.
  estimate_step(dense(4, 400, "interleaved-1f1b", 2), 16, std::ref(rec));
  EXPECT_EQ(rec.asked, (std::vector<int64_t>{8, 12, 16}));
  rec.asked.clear();
  estimate_step(dense(4, 400, "dualpipe"), 16, std::ref(rec));
  EXPECT_EQ(rec.asked, (std::vector<int64_t>{8, 10, 12}));
}

TEST(SteadyState, DisagreeingSlopesOrShortStepsRunInFull) {
  Recorder rec;
  rec.wobble = 0.01;  // slopes 0.49 and 0.51: 4% apart
  auto e = estimate_step(dense(4, 400, "1f1b"), 16, std::ref(rec));
  EXPECT_EQ(rec.asked, (std::vector<int64_t>{5, 6, 7, 400}));
  EXPECT_FALSE(e.extrapolated());
  EXPECT_NEAR(e.step_time_s, 3 + 0.5 * 400 + 0.01, 1e-9);

  // 5 + 6 + 7 micro-batches would not save half of 30: the full step.
  rec = Recorder{};
  e = estimate_step(dense(4, 30, "1f1b"), 16, std::ref(rec));
  EXPECT_EQ(rec.asked, (std::vector<int64_t>{30}));
  EXPECT_FALSE(e.extrapolated());

  // A shorter step refused (an InputError from the plan checks): the full step.
  int calls = 0;
  auto refusing = [&](const wl::config::Workload& w) {
    ++calls;
    if (w.plan().num_micro_batches() == 6) throw core::InputError("plan.num_micro_batches", "refused");
    return 1.0;
  };
  e = estimate_step(dense(4, 400, "1f1b"), 16, refusing);
  EXPECT_FALSE(e.extrapolated());
  EXPECT_EQ(calls, 3);  // 5, 6 (refused), then the full 400
  EXPECT_EQ(e.step_time_s, 1.0);

  // Turned off: the full step.
  rec = Recorder{};
  SteadyStateOptions off;
  off.enabled = false;
  estimate_step(dense(4, 400, "1f1b"), 16, std::ref(rec), off);
  EXPECT_EQ(rec.asked, (std::vector<int64_t>{400}));
}

TEST(SteadyState, StepTotalsAreTheProgramsOwn) {
  // What plan search divides by the extrapolated step: the full program's tokens and FLOPs.
  auto w = wl::find_workload("vlm-generic", "test");
  const auto program = wl::generate(w, 64);
  const auto t = wl::step_totals(w, 64);
  EXPECT_EQ(t.tokens, program.tokens_per_step);
  EXPECT_EQ(t.model_flops, program.model_flops_per_step);
  EXPECT_GT(t.model_flops, 0);
}

}  // namespace
}  // namespace tcsim::sim
