#include <gtest/gtest.h>

#include <type_traits>

#include "core/units.hpp"

using namespace tcsim::core;
using namespace tcsim::core::literals;

TEST(Units, BytesOverBandwidthIsSeconds) {
  auto t = Bytes(1e9) / BytesPerSecond(450e9);
  static_assert(std::is_same_v<decltype(t), Seconds>);
  EXPECT_NEAR(t.value(), 1.0 / 450.0, 1e-15);
}

TEST(Units, FlopsOverRateIsSeconds) {
  auto t = Flops(989e12) / 989_TFLOPS;
  static_assert(std::is_same_v<decltype(t), Seconds>);
  EXPECT_DOUBLE_EQ(t.value(), 1.0);
}

TEST(Units, PowerTimesTimeIsEnergyAndRatiosAreDimensionless) {
  auto e = Watts(700) * Seconds(3600);
  static_assert(std::is_same_v<decltype(e), Joules>);
  EXPECT_DOUBLE_EQ(e.value(), 2.52e6);
  double ratio = Seconds(3) / Seconds(2);
  EXPECT_DOUBLE_EQ(ratio, 1.5);
}

TEST(Units, AdditionKeepsTypeAndOrdering) {
  Seconds a = 1.5_us + 2_us;
  EXPECT_NEAR(a.value(), 3.5e-6, 1e-18);
  EXPECT_LT(Bytes(1), Bytes(2));
  static_assert(!std::is_invocable_v<std::plus<>, Seconds, Bytes>, "adding a time to a size must not compile");
}
