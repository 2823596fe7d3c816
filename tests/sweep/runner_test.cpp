// The local runner through the real `tcsim sweep` CLI, with tests/sweep/fake_tcsim.cpp
// standing in for the points (`--tcsim`): results, failures, timeouts, resume after kill -9,
// Ctrl-C, merge and the generated Slurm script.
#include <chrono>
#include <csignal>
#include <functional>
#include <set>
#include <thread>

#include <gtest/gtest.h>
#include <sys/mount.h>

#include "sim/sweep/slurm.hpp"
#include "sim/sweep/spec.hpp"
#include "sim/sweep/runner.hpp"
#include "tests/sweep/fake_tcsim.hpp"
#include "tests/sweep/test_util.hpp"

namespace tcsim::sweep::test {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

std::string spec_text(const std::string& axes, const std::string& extra_set = "") {
  return R"(name: "t"
base { platform: "p.xml" workload: "tiny" )" + extra_set + R"( }
)" + axes;
}

class SweepRun : public ScratchTest {
protected:
  void SetUp() override {
    ScratchTest::SetUp();
    write("p.xml", "<platform/>\n");
    out = dir / "out";
  }
  fs::path spec(const std::string& text) { return write("sweep.textproto", text); }
  Result sweep(std::vector<std::string> args) {
    args.insert(args.begin(), "sweep");
    args.insert(args.end(), {"--tcsim", kFake});
    return tcsim(args);
  }
  // Starts `tcsim sweep run` in the background; returns its pid.
  int start(const std::vector<std::string>& args) {
    std::vector<std::string> argv = {kTcsim, "sweep", "run"};
    argv.insert(argv.end(), args.begin(), args.end());
    argv.insert(argv.end(), {"--tcsim", kFake});
    int pid = ::fork();
    if (pid == 0) {
      std::string errlog = (dir / "runner.err").string();
      std::FILE* f = std::freopen(errlog.c_str(), "a", stderr);
      (void)f;
      std::vector<char*> av;
      for (auto& a : argv) av.push_back(a.data());
      av.push_back(nullptr);
      ::execv(av[0], av.data());
      ::_exit(127);
    }
    return pid;
  }
  static int wait_exit(int pid) {
    int status = 0;
    ::waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }
  /// Complete results in out/SUB (temporaries of an interrupted write start with '.').
  std::size_t count(const std::string& sub) {
    std::size_t n = 0;
    for (const auto& f : files_in(out / sub)) n += f[0] != '.';
    return n;
  }
  // Failed points by cause, each checked: the fake hangs before anything else (timed out
  // after 1 s: SIGTERM), then crashes (SIGSEGV); `other` checks the rest.
  struct Failures {
    std::size_t timed_out = 0, crashed = 0, other = 0;
  };
  Failures failures(const std::function<void(const json&)>& other) {
    Failures n;
    for (const auto& name : files_in(out / "failed")) {
      json f = json::parse(slurp(out / "failed" / name));
      const auto& st = f["settings"];
      if (st["sim.fake_hang"] == "1") {
        EXPECT_TRUE(f["timed_out"].get<bool>()) << f.dump();
        EXPECT_EQ(f["signal"], "SIGTERM");
        EXPECT_NE(f["reason"].get<std::string>().find("timed out after 1s"), std::string::npos);
        ++n.timed_out;
      } else if (st["sim.fake_crash"] == "1") {
        EXPECT_EQ(f["signal"], "SIGSEGV") << f.dump();
        EXPECT_FALSE(f["timed_out"].get<bool>());
        ++n.crashed;
      } else {
        other(f);
        ++n.other;
      }
    }
    return n;
  }
  fs::path out;
};

std::vector<std::string> ids_of(const fs::path& specfile) {
  std::vector<std::string> ids;
  for (const auto& p : load_sweep(specfile.string()).points) ids.push_back(p.id);
  return ids;
}

TEST_F(SweepRun, WritesOneResultPerPointAndSkipsThemOnRerun) {
  auto s = spec(spec_text(R"(axis { key: "plan.tp" values: "1" values: "2" values: "4" }
                             axis { key: "model.layers" values: "2" values: "3" })"));
  Result r = sweep({"run", s.string(), "--out", out.string(), "--jobs", "3"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "");
  ASSERT_EQ(count("points"), 6u);
  EXPECT_EQ(count("failed"), 0u);
  EXPECT_EQ(files_in(out / "work"), std::vector<std::string>{});
  for (const auto& id : ids_of(s)) {
    json j = json::parse(slurp(out / "points" / (id + ".json")));
    EXPECT_EQ(j["id"], id);
    EXPECT_EQ(point_id(j["settings"].get<Settings>()), id);
    EXPECT_GT(j["result"]["step_time_s"].get<double>(), 0);
    // argv, not a shell: each --set is one word, the platform resolved against the spec's folder.
    auto run = j["commands"].back();
    EXPECT_EQ(run[1], "run");
    EXPECT_EQ(run[3], (dir / "p.xml").string());
    EXPECT_EQ(j["result"]["inputs"]["set"]["plan.tp"], j["settings"]["plan.tp"]);
  }
  EXPECT_EQ(fake_log().size(), 6u);
  json manifest = json::parse(slurp(out / "sweep.json"));
  EXPECT_EQ(manifest["points"].size(), 6u);
  EXPECT_EQ(manifest["axes"], json({"plan.tp", "model.layers"}));

  r = sweep({"run", s.string(), "--out", out.string()});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(fake_log().size(), 6u) << "finished points must not run again";
  EXPECT_NE(r.err.find("6 already done"), std::string::npos) << r.err;
}

// Without --tcsim, `tcsim sweep run` runs each command in a fork of itself (no exec):
// here the runner is this test program and the fake tcsim its in-process command. Results,
// exit codes, signals and timeouts come out as for exec'd points (the tests above), and the
// forked points are real processes (pids of their own, killed on timeout).
TEST_F(SweepRun, PointsForkedInProcessFinishFailAndTimeOutAsExecdOnes) {
  auto s = spec(R"(base { gpu: "H800" nodes: "2" workload: "tiny" }
    axis { key: "sim.fake_exit" values: "0" values: "3" }
    axis { key: "sim.fake_hang" values: "0" values: "1" }
    axis { key: "sim.fake_crash" values: "0" values: "1" })");
  RunOptions o;
  o.out_dir = out;
  o.jobs = 8;
  o.point_timeout_s = 1;
  o.progress = 0;
  o.in_process = [](const std::vector<std::string>& argv) { return fake::run(argv); };
  // Were the commands exec'd after all, this test program would start again with them as
  // arguments: let it run no test then (the points fail for want of a result).
  ::setenv("GTEST_FILTER", "NoTestHere", 1);
  RunSummary sum = run_local(load_sweep(s.string()), o);
  ::unsetenv("GTEST_FILTER");
  EXPECT_EQ(sum.succeeded, 1u);
  EXPECT_EQ(sum.failed, 7u);
  ASSERT_EQ(count("points"), 1u);
  json ok = json::parse(slurp(out / "points" / files_in(out / "points")[0]));
  EXPECT_EQ(ok["commands"][0][1], "run");
  EXPECT_GT(ok["result"]["step_time_s"].get<double>(), 0);
  Failures n = failures([](const json& f) {
    EXPECT_EQ(f["exit_code"], 3) << f.dump();
    EXPECT_NE(f["stderr_tail"].get<std::string>().find("error: fake failure"), std::string::npos);
  });
  EXPECT_EQ(n.timed_out, 4u);
  EXPECT_EQ(n.crashed, 2u);
  EXPECT_EQ(n.other, 1u);
  // 8 runs, each in a process of its own (not this one).
  auto starts = fake_log();
  ASSERT_EQ(starts.size(), 8u);
  std::set<int> pids;
  for (const auto& e : starts) pids.insert(e["pid"].get<int>());
  EXPECT_EQ(pids.size(), 8u);
  EXPECT_EQ(pids.count(::getpid()), 0u);
}

TEST_F(SweepRun, ArgumentsWithSpacesAndQuotesReachThePointIntact) {
  auto s = spec(spec_text(R"(axis { key: "model.name" values: "a b" values: "it's \"x\"; rm -rf $HOME" })"));
  Result r = sweep({"run", s.string(), "--out", out.string()});
  ASSERT_EQ(r.code, 0) << r.err;
  std::set<std::string> got;
  for (const auto& e : fake_log()) got.insert(e["settings"]["model.name"]);
  EXPECT_EQ(got, (std::set<std::string>{"a b", "it's \"x\"; rm -rf $HOME"}));
}

// run.gpu: one `tcsim run --gpu --nodes --fabric` per point, which builds the cluster in
// memory, with every gpu./fabric. setting as --set (no topo gen, no platform XML).
TEST_F(SweepRun, BuildsTheClusterInMemoryFromRunGpu) {
  auto s = spec(R"(base { gpu: "H800" nodes: "2" fabric: "rail" workload: "tiny" set: "gpu.nvlink_bw=400GBps" }
                   axis { key: "run.nodes" values: "2" values: "4" }
                   axis { key: "fabric.radix" values: "32" })");
  Result r = sweep({"run", s.string(), "--out", out.string(), "--jobs", "2"});
  ASSERT_EQ(r.code, 0) << r.err;
  auto log = fake_log();
  ASSERT_EQ(log.size(), 2u);
  std::set<std::string> nodes;
  for (const auto& e : log) {
    EXPECT_EQ(e["cmd"], "run");
    EXPECT_EQ(e["gpu"], "H800");
    EXPECT_EQ(e["fabric"], "rail");
    EXPECT_EQ(e["platform"], "");
    EXPECT_EQ(e["settings"], json({{"gpu.nvlink_bw", "400GBps"}, {"fabric.radix", "32"}}));
    nodes.insert(e["nodes"].get<std::string>());
  }
  EXPECT_EQ(nodes, (std::set<std::string>{"2", "4"}));
  for (const auto& id : ids_of(s)) {
    json j = json::parse(slurp(out / "points" / (id + ".json")));
    ASSERT_EQ(j["commands"].size(), 1u);
    EXPECT_EQ(j["commands"][0][1], "run");
  }
}

TEST_F(SweepRun, RecordsFailuresAndGoesOn) {
  auto s = spec(R"(base { platform: "p.xml" workload: "tiny" }
    axis { key: "sim.fake_exit" values: "0" values: "3" }
    axis { key: "plan.tp" values: "1" values: "2" })");
  Result r = sweep({"run", s.string(), "--out", out.string(), "--jobs", "2"});
  EXPECT_EQ(r.code, 1) << r.err;
  EXPECT_NE(r.err.find("exit code 3"), std::string::npos) << r.err;
  EXPECT_EQ(count("points"), 2u);
  ASSERT_EQ(count("failed"), 2u);
  json f = json::parse(slurp(out / "failed" / files_in(out / "failed")[0]));
  EXPECT_EQ(f["exit_code"], 3);
  EXPECT_EQ(f["timed_out"], false);
  EXPECT_NE(f["stderr_tail"].get<std::string>().find("error: fake failure"), std::string::npos);
  EXPECT_EQ(f["settings"]["sim.fake_exit"], "3");
  EXPECT_EQ(f["failed_command"][1], "run");
}

TEST_F(SweepRun, CrashesMissingResultsAndTimeoutsAreFailures) {
  auto s = spec(R"(base { platform: "p.xml" workload: "tiny" }
    axis { key: "sim.fake_crash" values: "1" values: "0" }
    axis { key: "sim.fake_nojson" values: "1" values: "0" }
    axis { key: "sim.fake_hang" values: "1" values: "0" })");
  auto t0 = std::chrono::steady_clock::now();
  Result r = sweep({"run", s.string(), "--out", out.string(), "--jobs", "8", "--point-timeout", "1s"});
  double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(r.code, 1) << r.err;
  EXPECT_LT(took, 15.0);
  EXPECT_EQ(count("points"), 1u);  // crash=0 nojson=0 hang=0
  ASSERT_EQ(count("failed"), 7u);
  Failures n = failures([](const json& f) {
    EXPECT_NE(f["reason"].get<std::string>().find("no result JSON"), std::string::npos) << f.dump();
  });
  EXPECT_EQ(n.timed_out, 4u);
  EXPECT_EQ(n.crashed, 2u);
  EXPECT_EQ(n.other, 1u);  // no result JSON

  // Failed points are not rerun unless asked.
  std::size_t before = fake_log().size();
  r = sweep({"run", s.string(), "--out", out.string(), "--jobs", "8", "--point-timeout", "1s"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(fake_log().size(), before);
  r = sweep({"run", s.string(), "--out", out.string(), "--jobs", "8", "--point-timeout", "1s", "--retry-failed"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(fake_log().size(), before + 7);
}

TEST_F(SweepRun, KillNineThenResumeLeavesExactlyOneCompleteResultPerPoint) {
  std::string values;
  for (int i = 0; i < 24; ++i) values += " values: \"" + std::to_string(i) + "\"";
  auto s = spec(spec_text("axis { key: \"model.seed\"" + values + " }", "set: \"sim.fake_sleep=0.15\""));
  int pid = start({s.string(), "--out", out.string(), "--jobs", "4"});
  // Kill once some points are done and others are running.
  for (int i = 0; i < 1500 && count("points") < 6; ++i) std::this_thread::sleep_for(20ms);
  ASSERT_EQ(::kill(pid, SIGKILL), 0);
  EXPECT_EQ(wait_exit(pid), 128 + SIGKILL);
  std::size_t done_before = count("points");
  EXPECT_GE(done_before, 6u);
  EXPECT_LT(done_before, 24u);
  std::set<std::string> finished_before;
  for (const auto& n : files_in(out / "points"))
    if (n[0] != '.') finished_before.insert(n.substr(0, 12));
  // No child outlives the runner (PR_SET_PDEATHSIG).
  std::this_thread::sleep_for(200ms);
  for (const auto& e : fake_log()) EXPECT_FALSE(alive(e["pid"])) << "orphan point " << e.dump();

  Result r = sweep({"run", s.string(), "--out", out.string(), "--jobs", "4"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(files_in(out / "points").size(), 24u);
  EXPECT_EQ(count("failed"), 0u);
  EXPECT_EQ(files_in(out / "work"), std::vector<std::string>{});
  std::vector<std::string> expected;
  for (const auto& id : ids_of(s)) expected.push_back(id + ".json");
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(files_in(out / "points"), expected);  // no temporaries, no duplicates
  for (const auto& n : expected) {
    json j = json::parse(slurp(out / "points" / n));  // complete: parses
    EXPECT_EQ(j["result"]["mfu"], 0.42);
  }
  // Points finished before the kill ran once; the others ran at most twice (once cut short).
  std::map<std::string, int> runs;
  for (const auto& e : fake_log()) ++runs[point_id([&] {
    Settings st = e["settings"].get<Settings>();
    st["run.platform"] = "p.xml";
    st["run.workload"] = "tiny";
    return st;
  }())];
  for (const auto& id : finished_before) EXPECT_EQ(runs[id], 1) << id;
  for (const auto& [id, n] : runs) EXPECT_LE(n, 2) << id;
}

TEST_F(SweepRun, InterruptStopsChildrenAndKeepsOnlyCompleteResults) {
  std::string values;
  for (int i = 0; i < 12; ++i) values += " values: \"" + std::to_string(i) + "\"";
  auto s = spec(spec_text("axis { key: \"model.seed\"" + values + " }", "set: \"sim.fake_sleep=0.3\""));
  int pid = start({s.string(), "--out", out.string(), "--jobs", "3"});
  for (int i = 0; i < 1500 && count("points") < 3; ++i) std::this_thread::sleep_for(20ms);
  std::this_thread::sleep_for(100ms);
  ASSERT_EQ(::kill(pid, SIGINT), 0);
  EXPECT_EQ(wait_exit(pid), 130);
  EXPECT_NE(slurp(dir / "runner.err").find("interrupted"), std::string::npos) << slurp(dir / "runner.err");
  for (const auto& e : fake_log()) EXPECT_FALSE(alive(e["pid"])) << e.dump();
  EXPECT_EQ(count("failed"), 0u) << "an interrupted point is not a failed point";
  EXPECT_EQ(files_in(out / "work"), std::vector<std::string>{});
  std::size_t done = count("points");
  EXPECT_LT(done, 12u);
  for (const auto& n : files_in(out / "points")) EXPECT_NO_THROW(json::parse(slurp(out / "points" / n)));
  Result r = sweep({"run", s.string(), "--out", out.string(), "--jobs", "4"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(count("points"), 12u);
}

TEST_F(SweepRun, ShardsTogetherRunEveryPointOnce) {
  std::string values;
  for (int i = 0; i < 10; ++i) values += " values: \"" + std::to_string(i) + "\"";
  auto s = spec(spec_text("axis { key: \"model.seed\"" + values + " }"));
  for (int i = 0; i < 3; ++i) {
    Result r = sweep({"run", s.string(), "--out", out.string(), "--shard", std::to_string(i) + "/3"});
    ASSERT_EQ(r.code, 0) << r.err;
  }
  EXPECT_EQ(count("points"), 10u);
  EXPECT_EQ(fake_log().size(), 10u);
}

TEST_F(SweepRun, BadInputIsAnErrorWithExitCode2) {
  auto good = spec_text(R"(axis { key: "plan.tp" values: "1" values: "2" })");
  struct Case {
    std::string spec;
    std::vector<std::string> extra;
    std::string message;
  } cases[] = {
      {spec_text(R"(axis { key: "plan_tp" values: "1" })"), {}, "unknown key 'plan_tp'"},
      {spec_text(R"(axis { key: "plan.tp" })"), {}, "has no values"},
      {spec_text(R"(axis { key: "plan.tp" values: "1" } filter: "plan.tp > 1")"), {}, "matches no point"},
      {good, {"--shard", "3/2"}, "bad shard '3/2'"},
      {good, {"--max-points", "1"}, "more than --max-points 1"},
      {good, {"--point-timeout", "10"}, "--point-timeout"},
      {good, {"--only", "0123456789ab"}, "no point"},
      {"base { platform: \"p.xml\" workload: \"tiny\" } bogus: 1", {}, "sweep.textproto:1"},
  };
  for (const auto& c : cases) {
    auto s = spec(c.spec);
    std::vector<std::string> args = {"run", s.string(), "--out", out.string()};
    args.insert(args.end(), c.extra.begin(), c.extra.end());
    Result r = sweep(args);
    EXPECT_EQ(r.code, 2) << c.message << "\n" << r.err;
    EXPECT_EQ(r.err.rfind("error: ", 0), 0u) << r.err;
    EXPECT_NE(r.err.find(c.message), std::string::npos) << r.err;
  }
  EXPECT_EQ(tcsim({"sweep", "run", spec(good).string(), "--out", out.string(), "--max-points", "1", "--force", "--tcsim", kFake}).code, 0);
}

TEST_F(SweepRun, UnwritableDirectoryIsAClearError) {
  auto s = spec(spec_text(R"(axis { key: "plan.tp" values: "1" })"));
  write("file", "x");
  Result r = sweep({"run", s.string(), "--out", (dir / "file" / "out").string()});
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_NE(r.err.find("cannot create the sweep directory"), std::string::npos) << r.err;
}

TEST_F(SweepRun, DiskFullStopsWithAClearErrorAndKeepsWrittenResults) {
  // A 1 MiB tmpfs fills up part way through; needs permission to mount (root, no container limits).
  fs::path mnt = dir / "small";
  fs::create_directories(mnt);
  if (::mount("tcsim-test", mnt.c_str(), "tmpfs", 0, "size=64k") != 0) GTEST_SKIP() << "cannot mount a small tmpfs here";
  struct Unmount {
    fs::path p;
    ~Unmount() { ::umount2(p.c_str(), MNT_DETACH); }
  } unmount{mnt};
  std::string values;
  for (int i = 0; i < 60; ++i) values += " values: \"" + std::string(200, 'a' + i % 26) + std::to_string(i) + "\"";
  auto s = spec(spec_text("axis { key: \"model.tag\"" + values + " }"));
  Result r = sweep({"run", s.string(), "--out", (mnt / "out").string(), "--jobs", "2"});
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_NE(r.err.find("No space left on device"), std::string::npos) << r.err;
  std::size_t n = 0;
  for (const auto& name : files_in(mnt / "out" / "points")) {
    if (name[0] == '.') continue;
    EXPECT_NO_THROW(json::parse(slurp(mnt / "out" / "points" / name))) << name;
    ++n;
  }
  EXPECT_GT(n, 0u);
  EXPECT_LT(n, 60u);
}

TEST_F(SweepRun, MergeTabulatesAndReportsMissingAndFailedPoints) {
  auto s = spec(R"(base { platform: "p.xml" workload: "tiny" }
    axis { key: "plan.tp" values: "1" values: "2" values: "4" }
    axis { key: "sim.fake_exit" values: "0" values: "5" })");
  auto ids = ids_of(s);
  auto points = load_sweep(s.string()).points;
  // Run only two points: one succeeds, one fails; four stay missing.
  std::string ok, bad;
  for (const auto& p : points) {
    if (p.settings.at("plan.tp") != "2") continue;
    (p.settings.at("sim.fake_exit") == "0" ? ok : bad) = p.id;
  }
  Result r = sweep({"run", s.string(), "--out", out.string(), "--only", ok + "," + bad});
  EXPECT_EQ(r.code, 1) << r.err;
  std::string before_point = slurp(out / "points" / (ok + ".json"));

  Result m = tcsim({"sweep", "merge", out.string()});
  EXPECT_EQ(m.code, 1) << m.err;
  EXPECT_NE(m.err.find("6 points: 1 done, 1 failed, 4 missing"), std::string::npos) << m.err;
  EXPECT_NE(m.err.find("failed   " + bad), std::string::npos) << m.err;
  for (const auto& p : points)
    if (p.id != ok && p.id != bad) {
      EXPECT_NE(m.err.find("missing  " + p.id), std::string::npos) << m.err;
    }
  EXPECT_NE(m.err.find("--retry-failed --only"), std::string::npos) << m.err;
  std::string csv = slurp(out / "results.csv");
  std::string header = csv.substr(0, csv.find('\n'));
  EXPECT_EQ(header.rfind("id,plan.tp,sim.fake_exit,step_time_s,tokens_per_second,mfu,", 0), 0u) << header;
  EXPECT_NE(header.find("breakdown.compute_s"), std::string::npos);
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 2);
  EXPECT_EQ(csv.find(ok + ",2,0,"), header.size() + 1) << csv;

  // The printed command reruns exactly the failed and missing points.
  std::string cmd = m.err.substr(m.err.find("rerun just these here:"));
  cmd = cmd.substr(cmd.find("--only ") + 7);
  std::string only = cmd.substr(0, cmd.find_first_of(" \n"));
  std::size_t before = fake_log().size();
  r = sweep({"run", s.string(), "--out", out.string(), "--retry-failed", "--only", only});
  EXPECT_EQ(fake_log().size(), before + 5);

  // Idempotent, and point files are never modified.
  Result m1 = tcsim({"sweep", "merge", out.string(), "-o", (dir / "a.csv").string()});
  Result m2 = tcsim({"sweep", "merge", out.string(), "-o", (dir / "b.csv").string()});
  EXPECT_EQ(m1.code, 1);
  EXPECT_EQ(slurp(dir / "a.csv"), slurp(dir / "b.csv"));
  EXPECT_EQ(slurp(out / "points" / (ok + ".json")), before_point);
  std::string a_csv = slurp(dir / "a.csv");
  EXPECT_EQ(std::count(a_csv.begin(), a_csv.end(), '\n'), 4);  // header + 3 ok

  Result j = tcsim({"sweep", "merge", out.string(), "--jsonl", "-o", "-"});
  EXPECT_EQ(std::count(j.out.begin(), j.out.end(), '\n'), 3);
  EXPECT_EQ(json::parse(j.out.substr(0, j.out.find('\n')))["result"]["mfu"], 0.42);

  EXPECT_EQ(tcsim({"sweep", "merge", (dir / "nowhere").string()}).code, 2);
}

TEST_F(SweepRun, SlurmScriptPassesBashNAndSurvivesHostilePaths) {
  // A directory name with a space, both quotes, $, backquote, '#', '%' and a backslash.
  fs::path hostile = dir / "we ird 'q' \"d\" $HOME `x` #c %j \\b";
  fs::create_directories(hostile);
  std::ofstream(hostile / "p.xml") << "<platform/>\n";
  std::ofstream(hostile / "s p.textproto") << spec_text(R"(axis { key: "plan.tp" values: "1" values: "2" values: "3" })");
  fs::path o = hostile / "o u t";
  Result r = tcsim({"sweep", "slurm", (hostile / "s p.textproto").string(), "--out", o.string(), "--shards", "2",
                    "--throttle", "1", "--partition", "debug", "--time", "0:10:00", "--mem", "1G", "--tcsim", kFake});
  ASSERT_EQ(r.code, 0) << r.err;
  fs::path script = o / "slurm" / "sweep.sbatch";
  std::string text = slurp(script);
  EXPECT_NE(text.find("#SBATCH --array=0-1%1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("#SBATCH --partition=debug\n"), std::string::npos) << text;
  EXPECT_NE(text.find("#SBATCH --time=0:10:00\n"), std::string::npos) << text;
  std::string out_, err_;
  int st = run_capture({"bash", "-n", script.string()}, out_, err_);
  EXPECT_EQ(st, 0) << err_;
  // Run each array task's body with bash, as Slurm would.
  for (int task = 0; task < 2; ++task) {
    ::setenv("SLURM_ARRAY_TASK_ID", std::to_string(task).c_str(), 1);
    ::setenv("SLURM_ARRAY_JOB_ID", "77", 1);
    st = run_capture({"bash", script.string()}, out_, err_);
    EXPECT_EQ(st, 0) << err_;
  }
  ::unsetenv("SLURM_ARRAY_TASK_ID");
  ::unsetenv("SLURM_ARRAY_JOB_ID");
  // The path has a backslash, which #SBATCH lines cannot carry: the log goes through the shell.
  EXPECT_TRUE(fs::exists(o / "slurm" / "logs" / "77_1.out"));
  EXPECT_EQ(files_in(o / "points").size(), 3u);
  for (const auto& e : fake_log()) EXPECT_EQ(e["platform"], (hostile / "p.xml").string());
}

TEST_F(SweepRun, ListPrintsThePointsOfAShard) {
  auto s = spec(spec_text(R"(axis { key: "plan.tp" values: "1" values: "2" values: "4" })"));
  Result r = tcsim({"sweep", "list", s.string()});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 3);
  for (const auto& id : ids_of(s)) EXPECT_NE(r.out.find(id + "  plan.tp="), std::string::npos);
  r = tcsim({"sweep", "list", s.string(), "--shard", "0/2", "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(json::parse(r.out)["points"].size(), 2u);
}

}  // namespace
}  // namespace tcsim::sweep::test
