// `tcsim bench scale` runs its smallest scenarios in CI (issue 6); the full set runs by
// hand (docs/PERFORMANCE.md), never as a timed test.
#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

TEST(BenchScale, SmallestScenariosReportEveryField) {
  auto out = std::filesystem::temp_directory_path() / ("tcsim-bench-" + std::to_string(getpid()) + ".json");
  std::string cmd = std::string(TCSIM_BINARY) + " bench scale --only S5-a2a-8,S5-ar-8,S5-ar-64 --json >" + out.string() + " 2>/dev/null";
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  std::ifstream in(out);
  auto rows = nlohmann::json::parse(in);
  ASSERT_EQ(rows.size(), 3u);
  for (const auto& r : rows) {
    EXPECT_EQ(r["status"], "ok") << r.dump();
    for (const char* k : {"scenario", "ranks", "step_time_s", "wall_s", "rss_mib", "events_per_s"}) EXPECT_TRUE(r.contains(k)) << k;
    EXPECT_GT(r["step_time_s"].get<double>(), 0.0);
    EXPECT_GT(r["rss_mib"].get<double>(), 0.0);
  }
  EXPECT_EQ(rows[0]["scenario"], "S5-a2a-8");
  EXPECT_EQ(rows[0]["ranks"], 8);
}

namespace {
nlohmann::json bench(const std::string& args) {
  auto out = std::filesystem::temp_directory_path() / ("tcsim-bench-" + std::to_string(getpid()) + ".json");
  std::string cmd = std::string(TCSIM_BINARY) + " bench scale " + args + " --json >" + out.string() + " 2>/dev/null";
  EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
  std::ifstream in(out);
  return nlohmann::json::parse(in);
}
}  // namespace

// Issue 6 item 4: the analytical fidelity within 5% of flow. S4-256 runs both ways here
// (flow takes ~0.1 s with memoization). S1's flow run takes minutes, so its flow step time
// is the one measured by hand and recorded in docs/PERFORMANCE.md (23.98 s, 2026-11-30);
// re-measure it there when the engine changes.
TEST(BenchScale, AnalyticalAgreesWithFlow) {
  auto flow = bench("--only S4-256");
  auto analytical = bench("--only S4-256,S1 --fidelity analytical");
  ASSERT_EQ(flow.size(), 1u);
  ASSERT_EQ(analytical.size(), 2u);
  for (const auto& r : analytical) EXPECT_EQ(r["fidelity"], "analytical");
  const double s4_flow = flow[0]["step_time_s"].get<double>();
  EXPECT_NEAR(analytical[1]["step_time_s"].get<double>(), s4_flow, 0.01 * s4_flow);  // rows come in scenario order: S1, S4
  EXPECT_EQ(analytical[1]["scenario"], "S4-256");
  const double s1_flow_measured = 23.98;
  EXPECT_EQ(analytical[0]["scenario"], "S1");
  EXPECT_NEAR(analytical[0]["step_time_s"].get<double>(), s1_flow_measured, 0.05 * s1_flow_measured);
  // S4: 232 all-to-alls and an all-reduce, each alone on the network: all timed without flows.
  EXPECT_EQ(flow[0]["memo_hits"], 233);
}

TEST(BenchScale, UnknownScenarioIsAnError) {
  std::string cmd = std::string(TCSIM_BINARY) + " bench scale --only S9 >/dev/null 2>&1";
  int status = std::system(cmd.c_str());
  EXPECT_EQ(WEXITSTATUS(status), 2);
}
