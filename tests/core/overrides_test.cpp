#include <gtest/gtest.h>

#include "core/error.hpp"
#include "core/overrides.hpp"

using namespace tcsim::core;

TEST(Overrides, TakeMarksKeysAndLeftoversAreErrors) {
  Overrides o;
  o.add("gpu.nvlink_bw=200GBps");
  o.add("gpu.nvlnk_bw=1GBps");
  EXPECT_EQ(o.take("gpu.nvlink_bw").value(), "200GBps");
  EXPECT_FALSE(o.take("plan.ep").has_value());
  try {
    o.check_all_taken({"gpu.nvlink_bw", "plan.ep"});
    FAIL();
  } catch (const InputError& e) {
    EXPECT_EQ(e.where(), "--set gpu.nvlnk_bw");
    EXPECT_NE(e.problem().find("gpu.nvlink_bw"), std::string::npos);
  }
}

TEST(Overrides, RejectsAssignmentWithoutEquals) { EXPECT_THROW(Overrides().add("gpu.nvlink_bw"), InputError); }
