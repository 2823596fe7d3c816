// Sweep specs: expansion (grid, zip, filter), stable point ids, shards, bad input.
#include <algorithm>
#include <set>

#include <gtest/gtest.h>

#include "core/error.hpp"
#include "core/proto_util.hpp"
#include "sim/sweep/filter.hpp"
#include "sim/sweep/runner.hpp"
#include "sim/sweep/spec.hpp"
#include "sim/sweep/store.hpp"

namespace tcsim::sweep {
namespace {

Sweep expand_text(const std::string& text, ExpandOptions opts = {}) {
  SweepSpec spec;
  core::parse_textproto(text, "spec.textproto", spec);
  return expand(spec, "spec.textproto", opts);
}

const char* kBase = R"(base { platform: "p.xml" workload: "w" } )";

std::vector<std::string> values(const Sweep& s, const std::string& key) {
  std::vector<std::string> out;
  for (const auto& p : s.points) out.push_back(p.settings.at(key));
  return out;
}

std::string error_of(const std::string& text, ExpandOptions opts = {}) {
  try {
    expand_text(text, opts);
  } catch (const core::InputError& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(SweepFnv1a64, MatchesPublishedVectors) {
  // Test vectors from the FNV reference (http://www.isthe.com/chongo/tech/comp/fnv/).
  EXPECT_EQ(fnv1a64(""), 0xcbf29ce484222325ull);
  EXPECT_EQ(fnv1a64("a"), 0xaf63dc4c8601ec8cull);
  EXPECT_EQ(fnv1a64("foobar"), 0x85944171f73967e8ull);
}

TEST(SweepPointId, IsTwelveHexDigitsOfTheCanonicalSettings) {
  Settings s = {{"run.workload", "w"}, {"gpu.nvlink_bw", "400GBps"}, {"run.platform", "p.xml"}};
  EXPECT_EQ(canonical(s), "gpu.nvlink_bw=400GBps\nrun.platform=p.xml\nrun.workload=w\n");
  std::string id = point_id(s);
  ASSERT_EQ(id.size(), 12u);
  // Pinned: renaming points would orphan every result of every existing sweep directory.
  EXPECT_EQ(id, point_id(Settings(s.begin(), s.end())));
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(fnv1a64(canonical(s))));
  EXPECT_EQ(id, std::string(buf).substr(0, 12));
}

TEST(SweepSpec, PointIdsDoNotDependOnAxisOrder) {
  Sweep a = expand_text(std::string(kBase) + R"(
    axis { key: "gpu.nvlink_bw" values: "400GBps" values: "900GBps" }
    axis { key: "plan.tp" values: "4" values: "8" })");
  Sweep b = expand_text(R"(
    axis { key: "plan.tp" values: "8" values: "4" }
    axis { key: "gpu.nvlink_bw" values: "900GBps" values: "400GBps" }
    base { workload: "w" platform: "p.xml" })");
  std::map<std::string, Settings> ia, ib;
  for (const auto& p : a.points) ia[p.id] = p.settings;
  for (const auto& p : b.points) ib[p.id] = p.settings;
  EXPECT_EQ(ia.size(), 4u);
  EXPECT_EQ(ia, ib);
}

TEST(SweepSpec, GridIsTheProductWithTheFirstAxisSlowest) {
  Sweep s = expand_text(std::string(kBase) + R"(
    axis { key: "run.workload" values: "a" values: "b" }
    axis { key: "plan.tp" values: "1" values: "2" values: "4" })");
  ASSERT_EQ(s.points.size(), 6u);
  EXPECT_EQ(values(s, "run.workload"), (std::vector<std::string>{"a", "a", "a", "b", "b", "b"}));
  EXPECT_EQ(values(s, "plan.tp"), (std::vector<std::string>{"1", "2", "4", "1", "2", "4"}));
  EXPECT_EQ(s.axis_keys, (std::vector<std::string>{"run.workload", "plan.tp"}));
}

TEST(SweepSpec, ZippedAxesVaryTogether) {
  Sweep s = expand_text(R"(base { workload: "w" }
    axis { key: "plan.pp" values: "1" values: "2" }
    zip { axis { key: "run.gpu" values: "H100" values: "H800" values: "H20" }
          axis { key: "run.nodes" values: "2" values: "3" values: "4" } })");
  ASSERT_EQ(s.points.size(), 6u);
  for (const auto& p : s.points) {
    const std::string& g = p.settings.at("run.gpu");
    EXPECT_EQ(p.settings.at("run.nodes"), g == "H100" ? "2" : g == "H800" ? "3" : "4") << g;
  }
  EXPECT_EQ(s.axis_keys, (std::vector<std::string>{"plan.pp", "run.gpu", "run.nodes"}));
}

TEST(SweepSpec, AxisOverridesBaseSetting) {
  Sweep s = expand_text(R"(base { platform: "p.xml" workload: "w" set: "plan.tp=2" set: "sim.fidelity=fast" }
                           axis { key: "plan.tp" values: "4" values: "8" })");
  EXPECT_EQ(values(s, "plan.tp"), (std::vector<std::string>{"4", "8"}));
  EXPECT_EQ(values(s, "sim.fidelity"), (std::vector<std::string>{"fast", "fast"}));
}

TEST(SweepSpec, FilterKeepsMatchingPoints) {
  Sweep s = expand_text(std::string(kBase) + R"(
    axis { key: "plan.tp" values: "1" values: "2" values: "4" values: "8" }
    axis { key: "plan.pp" values: "1" values: "2" values: "4" }
    axis { key: "gpu.nvlink_bw" values: "400GBps" values: "0.9TBps" }
    filter: "plan.tp * plan.pp <= 8"
    filter: "gpu.nvlink_bw > 500GBps || plan.tp == 1")");
  for (const auto& p : s.points) {
    int tp = std::stoi(p.settings.at("plan.tp")), pp = std::stoi(p.settings.at("plan.pp"));
    EXPECT_LE(tp * pp, 8);
    EXPECT_TRUE(p.settings.at("gpu.nvlink_bw") == "0.9TBps" || tp == 1);
  }
  // tp*pp <= 8: (1,1)(1,2)(1,4)(2,1)(2,2)(2,4)(4,1)(4,2)(8,1) = 9 pairs; 400GBps keeps tp=1 (3).
  EXPECT_EQ(s.points.size(), 9u + 3u);
}

TEST(SweepFilter, ComparesTextNumbersAndQuantities) {
  Settings s = {{"run.gpu", "H800"}, {"gpu.nvlink_bw", "400GBps"}, {"plan.tp", "8"}};
  auto m = [&](const std::string& f) { return Filter::parse(f, "f").matches(s); };
  EXPECT_TRUE(m("run.gpu == 'H800'"));
  EXPECT_TRUE(m("run.gpu != \"H100\" && !(plan.tp < 8)"));
  EXPECT_TRUE(m("gpu.nvlink_bw == 0.4TBps"));
  EXPECT_TRUE(m("gpu.nvlink_bw * 2 >= 800GBps"));
  EXPECT_TRUE(m("plan.tp / 2 - 1 == 3"));
  EXPECT_FALSE(m("gpu.nvlink_bw > 3.2Tbps"));  // bits: 3.2 Tbps = 400 GBps
  EXPECT_THROW(m("run.gpu < 3"), core::InputError);
  EXPECT_THROW(m("gpu.nvlink_bw < 3s"), core::InputError);
  EXPECT_THROW(m("plan.tp"), core::InputError);
  EXPECT_THROW(Filter::parse("plan.tp ==", "f"), core::InputError);
  EXPECT_THROW(Filter::parse("plan.tp = 2", "f"), core::InputError);
  EXPECT_THROW(Filter::parse("(plan.tp == 2", "f"), core::InputError);
}

TEST(SweepSpec, RejectsUnknownAxisKeys) {
  EXPECT_NE(error_of(std::string(kBase) + R"(axis { key: "gpus.nvlink_bw" values: "1" })").find("unknown key 'gpus.nvlink_bw'"), std::string::npos);
  EXPECT_NE(error_of(std::string(kBase) + R"(axis { key: "run.gpus" values: "1" })").find("unknown key 'run.gpus'"), std::string::npos);
  EXPECT_NE(error_of(std::string(kBase) + R"(axis { key: "plan." values: "1" })").find("unknown key"), std::string::npos);
  EXPECT_NE(error_of(R"(base { platform: "p" workload: "w" set: "bogus=1" })").find("unknown key 'bogus'"), std::string::npos);
}

TEST(SweepSpec, RejectsAnAxisWithNoValues) {
  EXPECT_NE(error_of(std::string(kBase) + R"(axis { key: "plan.tp" })").find("axis plan.tp has no values"), std::string::npos);
  EXPECT_NE(error_of(std::string(kBase) + R"(axis { key: "plan.tp" values: "1" values: "1" })").find("twice"), std::string::npos);
  EXPECT_NE(error_of(std::string(kBase) + R"(zip { axis { key: "plan.tp" values: "1" values: "2" } axis { key: "plan.pp" values: "1" } })")
                .find("same number of values"),
            std::string::npos);
  EXPECT_NE(error_of(std::string(kBase) + R"(axis { key: "plan.tp" values: "1" } axis { key: "plan.tp" values: "2" })").find("more than one axis"),
            std::string::npos);
}

TEST(SweepSpec, RejectsAFilterThatMatchesNothing) {
  std::string e = error_of(std::string(kBase) + R"(axis { key: "plan.tp" values: "1" values: "2" } filter: "plan.tp > 2")");
  EXPECT_NE(e.find("the filter matches no point"), std::string::npos) << e;
  e = error_of(std::string(kBase) + R"(axis { key: "plan.tp" values: "1" } filter: "plan.pp > 2")");
  EXPECT_NE(e.find("filter reads 'plan.pp'"), std::string::npos) << e;
}

TEST(SweepSpec, RejectsPointsWithoutAPlatformOrWorkload) {
  EXPECT_NE(error_of(R"(base { workload: "w" })").find("neither a platform"), std::string::npos);
  EXPECT_NE(error_of(R"(base { platform: "p" })").find("no workload"), std::string::npos);
  EXPECT_NE(error_of(R"(base { gpu: "H100" workload: "w" })").find("needs run.nodes"), std::string::npos);
  EXPECT_NE(error_of(R"(base { gpu: "H100" nodes: "x" workload: "w" })").find("run.nodes"), std::string::npos);
}

TEST(SweepSpec, ListValuesReachTcsimRunAsOneSetArgument) {
  // `--set key=[a,b]` lists (repeated fields) pass through the sweep unchanged: one argv
  // element per --set (no shell), quoted in printed commands, and distinct points per list.
  Sweep s = expand_text(R"(base { platform: "p.xml" workload: "w" set: "model.routing.histogram=[4, 1,1,1]" }
    axis { key: "model.images.resolutions" values: "[224,448]" values: "[ 336 ]" values: "[]" })");
  ASSERT_EQ(s.points.size(), 3u);
  EXPECT_EQ(values(s, "model.images.resolutions"), (std::vector<std::string>{"[224,448]", "[ 336 ]", "[]"}));
  std::set<std::string> ids;
  for (const auto& p : s.points) ids.insert(p.id);
  EXPECT_EQ(ids.size(), 3u);
  const auto run = point_command(s, s.points[0], "tcsim", "work");
  auto has = [&](const std::string& a) { return std::find(run.begin(), run.end(), a) != run.end(); };
  EXPECT_TRUE(has("model.images.resolutions=[224,448]"));
  EXPECT_TRUE(has("model.routing.histogram=[4, 1,1,1]"));
  EXPECT_NE(shell_join(run).find("'model.routing.histogram=[4, 1,1,1]'"), std::string::npos) << shell_join(run);
}

TEST(SweepSpec, RefusesMoreThanMaxPointsWithoutForce) {
  std::string text = std::string(kBase) + R"(
    axis { key: "plan.tp" values: "1" values: "2" values: "3" values: "4" values: "5" }
    axis { key: "plan.pp" values: "1" values: "2" values: "3" values: "4" values: "5" })";
  EXPECT_NE(error_of(text, {20, false}).find("more than --max-points 20"), std::string::npos);
  EXPECT_EQ(expand_text(text, {20, true}).points.size(), 25u);
  EXPECT_EQ(expand_text(text, {25, false}).points.size(), 25u);
  // With a filter, the limit applies to the points kept.
  EXPECT_EQ(expand_text(text + R"( filter: "plan.tp <= 2")", {20, false}).points.size(), 10u);
}

TEST(SweepShard, PartitionCoversEveryPointExactlyOnce) {
  Sweep s = expand_text(std::string(kBase) + R"(
    axis { key: "plan.tp" values: "1" values: "2" values: "3" values: "4" values: "5" values: "6" values: "7" }
    axis { key: "plan.pp" values: "1" values: "2" values: "3" })");
  for (int n = 1; n <= 25; ++n) {
    std::multiset<std::string> seen;
    std::size_t smallest = 1000, largest = 0;
    for (int i = 0; i < n; ++i) {
      auto part = shard_points(s, {i, n});
      smallest = std::min(smallest, part.size());
      largest = std::max(largest, part.size());
      for (const auto* p : part) seen.insert(p->id);
      EXPECT_EQ(part, shard_points(s, {i, n}));  // stable
    }
    EXPECT_EQ(seen.size(), s.points.size()) << n;
    for (const auto& p : s.points) EXPECT_EQ(seen.count(p.id), 1u) << n;
    EXPECT_LE(largest - smallest, 1u) << n;  // balanced
  }
}

TEST(SweepShard, RejectsBadShardSpecs) {
  EXPECT_EQ(parse_shard("2/3", "--shard").index, 2);
  EXPECT_EQ(parse_shard("2/3", "--shard").count, 3);
  for (const char* bad : {"3/2", "2/2", "0/0", "1", "-1/2", "a/b", "1/", "/2", "1/2/3", " 1/2"})
    EXPECT_THROW(parse_shard(bad, "--shard"), core::InputError) << bad;
}

}  // namespace
}  // namespace tcsim::sweep
