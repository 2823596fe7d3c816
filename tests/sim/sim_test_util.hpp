// Helpers for simulator tests. SimGrid allows one engine per process, so every
// simulation in a test runs in a forked child that reports numbers back over a pipe.
#pragma once

#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include <simgrid/s4u.hpp>

#include "core/overrides.hpp"
#include "sim/collectives.hpp"
#include "sim/cost_model.hpp"
#include "sim/executor.hpp"
#include "sim/platform.hpp"
#include "sim/simulate.hpp"
#include "topology/cluster.hpp"
#include "topology/gpu.hpp"
#include "topology/platform_xml.hpp"

namespace tcsim::simtest {

/// A run of `workload` (or, with chakra, of that trace) on a platform file.
inline sim::RunRequest request(const std::string& platform, const std::string& workload, std::vector<std::string> sets = {},
                               const std::string& chakra = "") {
  sim::RunRequest r;
  r.platform = platform;
  r.workload = workload;
  r.chakra = chakra;
  r.sets = std::move(sets);
  return r;
}

/// Runs fn in a child process and returns the doubles it produced.
inline std::vector<double> in_child(const std::function<std::vector<double>()>& fn) {
  int fds[2];
  if (pipe(fds) != 0) throw std::runtime_error("pipe");
  pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    int code = 0;
    std::vector<double> out;
    try {
      out = fn();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "child: %s\n", e.what());
      code = 1;
    }
    if (!out.empty()) (void)!write(fds[1], out.data(), out.size() * sizeof(double));
    close(fds[1]);
    _exit(code);
  }
  close(fds[1]);
  std::vector<double> result;
  double v;
  while (read(fds[0], &v, sizeof v) == static_cast<ssize_t>(sizeof v)) result.push_back(v);
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) throw std::runtime_error("simulation child failed");
  return result;
}

/// Writes a generated platform to a temporary file and returns its path.
inline std::string make_platform(const std::string& gpu, int nodes, const std::vector<std::string>& sets = {},
                                 const std::string& fabric = "single-switch") {
  core::Overrides o;
  for (const auto& s : sets) o.add(s);
  auto spec = topology::find_gpu(gpu);
  topology::apply_gpu_overrides(spec, o);
  auto cluster = topology::build_cluster(spec, nodes, 8, fabric, o);
  std::string name = gpu + "-" + std::to_string(nodes) + "-" + fabric;
  for (const auto& s : sets) name += "-" + s;
  for (auto& c : name)
    if (c == '=' || c == '/' || c == '.') c = '_';
  auto path = std::filesystem::temp_directory_path() / ("tcsim-test-" + std::to_string(getpid()) + "-" + name + ".xml");
  std::ofstream out(path);
  topology::write_platform_xml(cluster, out, "tests");
  return path.string();
}

/// Two lanes (ranks 0 and 1): lane 0 computes `flops` ("fwd") then sends `bytes` to lane 1,
/// which posts the matching receive first thing.
inline workloads::Program send_recv_program(double flops, double bytes) {
  workloads::Program p;
  p.world_size = 2;
  p.lanes.resize(2);
  p.lanes[0].ranks = {0};
  p.lanes[1].ranks = {1};
  workloads::Op c;
  c.kind = workloads::OpKind::Compute;
  c.compute.flops = flops;
  c.label = p.label("fwd");
  workloads::Op s;
  s.kind = workloads::OpKind::Send;
  s.stream = workloads::Stream::PpComm;
  s.category = workloads::CommCategory::PpP2P;
  s.p2p = {1, bytes, 0};
  s.deps = {0};
  s.label = p.label("send act");
  workloads::Op rv = s;
  rv.kind = workloads::OpKind::Recv;
  rv.p2p.peer_lane = 0;
  rv.deps = {};
  rv.label = p.label("recv act");
  p.lanes[0].ops = {c, s};
  p.lanes[1].ops = {rv};
  return p;
}

/// A quiet SimGrid engine configured as tcsim configures it (one per process: in a child).
inline std::unique_ptr<simgrid::s4u::Engine> make_engine() {
  int argc = 2;
  char a0[] = "test", a1[] = "--log=root.thres:critical";
  char* argv[] = {a0, a1, nullptr};
  auto engine = std::make_unique<simgrid::s4u::Engine>(&argc, argv);
  sim::configure_engine(*engine);
  return engine;
}

inline core::Overrides overrides(const std::vector<std::string>& sets) {
  core::Overrides o;
  for (const auto& s : sets) o.add(s);
  return o;
}

/// Loads a platform in the current (child) process and runs program on it.
inline sim::ExecutionTrace run_program(const std::string& platform_path, const workloads::Program& program,
                                       const std::vector<std::string>& sets = {}, sim::ExecutorOptions opts = {}) {
  auto engine = make_engine();
  core::Overrides o = overrides(sets);
  sim::AlgorithmSelector selector;
  selector.configure(o);
  auto platform = sim::Platform::load(*engine, platform_path, o);
  sim::CostModel cost(platform.spec(), platform.calibration());
  return sim::execute(platform, program, cost, selector, opts);
}

/// Simulated step time of program on platform_path, in a child process.
inline double step_time(const std::string& platform_path, const workloads::Program& program,
                        const std::vector<std::string>& sets = {}) {
  return in_child([&] { return std::vector<double>{run_program(platform_path, program, sets).step_time}; }).at(0);
}

}  // namespace tcsim::simtest
