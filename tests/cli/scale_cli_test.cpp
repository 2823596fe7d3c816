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

TEST(BenchScale, UnknownScenarioIsAnError) {
  std::string cmd = std::string(TCSIM_BINARY) + " bench scale --only S9 >/dev/null 2>&1";
  int status = std::system(cmd.c_str());
  EXPECT_EQ(WEXITSTATUS(status), 2);
}
