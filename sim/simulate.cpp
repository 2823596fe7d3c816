#include "sim/simulate.hpp"

#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include <simgrid/s4u.hpp>

#include "core/error.hpp"
#include "core/log.hpp"
#include "core/proto_util.hpp"
#include "sim/collectives.hpp"
#include "sim/cost_model.hpp"
#include "sim/executor.hpp"
#include "sim/platform.hpp"
#include "workloads/chakra/chakra.hpp"
#include "workloads/generator.hpp"
#include "workloads/model.hpp"

namespace tcsim::sim {
namespace sg = simgrid::s4u;
using core::InputError;

std::vector<std::string> sim_keys() {
  std::vector<std::string> k = {"sim.fold", "sim.sm_contention"};
  for (const auto& a : AlgorithmSelector::keys()) k.push_back(a);
  return k;
}

namespace {

bool parse_bool(const std::string& v, const std::string& where) {
  if (v == "true" || v == "1" || v == "on" || v == "yes") return true;
  if (v == "false" || v == "0" || v == "off" || v == "no") return false;
  throw InputError(where, "expected true or false, got '" + v + "'");
}

}  // namespace

RunResult simulate(const RunRequest& req) {
  core::Overrides overrides;
  for (const auto& s : req.sets) overrides.add(s, "--set");

  // The workload is resolved before SimGrid starts so that bad input fails fast.
  if (req.workload.empty() && req.chakra.empty()) throw InputError("tcsim run", "give --workload NAME|FILE or --chakra DIR/prefix");
  if (!req.chakra.empty() && !req.workload.empty()) throw InputError("--chakra", "give either --workload or --chakra, not both");
  const bool replay = !req.chakra.empty();
  workloads::config::Workload workload;
  workloads::Program program;
  if (replay) {
    program = workloads::read_chakra(req.chakra);
  } else {
    workload = workloads::find_workload(req.workload, "--workload");
    workloads::apply_workload_overrides(workload, overrides);
  }
  workloads::GeneratorOptions gen;
  ExecutorOptions exec_opts;
  if (auto v = overrides.take("sim.fold")) gen.fold = parse_bool(*v, overrides.where("sim.fold"));
  if (auto v = overrides.take("sim.sm_contention")) exec_opts.sm_contention = parse_bool(*v, overrides.where("sim.sm_contention"));
  AlgorithmSelector selector;
  selector.configure(overrides);

  int argc = 2;
  char arg0[] = "tcsim";
  char arg1[] = "--log=root.thres:warning";
  char* argv[] = {arg0, arg1, nullptr};
  sg::Engine engine(&argc, argv);
  configure_engine(engine);
  core::set_sim_clock([] { return sg::Engine::get_clock(); });
  Platform platform = Platform::load(engine, req.platform, overrides);

  std::vector<std::string> known = topology::gpu_keys();
  for (const auto& k : workloads::workload_override_keys()) known.push_back(k);
  for (const auto& k : sim_keys()) known.push_back(k);
  overrides.check_all_taken(known);

  if (!replay) program = workloads::generate(workload, platform.size(), gen);
  CostModel cost(platform.spec(), platform.calibration());
  ExecutionTrace trace = execute(platform, program, cost, selector, exec_opts);

  RunResult r;
  r.gpu = platform.spec().name;
  r.platform = req.platform;
  r.workload = replay ? "chakra:" + req.chakra : (workload.name().empty() ? req.workload : workload.name());
  r.gpus = program.world_size;
  r.nodes = platform.nodes();
  r.step_time_s = trace.step_time;
  r.tokens_per_step = program.tokens_per_step;
  r.tokens_per_second = trace.step_time > 0 ? program.tokens_per_step / trace.step_time : 0;
  r.peak_flops = cost.peak(program.precision);
  r.mfu = trace.step_time > 0 ? program.model_flops_per_step / (trace.step_time * r.gpus * r.peak_flops) : 0;
  r.breakdown = compute_breakdown(program, trace);
  r.algorithms = trace.algorithms_used;
  std::sort(r.algorithms.begin(), r.algorithms.end());
  r.algorithms.erase(std::unique(r.algorithms.begin(), r.algorithms.end()), r.algorithms.end());
  r.ops = program.op_count();
  r.ptasks = trace.ptasks;
  r.activities = trace.activities;
  r.inputs["overrides"] = req.sets;
  if (replay) {
    r.inputs["chakra"] = req.chakra;
  } else {
    r.inputs["model"] = nlohmann::ordered_json::parse(core::to_json(workloads::workload_model(workload, "--workload")));
    r.inputs["plan"] = nlohmann::ordered_json::parse(core::to_json(workload.plan()));
  }
  r.inputs["gpu_spec"] = topology::to_properties(platform.spec());
  r.inputs["calibration_family"] = platform.calibration().family +
                                   (platform.calibration().borrowed_from.empty() ? "" : " (borrowed from " + platform.calibration().borrowed_from + ")");
  return r;
}

RunResult simulate_in_child(const RunRequest& req) {
  int fds[2];
  if (pipe(fds) != 0) throw std::runtime_error(std::string("pipe: ") + std::strerror(errno));
  pid_t pid = fork();
  if (pid < 0) throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
  if (pid == 0) {
    close(fds[0]);
    std::string out;
    int code = 0;
    try {
      out = to_json(simulate(req)).dump();
    } catch (const InputError& e) {
      out = nlohmann::ordered_json{{"error_where", e.where()}, {"error_what", e.problem()}}.dump();
      code = 2;
    } catch (const std::exception& e) {
      out = nlohmann::ordered_json{{"error_where", "internal"}, {"error_what", e.what()}}.dump();
      code = 3;
    }
    size_t off = 0;
    while (off < out.size()) {
      ssize_t n = write(fds[1], out.data() + off, out.size() - off);
      if (n <= 0) break;
      off += static_cast<size_t>(n);
    }
    close(fds[1]);
    _exit(code);
  }
  close(fds[1]);
  std::string text;
  char buf[65536];
  ssize_t n;
  while ((n = read(fds[0], buf, sizeof buf)) > 0) text.append(buf, static_cast<size_t>(n));
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (text.empty()) throw std::runtime_error("simulation child died (status " + std::to_string(status) + ")");
  auto j = nlohmann::ordered_json::parse(text);
  if (j.contains("error_where")) throw InputError(j["error_where"].get<std::string>(), j["error_what"].get<std::string>());
  return from_json(j);
}

}  // namespace tcsim::sim
