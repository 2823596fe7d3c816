// Helpers for the sweep tests: a scratch folder per test, running tcsim as a process,
// reading the fake tcsim's log.
#pragma once

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <sys/wait.h>
#include <unistd.h>

#include "sim/sweep/slurm.hpp"

namespace tcsim::sweep::test {

namespace fs = std::filesystem;

inline const std::string kTcsim = TCSIM_BINARY;
inline const std::string kSource = TCSIM_SOURCE_DIR;
inline const std::string kFake = SWEEP_FAKE_TCSIM;

/// A fresh folder under the build tree's temp area, removed when the test passes.
class ScratchTest : public ::testing::Test {
protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir = fs::temp_directory_path() / ("tcsim-sweep-test-" + std::to_string(::getpid())) /
          (std::string(info->test_suite_name()) + "." + info->name());
    fs::remove_all(dir);
    fs::create_directories(dir);
    log = dir / "fake.log";
    ::setenv("FAKE_TCSIM_LOG", log.c_str(), 1);
  }
  void TearDown() override {
    if (HasFailure()) return;
    fs::remove_all(dir);
    std::error_code ec;
    fs::remove(dir.parent_path(), ec);  // only when empty
  }

  fs::path write(const std::string& name, const std::string& text) {
    fs::path p = dir / name;
    fs::create_directories(p.parent_path());
    std::ofstream(p) << text;
    return p;
  }

  /// Every start the fake tcsim logged.
  std::vector<nlohmann::json> fake_log() const {
    std::vector<nlohmann::json> out;
    std::ifstream in(log);
    std::string line;
    while (std::getline(in, line))
      if (!line.empty()) out.push_back(nlohmann::json::parse(line));
    return out;
  }

  fs::path dir, log;
};

struct Result {
  int code = -1;  ///< exit code, or 128 + signal
  std::string out, err;
};

/// Runs `tcsim args...` to completion.
inline Result tcsim(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {kTcsim};
  argv.insert(argv.end(), args.begin(), args.end());
  Result r;
  int status = run_capture(argv, r.out, r.err);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return r;
}

inline std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline std::vector<std::string> files_in(const fs::path& d) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(d, ec)) out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

/// True while pid runs (a zombie, which nobody reaped yet, counts as gone).
inline bool alive(int pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(stat, line)) return false;
  auto paren = line.rfind(')');
  return paren != std::string::npos && paren + 2 < line.size() && line[paren + 2] != 'Z' && line[paren + 2] != 'X';
}

}  // namespace tcsim::sweep::test
