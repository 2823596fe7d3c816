// Stands in for `tcsim run` in the sweep tests: as its own program
// (fake_tcsim.cpp, `tcsim sweep run --tcsim`) and as the in-process command of a runner
// (RunOptions::in_process) in runner_test.cpp.
// A compiled program rather than a script: it starts in about a millisecond even on a
// loaded machine, so the tests' timings stay meaningful.
//
// Behaviour per point comes from its --set keys:
//   sim.fake_sleep=S   sleep S seconds first       sim.fake_exit=N   (N != 0) print an error, exit N
//   sim.fake_crash=1   die by SIGSEGV               sim.fake_hang=1   sleep until killed
//   sim.fake_nojson=1  exit 0 without a result
// Every start is appended as one JSON line to $FAKE_TCSIM_LOG (pid, command, settings), so a
// test can count how often each point ran and check that no child outlives the runner.
#pragma once

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fcntl.h>
#include <fstream>
#include <map>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

#include <nlohmann/json.hpp>

namespace tcsim::sweep::fake {

using nlohmann::json;

inline void log_start(const json& entry) {
  const char* path = std::getenv("FAKE_TCSIM_LOG");
  if (!path) return;
  std::string line = entry.dump() + "\n";
  int fd = ::open(path, O_WRONLY | O_APPEND | O_CREAT, 0644);
  if (fd < 0) return;
  [[maybe_unused]] auto n = ::write(fd, line.data(), line.size());  // one write: lines never interleave
  ::close(fd);
}

struct Args {
  std::map<std::string, std::string> opts, sets;
};

inline Args parse(const std::vector<std::string>& a, std::size_t from) {
  Args r;
  for (std::size_t i = from; i + 1 < a.size(); i += 2) {
    if (a[i] == "--set") {
      auto eq = a[i + 1].find('=');
      r.sets[a[i + 1].substr(0, eq)] = eq == std::string::npos ? "" : a[i + 1].substr(eq + 1);
    } else {
      r.opts[a[i]] = a[i + 1];
    }
  }
  return r;
}

// 0 to go on, else the exit code to return.
inline int behave(const std::map<std::string, std::string>& s) {
  auto get = [&](const char* k) { auto it = s.find(k); return it == s.end() ? std::string() : it->second; };
  if (!get("sim.fake_sleep").empty()) std::this_thread::sleep_for(std::chrono::duration<double>(std::stod(get("sim.fake_sleep"))));
  if (get("sim.fake_hang") == "1")
    for (;;) ::pause();
  if (get("sim.fake_crash") == "1") {
    std::signal(SIGSEGV, SIG_DFL);
    std::raise(SIGSEGV);
  }
  if (!get("sim.fake_exit").empty() && std::stoi(get("sim.fake_exit")) != 0) {
    std::fprintf(stderr, "some progress output\nerror: fake failure requested by sim.fake_exit\n");
    return std::stoi(get("sim.fake_exit"));
  }
  return 0;
}

/// The fake's whole command line (a[0] is the program); returns the exit code.
inline int run(const std::vector<std::string>& a) {
  if (a.size() > 1 && a[1] == "run") {
    Args r = parse(a, 2);
    log_start({{"pid", ::getpid()}, {"cmd", "run"}, {"settings", r.sets}, {"platform", r.opts["--platform"]},
               {"gpu", r.opts["--gpu"]}, {"nodes", r.opts["--nodes"]}, {"fabric", r.opts["--fabric"]},
               {"workload", r.opts["--workload"]}, {"out", r.opts["--out"]}});
    if (r.opts["--gpu"].empty() && ::access(r.opts["--platform"].c_str(), R_OK) != 0) {
      std::fprintf(stderr, "error: %s: cannot open file\n", r.opts["--platform"].c_str());
      return 2;
    }
    if (int code = behave(r.sets); code != 0) return code;
    if (r.sets["sim.fake_nojson"] == "1") return 0;
    double x = 0;
    for (const auto& [k, v] : r.sets) x += static_cast<double>(k.size() * 7 + v.size());
    json result = {{"step_time_s", 1.0 + x / 1000.0},
                   {"tokens_per_second", 1e6 / (1.0 + x / 1000.0)},
                   {"mfu", 0.42},
                   {"breakdown", {{"compute_s", 0.5}, {"exposed_comm_s", 0.25}}},
                   {"gpu", "FAKE"},
                   {"inputs", {{"platform", r.opts["--platform"]}, {"workload", r.opts["--workload"]}, {"set", r.sets}}}};
    // Written in two pieces with a pause, as a real writer might: the runner must never
    // publish a half-written result.
    std::string text = result.dump(1);
    std::ofstream out(r.opts["--out"]);
    out << text.substr(0, text.size() / 2) << std::flush;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    out << text.substr(text.size() / 2);
    return out ? 0 : 1;
  }
  std::fprintf(stderr, "error: fake tcsim: unsupported command\n");
  return 2;
}

}  // namespace tcsim::sweep::fake
