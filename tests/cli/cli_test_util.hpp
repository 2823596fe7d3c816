// Running the real tcsim binary (TCSIM_BINARY) from CLI tests: exit code, stdout, stderr.
#pragma once

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

namespace tcsim::clitest {

struct Result {
  int code = -1;
  std::string out, err;
};

inline std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

/// One folder per test process (ctest runs tests in parallel processes).
inline const std::string& tmp_dir() {
  static std::string dir =
      (std::filesystem::temp_directory_path() / ("tcsim-clitest-" + std::to_string(getpid()))).string();
  std::filesystem::create_directories(dir);
  return dir;
}

inline Result run_tcsim(const std::string& args, const std::string& dir) {
  std::string cmd = std::string(TCSIM_BINARY) + " " + args + " >" + dir + "/out 2>" + dir + "/err";
  int status = std::system(cmd.c_str());
  Result r;
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = slurp(dir + "/out");
  r.err = slurp(dir + "/err");
  return r;
}

/// Bad input: exit code 2, stderr starting with `error: ` and containing needle, no crash.
inline void expect_input_error(const Result& r, const std::string& needle) {
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_EQ(r.err.rfind("error: ", 0), 0u) << r.err;
  EXPECT_NE(r.err.find(needle), std::string::npos) << "stderr was: " << r.err;
  EXPECT_EQ(r.err.find("terminate"), std::string::npos) << r.err;
}

}  // namespace tcsim::clitest
