// Plan enumeration: every listed plan is valid and fits; known plans are found.
#include <gtest/gtest.h>

#include "core/units.hpp"
#include "workloads/enumerate.hpp"
#include "workloads/model.hpp"
#include "workloads/plan.hpp"

namespace tcsim::workloads {
namespace {

using namespace core::literals;

TEST(EnumeratePlans, EveryPlanIsValidAndFits) {
  const auto m = find_model("llama3-70b", "t");
  EnumerateOptions opt;
  opt.gpus = 64;
  opt.gpu_memory = 80_GiB;
  const auto plans = enumerate_plans(m, opt);
  ASSERT_FALSE(plans.empty());
  bool found_tp8_pp4 = false;
  for (const auto& c : plans) {
    EXPECT_TRUE(check_plan(m, c.plan, 64).empty());
    EXPECT_LE(c.memory.total.value(), (80_GiB).value());
    EXPECT_EQ(c.plan.tp() * c.plan.pp() * c.plan.cp() * c.plan.dp(), 64);
    found_tp8_pp4 |= c.plan.tp() == 8 && c.plan.pp() == 4 && c.plan.recompute() == config::ParallelPlan::FULL;
  }
  EXPECT_TRUE(found_tp8_pp4);
  // 70B with 16 bytes/param of model states cannot fit pure data parallel on 80 GiB GPUs.
  for (const auto& c : plans) EXPECT_FALSE(c.plan.tp() == 1 && c.plan.pp() == 1);
}

TEST(EnumeratePlans, MoeEpDividesExpertsAndDp) {
  const auto m = find_model("mixtral-8x7b", "t");
  EnumerateOptions opt;
  opt.gpus = 16;
  opt.gpu_memory = 80_GiB;
  const auto plans = enumerate_plans(m, opt);
  ASSERT_FALSE(plans.empty());
  bool ep8 = false;
  for (const auto& c : plans) {
    EXPECT_EQ(8 % c.plan.ep(), 0);
    EXPECT_EQ(c.plan.dp() % c.plan.ep(), 0);
    ep8 |= c.plan.ep() == 8;
  }
  EXPECT_TRUE(ep8);
  // Deterministic: same inputs, same list.
  EXPECT_EQ(enumerate_plans(m, opt).size(), plans.size());
}

}  // namespace
}  // namespace tcsim::workloads
