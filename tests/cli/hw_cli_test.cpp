// `tcsim hw ...` end to end: good output and bad input (exit 2 with an `error:` line).
#include "tests/cli/cli_test_util.hpp"

using namespace tcsim::clitest;

namespace {
Result run(const std::string& args) { return run_tcsim(args, tmp_dir()); }
}  // namespace

TEST(HwCli, ClassifyJsonHasTheRules) {
  auto r = run("hw classify H20 --json");
  ASSERT_EQ(r.code, 0) << r.err;
  for (const char* key : {"\"tpp\"", "\"pd\"", "\"2022-10\"", "\"2023-10\"", "\"controlled\": false"}) {
    EXPECT_NE(r.out.find(key), std::string::npos) << key << " in " << r.out;
  }
}

TEST(HwCliBadInput, UnknownGpuInShowListsTheCatalog) {
  auto r = run("hw show H900");
  expect_input_error(r, "H900");
  EXPECT_NE(r.err.find("H800"), std::string::npos) << r.err;
}

TEST(HwCliBadInput, UnknownGpuInClassifyListsTheCatalog) {
  auto r = run("hw classify B300 --json");
  expect_input_error(r, "B300");
  EXPECT_NE(r.err.find("H20"), std::string::npos) << r.err;
}

TEST(HwCliBadInput, OverrideWithoutUnit) {
  expect_input_error(run("hw classify H100 --set gpu.nvlink_bw=200"), "GBps");
}

TEST(HwCliBadInput, MissingCatalogFile) {
  expect_input_error(run("hw list --catalog /nonexistent/mine.textproto"), "mine.textproto");
}
