// Forked children (sim/child_process.hpp): results in order, several at once, errors
// carried back as the same exception after every child has been waited for.
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <functional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "core/error.hpp"
#include "sim/child_process.hpp"

namespace tcsim::sim {
namespace {

using namespace std::chrono_literals;

TEST(RunInChildren, ResultsComeBackInOrderWhateverFinishesFirst) {
  std::vector<std::function<std::string()>> fns;
  for (int i = 0; i < 5; ++i) {
    fns.emplace_back([i] {
      std::this_thread::sleep_for(std::chrono::milliseconds(40 * (5 - i)));  // the last finishes first
      return std::to_string(i) + ":" + std::to_string(::getpid());
    });
  }
  const auto out = run_in_children(fns, 3);
  ASSERT_EQ(out.size(), 5u);
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(out[static_cast<size_t>(i)].substr(0, 2), std::to_string(i) + ":");
    EXPECT_NE(out[static_cast<size_t>(i)], std::to_string(i) + ":" + std::to_string(::getpid()));  // another process
  }
  // A result larger than a pipe holds, while other children run.
  const auto big = run_in_children({[] { return std::string(1 << 20, 'x'); }, [] { return std::string("y"); }}, 2);
  EXPECT_EQ(big[0].size(), 1u << 20);
  EXPECT_EQ(big[1], "y");
}

TEST(RunInChildren, RunsUpToJobsAtOnce) {
  // Each child records how many siblings are alive (marker files) when it starts.
  const std::string dir = ::testing::TempDir() + "tcsim-children-" + std::to_string(::getpid());
  ASSERT_EQ(std::system(("rm -rf '" + dir + "' && mkdir -p '" + dir + "'").c_str()), 0);
  std::vector<std::function<std::string()>> fns;
  for (int i = 0; i < 6; ++i) {
    fns.emplace_back([dir, i] {
      const std::string mine = dir + "/" + std::to_string(i);
      std::ofstream(mine) << "running";
      auto alive = [&dir] {
        int n = 0;
        for (int k = 0; k < 6; ++k) n += std::ifstream(dir + "/" + std::to_string(k)).good() ? 1 : 0;
        return n;
      };
      // Waits for a sibling (up to 5 s, so that a slow fork cannot fail the test), then
      // leaves time for any third child that should not be running to show up.
      const auto deadline = std::chrono::steady_clock::now() + 5s;
      while (alive() < 2 && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(5ms);
      std::this_thread::sleep_for(100ms);
      const int seen = alive();
      std::remove(mine.c_str());
      return std::to_string(seen);
    });
  }
  int most = 0;
  for (const auto& s : run_in_children(fns, 2)) most = std::max(most, std::stoi(s));
  EXPECT_LE(most, 2);
  EXPECT_GE(most, 2) << "two children never overlapped";
  std::system(("rm -rf '" + dir + "'").c_str());
}

TEST(RunInChildren, TheFirstErrorInOrderIsRethrownAfterAllFinished) {
  const std::string flag = ::testing::TempDir() + "tcsim-children-done-" + std::to_string(::getpid());
  std::remove(flag.c_str());
  std::vector<std::function<std::string()>> fns = {
      [] { return std::string("fine"); },
      []() -> std::string { throw core::InputError("here", "bad value, valid: good"); },
      []() -> std::string { throw std::runtime_error("boom"); },
      [flag] {
        std::this_thread::sleep_for(100ms);
        std::ofstream(flag) << "done";
        return std::string("late");
      }};
  try {
    run_in_children(fns, 4);
    FAIL() << "no error";
  } catch (const core::InputError& e) {
    EXPECT_EQ(e.where(), "here");
    EXPECT_EQ(e.problem(), "bad value, valid: good");
  }
  EXPECT_TRUE(std::ifstream(flag).good()) << "the slow child was not waited for";
  std::remove(flag.c_str());
  // A child that dies without a word is an internal error, not a hang.
  EXPECT_THROW(run_in_children({[]() -> std::string { ::_exit(9); }}, 1), std::runtime_error);
  int status = 0;
  EXPECT_EQ(::waitpid(-1, &status, WNOHANG), -1) << "a child was left unreaped";
}

}  // namespace
}  // namespace tcsim::sim
