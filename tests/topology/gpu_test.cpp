// GPU catalog, lookup, overrides and the property round trip.
// Figures checked against /work/shared/reference/hardware.md (NVIDIA datasheets,
// DeepSeek-V3 arXiv 2412.19437 §3.2.2, DeepEP README).
#include <gtest/gtest.h>

#include <set>

#include "core/error.hpp"
#include "core/quantity.hpp"
#include "topology/gpu.hpp"

using namespace tcsim;
using topology::find_gpu;

TEST(GpuCatalog, HasEveryGpuOfTheStory) {
  std::set<std::string> names;
  for (const auto& g : topology::gpu_catalog()) names.insert(g.name);
  for (const char* n : {"A100", "A800", "H100", "H800", "H20", "H200", "B200", "GB200", "MI300X", "Ascend910B", "Ascend910C"}) {
    EXPECT_TRUE(names.count(n)) << n;
  }
}

TEST(GpuCatalog, EveryEntryHasFamilySourcesAndPositiveKeyFigures) {
  const std::set<std::string> families = {"ampere", "hopper", "blackwell", "cdna3", "ascend"};
  for (const auto& g : topology::gpu_catalog()) {
    EXPECT_TRUE(families.count(g.family)) << g.name;
    EXPECT_GT(g.bf16_flops.value(), 0) << g.name;
    EXPECT_GT(g.hbm.value(), 0) << g.name;
    EXPECT_GT(g.nvlink_bw.value(), 0) << g.name;
    EXPECT_GT(g.nic_bw.value(), 0) << g.name;
    EXPECT_GT(g.tdp.value(), 0) << g.name;
    EXPECT_GT(g.sm_count, 0) << g.name;
    for (const char* k : {"gpu.bf16_flops", "gpu.hbm", "gpu.hbm_bw", "gpu.nvlink_bw", "gpu.nic_bw", "gpu.tdp"}) {
      EXPECT_TRUE(g.sources.count(k)) << g.name << " " << k;
    }
  }
}

TEST(GpuCatalog, H100AndH800DifferOnlyInNvlink) {
  // H100 SXM: 989 TFLOPS BF16 dense, NVLink4 900 GB/s total (NVIDIA datasheet);
  // H800: NVLink 400 GB/s total (DeepSeek-V3 §3.2.2; issue 28: bidirectional).
  auto h100 = find_gpu("H100");
  auto h800 = find_gpu("h800");  // case-insensitive
  EXPECT_DOUBLE_EQ(h100.bf16_flops.value(), 989e12);
  EXPECT_DOUBLE_EQ(h800.bf16_flops.value(), 989e12);
  EXPECT_DOUBLE_EQ(h100.nvlink_bw.value(), 450e9);
  EXPECT_DOUBLE_EQ(h800.nvlink_bw.value(), 200e9);
  EXPECT_DOUBLE_EQ(h100.nic_bw.value(), 50e9);  // 400 Gb/s CX-7
  EXPECT_DOUBLE_EQ(h800.nic_bw.value(), 50e9);
  EXPECT_EQ(h100.sm_count, 132);
  EXPECT_TRUE(h100.nvls);
  EXPECT_TRUE(h800.nvls);
  EXPECT_FALSE(find_gpu("A100").nvls);
  EXPECT_FALSE(find_gpu("MI300X").nvls);
}

TEST(GpuCatalog, RestrictedAndLargeDomainFigures) {
  auto h20 = find_gpu("H20");
  EXPECT_DOUBLE_EQ(h20.bf16_flops.value(), 148e12);  // ⚠ trade press
  EXPECT_DOUBLE_EQ(h20.nvlink_bw.value(), 450e9);    // DeepEP README: 900 GB/s total
  EXPECT_EQ(h20.sm_count, 78);
  EXPECT_NE(std::find(h20.uncertain.begin(), h20.uncertain.end(), "gpu.bf16_flops"), h20.uncertain.end());
  EXPECT_DOUBLE_EQ(find_gpu("A800").nvlink_bw.value(), 200e9);
  EXPECT_EQ(find_gpu("A100").sm_count, 108);
  EXPECT_EQ(find_gpu("GB200").scaleup_domain, 72);
  EXPECT_DOUBLE_EQ(find_gpu("H200").hbm.value(), 141e9);
  EXPECT_DOUBLE_EQ(find_gpu("B200").nvlink_bw.value(), 900e9);
  EXPECT_DOUBLE_EQ(find_gpu("H100").peak("fp8").value(), 1979e12);
  EXPECT_DOUBLE_EQ(find_gpu("A100").peak("fp8").value(), 312e12);  // no FP8: falls back to BF16
}

TEST(GpuCatalog, UnknownGpuListsKnownNames) {
  try {
    find_gpu("H900", "--gpu");
    FAIL();
  } catch (const core::InputError& e) {
    EXPECT_EQ(e.where(), "--gpu");
    EXPECT_NE(e.problem().find("H900"), std::string::npos);
    EXPECT_NE(e.problem().find("H800"), std::string::npos);
  }
}

TEST(GpuOverrides, SetsNvlinkAndNicWithUnits) {
  auto s = find_gpu("H100");
  core::Overrides o;
  o.add("gpu.nvlink_bw=200GBps");
  o.add("gpu.nic_bw=200Gbps");
  o.add("gpu.name=H100-cut");
  topology::apply_gpu_overrides(s, o);
  EXPECT_DOUBLE_EQ(s.nvlink_bw.value(), 200e9);
  EXPECT_DOUBLE_EQ(s.nic_bw.value(), 25e9);
  EXPECT_EQ(s.name, "H100-cut");
  EXPECT_NO_THROW(o.check_all_taken(topology::gpu_keys()));
}

TEST(GpuOverrides, BadUnitNamesKeyValueAndUnits) {
  auto s = find_gpu("H100");
  core::Overrides o;
  o.add("gpu.nvlink_bw=200");
  try {
    topology::apply_gpu_overrides(s, o);
    FAIL();
  } catch (const core::InputError& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("gpu.nvlink_bw"), std::string::npos) << m;
    EXPECT_NE(m.find("'200'"), std::string::npos) << m;
    EXPECT_NE(m.find("GBps"), std::string::npos) << m;
  }
}

TEST(GpuOverrides, UnknownKeyListsValidKeys) {
  auto s = find_gpu("H100");
  core::Overrides o;
  o.add("gpu.nvlink_bandwidth=200GBps");
  try {
    topology::apply_gpu_overrides(s, o);
    FAIL();
  } catch (const core::InputError& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("gpu.nvlink_bandwidth"), std::string::npos) << m;
    EXPECT_NE(m.find("gpu.nvlink_bw"), std::string::npos) << m;
  }
}

TEST(GpuOverrides, RejectsZeroBandwidthAndBadFamily) {
  auto s = find_gpu("H100");
  core::Overrides o1;
  o1.add("gpu.nic_bw=0GBps");
  EXPECT_THROW(topology::apply_gpu_overrides(s, o1), core::InputError);
  core::Overrides o2;
  o2.add("gpu.family=volta");
  EXPECT_THROW(topology::apply_gpu_overrides(s, o2), core::InputError);
}

TEST(GpuProperties, RoundTripEveryCatalogEntry) {
  for (const auto& g : topology::gpu_catalog()) {
    auto props = topology::to_properties(g);
    EXPECT_EQ(props.size(), topology::gpu_keys().size());
    auto back = topology::from_properties(props, "test");
    EXPECT_EQ(back.name, g.name);
    EXPECT_EQ(back.family, g.family);
    EXPECT_DOUBLE_EQ(back.bf16_flops.value(), g.bf16_flops.value());
    EXPECT_DOUBLE_EQ(back.fp8_flops.value(), g.fp8_flops.value());
    EXPECT_DOUBLE_EQ(back.hbm.value(), g.hbm.value());
    EXPECT_DOUBLE_EQ(back.hbm_bw.value(), g.hbm_bw.value());
    EXPECT_DOUBLE_EQ(back.nvlink_bw.value(), g.nvlink_bw.value());
    EXPECT_DOUBLE_EQ(back.nic_bw.value(), g.nic_bw.value());
    EXPECT_DOUBLE_EQ(back.tdp.value(), g.tdp.value());
    EXPECT_DOUBLE_EQ(back.die_area_mm2, g.die_area_mm2);
    EXPECT_EQ(back.nvlink_links, g.nvlink_links);
    EXPECT_EQ(back.scaleup_domain, g.scaleup_domain);
    EXPECT_EQ(back.sm_count, g.sm_count);
    EXPECT_EQ(back.nvls, g.nvls);
  }
  auto p = topology::to_properties(find_gpu("H800"));
  EXPECT_EQ(p["gpu.nvlink_bw"], "200GBps");
  EXPECT_EQ(p["gpu.nic_bw"], "50GBps");
  EXPECT_EQ(p["gpu.bf16_flops"], "989TFLOPS");
  EXPECT_EQ(p["gpu.hbm_bw"], "3.35TBps");
}

TEST(GpuProperties, MissingSpecOrUnitIsAnError) {
  auto props = topology::to_properties(find_gpu("H100"));
  props.erase("gpu.nvlink_bw");
  EXPECT_THROW(topology::from_properties(props, "f.xml: host gpu-n0-g0"), core::InputError);
  props = topology::to_properties(find_gpu("H100"));
  props["gpu.hbm"] = "80";
  try {
    topology::from_properties(props, "f.xml: host gpu-n0-g0");
    FAIL();
  } catch (const core::InputError& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("gpu-n0-g0"), std::string::npos) << m;
    EXPECT_NE(m.find("gpu.hbm"), std::string::npos) << m;
    EXPECT_NE(m.find("no unit"), std::string::npos) << m;
  }
}

TEST(GpuCatalog, SavedVariantParsesBackAsCatalogEntry) {
  auto s = find_gpu("H100");
  core::Overrides o;
  o.add("gpu.nvlink_bw=200GBps");
  o.add("gpu.name=H100-nvl200");
  topology::apply_gpu_overrides(s, o);
  auto cat = topology::parse_gpu_catalog(topology::to_catalog_entry(s), "variant.textproto");
  ASSERT_EQ(cat.size(), 1u);
  EXPECT_EQ(cat[0].name, "H100-nvl200");
  EXPECT_DOUBLE_EQ(cat[0].nvlink_bw.value(), 200e9);
  EXPECT_DOUBLE_EQ(cat[0].bf16_flops.value(), 989e12);
}

TEST(GpuCatalog, CatalogFigureWithoutUnitIsAnErrorWithLocation) {
  const std::string bad = R"(gpu { name: "X" family: "hopper" bf16_flops { value: "989" source: "s" } })";
  try {
    topology::parse_gpu_catalog(bad, "user.textproto");
    FAIL();
  } catch (const core::InputError& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("user.textproto"), std::string::npos) << m;
    EXPECT_NE(m.find("bf16_flops"), std::string::npos) << m;
  }
  EXPECT_THROW(topology::parse_gpu_catalog("gpu { nme: \"X\" }", "user.textproto"), core::InputError);
}
