#include <gtest/gtest.h>

#include "core/error.hpp"
#include "core/quantity.hpp"

using namespace tcsim::core;

TEST(Quantity, ParsesBandwidthInBytesAndBits) {
  EXPECT_DOUBLE_EQ(parse_bandwidth("400GBps", "t").value(), 400e9);
  EXPECT_DOUBLE_EQ(parse_bandwidth("200Gbps", "t").value(), 25e9);
  EXPECT_DOUBLE_EQ(parse_bandwidth("400 Gb/s", "t").value(), 50e9);
  EXPECT_DOUBLE_EQ(parse_bandwidth("3.35TB/s", "t").value(), 3.35e12);
}

TEST(Quantity, ParsesTimesSizesRatesPower) {
  EXPECT_NEAR(parse_seconds("1.5us", "t").value(), 1.5e-6, 1e-20);
  EXPECT_DOUBLE_EQ(parse_seconds("2ms", "t").value(), 2e-3);
  EXPECT_DOUBLE_EQ(parse_bytes("80GiB", "t").value(), 80.0 * 1073741824.0);
  EXPECT_DOUBLE_EQ(parse_bytes("80GB", "t").value(), 80e9);
  EXPECT_DOUBLE_EQ(parse_flops_rate("989TFLOPS", "t").value(), 989e12);
  EXPECT_DOUBLE_EQ(parse_flops_rate("1.979PFLOPS", "t").value(), 1.979e15);
  EXPECT_DOUBLE_EQ(parse_watts("700W", "t").value(), 700);
  EXPECT_DOUBLE_EQ(parse_joules("1.5MWh", "t").value(), 5.4e9);
  EXPECT_DOUBLE_EQ(parse_count("14.8T", "t"), 14.8e12);
  EXPECT_DOUBLE_EQ(parse_count("4096", "t"), 4096);
}

TEST(Quantity, BareNumberIsAnErrorNamingTokenAndUnits) {
  try {
    parse_bandwidth("400", "--set gpu.nvlink_bw");
    FAIL() << "expected InputError";
  } catch (const InputError& e) {
    EXPECT_EQ(e.where(), "--set gpu.nvlink_bw");
    EXPECT_NE(e.problem().find("'400' has no unit"), std::string::npos) << e.what();
    EXPECT_NE(e.problem().find("GBps"), std::string::npos) << e.what();
  }
}

TEST(Quantity, UnknownUnitIsAnErrorListingAcceptedUnits) {
  try {
    parse_seconds("3 fortnights", "f.xml:3");
    FAIL() << "expected InputError";
  } catch (const InputError& e) {
    EXPECT_NE(e.problem().find("unknown unit 'fortnights'"), std::string::npos) << e.what();
    EXPECT_NE(e.problem().find("us"), std::string::npos);
  }
  EXPECT_THROW(parse_bytes("GB", "t"), InputError);
  EXPECT_THROW(parse_bytes("", "t"), InputError);
  EXPECT_THROW(parse_number("0.8x", "t"), InputError);
  EXPECT_THROW(parse_integer("-3", "t"), InputError);
}

TEST(Quantity, FormatRoundTrips) {
  for (double v : {450e9, 25e9, 1.6e11, 3.35e12}) {
    EXPECT_DOUBLE_EQ(parse_bandwidth(format_bandwidth(BytesPerSecond(v)), "t").value(), v);
  }
  EXPECT_EQ(format_bandwidth(BytesPerSecond(450e9)), "450GBps");
  EXPECT_EQ(format_seconds(Seconds(1.5e-6)), "1.5us");
  EXPECT_EQ(format_number(0.1), "0.1");
}
