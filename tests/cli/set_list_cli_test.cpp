// `--set key=[a,b,...]` on repeated fields through the real binary: a measured expert-load
// histogram given on the command line gives the same model and step as the same histogram in
// a workload file, deterministically; bad lists exit 2 naming the key and the element.
#include <filesystem>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "tests/cli/cli_test_util.hpp"

using namespace tcsim::clitest;

namespace {

Result run(const std::string& args) { return run_tcsim(args, tmp_dir()); }

std::string platform() {
  const std::string path = tmp_dir() + "/h800.xml";
  if (!std::filesystem::exists(path)) {
    auto r = run("topo gen --gpu H800 --nodes 2 -o " + path);
    EXPECT_EQ(r.code, 0) << r.err;
  }
  return path;
}

/// moe-demo's 64 experts: the first 8 get 8x the load of the others.
std::string skewed_histogram(const std::string& sep) {
  std::string h;
  for (int i = 0; i < 64; ++i) h += (i ? sep : "") + std::string(i < 8 ? "8" : "1");
  return "[" + h + "]";
}

nlohmann::json run_json(const std::string& args, const std::string& name) {
  const std::string out = tmp_dir() + "/" + name + ".json";
  auto r = run("run --platform " + platform() + " " + args + " --out " + out);
  EXPECT_EQ(r.code, 0) << r.err;
  return r.code == 0 ? nlohmann::json::parse(slurp(out)) : nlohmann::json();
}

const std::string kSkew = "--workload moe-demo --set model.routing.kind=histogram --set 'model.routing.histogram=";

}  // namespace

TEST(SetListCli, HistogramOnTheCommandLineEqualsTheSameInAWorkloadFile) {
  // The same workload with `routing { kind: HISTOGRAM histogram: [...] }` written in the file.
  std::string text = slurp(std::string(TCSIM_SOURCE_DIR) + "/workloads/presets/moe-demo.textproto");
  auto at = text.find("  moe {");
  ASSERT_NE(at, std::string::npos);
  text.insert(at, "  routing { kind: HISTOGRAM histogram: " + skewed_histogram(", ") + " }\n");
  const std::string file = tmp_dir() + "/skewed.textproto";
  std::ofstream(file) << text;

  auto from_file = run_json("--workload " + file, "file");
  auto from_set = run_json(kSkew + skewed_histogram(", ") + "'", "set");
  auto again = run_json(kSkew + skewed_histogram(",") + "'", "again");  // spacing does not matter
  auto uniform = run_json("--workload moe-demo", "uniform");
  ASSERT_FALSE(from_file.is_null() || from_set.is_null() || again.is_null() || uniform.is_null());

  EXPECT_EQ(from_set["inputs"]["model"], from_file["inputs"]["model"]);
  EXPECT_EQ(from_set["inputs"]["model"]["routing"]["histogram"].size(), 64u);
  EXPECT_EQ(from_set["step_time_s"], from_file["step_time_s"]);
  EXPECT_EQ(from_set["breakdown"], from_file["breakdown"]);
  EXPECT_EQ(again["step_time_s"], from_set["step_time_s"]);  // deterministic
  EXPECT_EQ(again["breakdown"], from_set["breakdown"]);
  // The skew is applied: the busiest EP rank holds up the step.
  EXPECT_GT(from_set["step_time_s"].get<double>(), uniform["step_time_s"].get<double>());
}

TEST(SetListCli, EnumListReachesThePlan) {
  auto j = run_json("--workload moe-demo --set plan.recompute=selective --set 'plan.recompute_modules=[ Core_Attn , moe_act ]'",
                    "modules");
  ASSERT_FALSE(j.is_null());
  EXPECT_EQ(j["inputs"]["plan"]["recompute_modules"], nlohmann::json::array({"CORE_ATTN", "MOE_ACT"}));
}

TEST(SetListCli, BadListsAreInputErrors) {
  const std::string base = "run --platform " + platform() + " --workload moe-demo ";
  expect_input_error(run(base + "--set model.routing.histogram=0.5"), "model.routing.histogram: 'histogram' is a list");
  expect_input_error(run(base + "--set 'model.routing.histogram=[1, x, 3]'"), "element [1]");
  expect_input_error(run(base + "--set 'model.routing.histogram=[1,2'"), "expected a list like");
  expect_input_error(run(base + "--set 'plan.recompute_modules=[core_attn, attn]'"), "element [1]");
  expect_input_error(run(base + "--set 'plan.ep=[8]'"), "plan.ep: 'ep' is a single value, not a list");
  expect_input_error(run(base + "--set 'model.routing.histogram[0]=2'"), "set the whole list");
  // A well-formed list of the wrong length is caught by the model's own check.
  expect_input_error(run(base + "--set model.routing.kind=histogram --set 'model.routing.histogram=[1,2]'"),
                     "one per routed expert");
}
