// Bad input on the command line: every case prints `error: ...` naming the option or
// file, and exits with code 2 (issue 2). The tests run the real build/tcsim binary.
#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

namespace {

struct Result {
  int code = -1;
  std::string err;
};

Result run(const std::string& args) {
  const std::string err_file = (std::filesystem::temp_directory_path() / ("tcsim-cli-" + std::to_string(getpid()) + ".err")).string();
  std::string cmd = std::string(TCSIM_BINARY) + " " + args + " >/dev/null 2>" + err_file;
  int status = std::system(cmd.c_str());
  Result r;
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  std::ifstream in(err_file);
  r.err.assign(std::istreambuf_iterator<char>(in), {});
  return r;
}

std::string platform(const std::string& gpu) {
  // One directory per test process: ctest runs tests in parallel processes.
  static std::string dir = (std::filesystem::temp_directory_path() / ("tcsim-cli-test-" + std::to_string(getpid()))).string();
  std::filesystem::create_directories(dir);
  std::string path = dir + "/" + gpu + ".xml";
  if (!std::filesystem::exists(path)) {
    auto r = run("topo gen --gpu " + gpu + " --nodes 2 -o " + path);
    EXPECT_EQ(r.code, 0) << r.err;
  }
  return path;
}

void expect_error(const Result& r, const std::string& needle) {
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_EQ(r.err.rfind("error: ", 0), 0u) << r.err;
  EXPECT_NE(r.err.find(needle), std::string::npos) << "stderr was: " << r.err;
  EXPECT_EQ(r.err.find("terminate"), std::string::npos) << r.err;
}

}  // namespace

TEST(CliBadInput, UnknownGpuListsTheCatalog) {
  expect_error(run("topo gen --gpu H900 --nodes 2 -o /tmp/x.xml"), "H800");
}

TEST(CliBadInput, QuantityWithoutUnit) {
  expect_error(run("run --platform " + platform("H800") + " --workload moe-demo --set gpu.nvlink_bw=200"), "GBps");
}

TEST(CliBadInput, EpNotDividingExperts) {
  expect_error(run("run --platform " + platform("H800") + " --workload moe-demo --set plan.ep=7"), "plan.ep");
}

TEST(CliBadInput, MissingPlatformFile) {
  expect_error(run("run --platform /nonexistent/p.xml --workload moe-demo"), "/nonexistent/p.xml");
}

TEST(CliBadInput, PlatformThatIsNotSimgridXml) {
  auto path = std::filesystem::temp_directory_path() / ("tcsim-cli-not-xml-" + std::to_string(getpid()) + ".xml");
  std::ofstream(path) << "this is not XML\n";
  expect_error(run("run --platform " + path.string() + " --workload moe-demo"), path.string());
}

TEST(CliBadInput, UnknownSetKey) {
  expect_error(run("run --platform " + platform("H800") + " --workload moe-demo --set gpu.nvlnk_bw=200GBps"), "gpu.nvlnk_bw");
  expect_error(run("run --platform " + platform("H800") + " --workload moe-demo --set foo.bar=1"), "foo.bar");
}

TEST(CliBadInput, UnknownWorkloadAndAlgorithm) {
  expect_error(run("run --platform " + platform("H800") + " --workload no-such-model"), "moe-demo");
  expect_error(run("run --platform " + platform("H800") + " --workload moe-demo --set sim.algo.all_reduce=magic"), "ring");
}

TEST(CliBadInput, UnwritableOutput) {
  expect_error(run("run --platform " + platform("H800") + " --workload moe-demo --out /nonexistent/dir/r.json"), "--out");
}

TEST(CliRun, WritesTheFoundationJsonKeys) {
  auto out = std::filesystem::temp_directory_path() / ("tcsim-cli-run-" + std::to_string(getpid()) + ".json");
  auto r = run("run --platform " + platform("H800") + " --workload moe-demo --out " + out.string());
  ASSERT_EQ(r.code, 0) << r.err;
  std::ifstream in(out);
  std::string text((std::istreambuf_iterator<char>(in)), {});
  for (const char* key : {"\"step_time_s\"", "\"tokens_per_second\"", "\"mfu\"", "\"compute_s\"", "\"exposed_comm_s\"",
                          "\"ep_all_to_all\"", "\"dp_", "\"gpu\": \"H800\"", "\"inputs\""}) {
    EXPECT_NE(text.find(key), std::string::npos) << key;
  }
}

TEST(CliRun, CompareShowsTheSlowdownOfTheNvlinkCut) {
  auto out = std::filesystem::temp_directory_path() / ("tcsim-cli-compare-" + std::to_string(getpid()) + ".json");
  auto r = run("compare --platform " + platform("H100") + " --platform " + platform("H800") + " --workload moe-demo --out " + out.string());
  ASSERT_EQ(r.code, 0) << r.err;
  std::ifstream in(out);
  std::string text((std::istreambuf_iterator<char>(in)), {});
  auto pos = text.find("\"step_time_ratio\": ");
  ASSERT_NE(pos, std::string::npos);
  double ratio = std::stod(text.substr(pos + 19));
  EXPECT_GT(ratio, 1.0);  // H800's NVLink carries the EP8 all-to-all at 200 instead of 450 GB/s
}

TEST(CliBadInput, UnknownFidelity) {
  expect_error(run("run --platform " + platform("H800") + " --workload moe-demo --fidelity exact"), "analytical");
  expect_error(run("run --platform " + platform("H800") + " --workload moe-demo --set sim.fidelity=fast"), "sim.fidelity");
  expect_error(run("bench scale --only S5-ar-8 --fidelity exact"), "--fidelity");
}

TEST(CliBadInput, GradReduceValueOrCombination) {
  const std::string base = "run --platform " + platform("H800") + " --workload megatron-1.7b ";
  expect_error(run(base + "--set plan.grad_reduce=sometimes"), "valid: overlapped, after_backward");
  expect_error(run(base + "--set plan.grad_reduce=after_backward --set plan.zero_stage=3"), "plan.zero_stage 0, 1 or 2");
}

TEST(CliRun, NoProgressLineWhenStderrIsNotATerminal) {
  // Progress goes to a terminal only; scripts and sweeps capturing stderr see none.
  auto r = run("run --platform " + platform("H800") + " --workload moe-demo");
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.err.find("[tcsim]"), std::string::npos) << r.err;
}

// Issue 4 item 8: a plan that does not fit the GPU's HBM is rejected with its breakdown.
// llama3-8b on one H100 node with no sharding: 8.03B parameters x (2 + 2 + 12) bytes alone
// are 120 GiB per GPU.
TEST(CliBadInput, PlanThatDoesNotFitTheGpuIsRejectedWithItsBreakdown) {
  auto r = run("run --gpu H100 --nodes 1 --workload llama3-8b --fidelity analytical");
  expect_error(r, "more than the GPU's");
  EXPECT_NE(r.err.find("optimizer"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("plan.zero_stage"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("sim.memory_check=false"), std::string::npos) << r.err;
  EXPECT_EQ(run("run --gpu H100 --nodes 1 --workload llama3-8b --fidelity analytical --set sim.memory_check=false").code, 0);
  EXPECT_EQ(run("run --gpu H100 --nodes 1 --workload llama3-8b --fidelity analytical --set plan.zero_stage=3 plan.recompute=full").code, 0);
  // plan check takes the memory from the catalog with --gpu.
  expect_error(run("plan check --model llama3-8b --gpus 8 --gpu H100"), "(H100 HBM)");
  expect_error(run("plan enumerate --model llama3-8b --gpus 8"), "--gpu");
  // An invalid plan is reported as invalid, not as the infinite memory its sizes work out to.
  auto bad = run("run --gpu H800 --nodes 2 --workload moe-demo --set plan.tp=3");
  expect_error(bad, "plan.tp: 3 does not divide the 16 attention heads; valid: 1, 2, 4, 8, 16");
  EXPECT_EQ(bad.err.find("inf GiB"), std::string::npos) << bad.err;
}

// compare builds both clusters in memory with --gpu (how a 2,048-GPU comparison is run).
TEST(CliCompare, TwoGpusInMemoryAndItsBadInput) {
  const std::string out = (std::filesystem::temp_directory_path() / ("tcsim-compare-" + std::to_string(getpid()) + ".out")).string();
  const std::string cmd = std::string(TCSIM_BINARY) +
                          " compare --gpu H100 --gpu H800 --nodes 2 --workload moe-demo --fidelity analytical >" + out + " 2>/dev/null";
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  std::ifstream in(out);
  const std::string text((std::istreambuf_iterator<char>(in)), {});
  EXPECT_NE(text.find("slowdown (H800 / H100 step time)"), std::string::npos) << text;
  expect_error(run("compare --gpu H100 --nodes 2 --workload moe-demo"), "--set-b");
  expect_error(run("compare --gpu H100 --gpu H800 --platform " + platform("H800") + " --nodes 2 --workload moe-demo"), "--platform");
}

// SimGrid loads a link bandwidth of "nanGBps" and a negative latency (the latter with a
// warning of its own): tcsim refuses both, naming the link, instead of simulating with
// them (a NaN bandwidth dropped the link's time from every closed form, exit 0).
TEST(CliBadInput, PlatformLinkWithNanBandwidthOrBadLatency) {
  std::ifstream in(platform("H800"));
  const std::string xml((std::istreambuf_iterator<char>(in)), {});
  auto variant = [&](const std::string& attr, const std::string& value) {
    std::string x = xml;
    const size_t at = x.find("<link id=\"nvl-n0-g0\"");
    const size_t v = x.find(attr + "=\"", at) + attr.size() + 2;
    x.replace(v, x.find('"', v) - v, value);
    const auto path = std::filesystem::temp_directory_path() / ("tcsim-cli-" + attr + std::to_string(getpid()) + ".xml");
    std::ofstream(path) << x;
    return path.string();
  };
  expect_error(run("run --platform " + variant("bandwidth", "nanGBps") + " --workload moe-demo"),
               "link 'nvl-n0-g0_DOWN' has bandwidth nan B/s; every link needs a positive, finite bandwidth");
  expect_error(run("run --platform " + variant("latency", "nanus") + " --workload moe-demo --fidelity analytical"),
               "link 'nvl-n0-g0_DOWN' has latency nan s; a link's latency is finite and 0 or more");
  const Result negative = run("run --platform " + variant("latency", "-5us") + " --workload moe-demo");
  EXPECT_EQ(negative.code, 2) << negative.err;
  EXPECT_NE(negative.err.find("error: "), std::string::npos) << negative.err;
  EXPECT_NE(negative.err.find("has latency -0.000005 s"), std::string::npos) << negative.err;
}
