#include "sim/simulate.hpp"
#include "sim/session.hpp"

#include "sim/child_process.hpp"


#include <cctype>
#include <cerrno>
#include <map>
#include <memory>
#include <optional>
#include <cstdio>
#include <cstring>
#include <string>

#include <simgrid/s4u.hpp>

#include "core/error.hpp"
#include "core/log.hpp"
#include "core/proto_util.hpp"
#include "sim/collectives.hpp"
#include "sim/cost_model.hpp"
#include "sim/energy.hpp"
#include "sim/executor.hpp"
#include "sim/platform.hpp"
#include "sim/timeline.hpp"
#include "topology/cluster.hpp"
#include "workloads/chakra/chakra.hpp"
#include "workloads/generator.hpp"
#include "workloads/plan.hpp"
#include "workloads/memory.hpp"
#include "workloads/model.hpp"

namespace tcsim::sim {
namespace sg = simgrid::s4u;
using core::InputError;

std::vector<std::string> sim_keys() {
  std::vector<std::string> k = {"sim.fold", "sim.sm_contention", "sim.fidelity", "sim.memoize", "sim.link_form", "sim.shifted_forms", "sim.memory_check"};
  for (const auto& a : AlgorithmSelector::keys()) k.push_back(a);
  for (const auto& a : PowerModel::keys()) k.push_back(a);
  return k;
}

namespace {

bool parse_bool(const std::string& v, const std::string& where) {
  if (v == "true" || v == "1" || v == "on" || v == "yes") return true;
  if (v == "false" || v == "0" || v == "off" || v == "no") return false;
  throw InputError(where, "expected true or false, got '" + v + "'");
}

// Tier of a link for the utilisation report: nvlink, nic, or fabric.<tier> from the
// fabric link's name (fab-tor*, fab-pod*, fab-r*/fab-p* leaf uplinks; topology/cluster.cpp).
std::string link_tier(const Platform& platform, uint32_t id) {
  const auto kind = platform.all_links()[id].kind;
  if (kind != topology::LinkKind::fabric) return topology::to_string(kind);
  const std::string name = platform.link_name(id);
  std::string rest = name.substr(name.rfind("fab-", 0) == 0 ? 4 : 0);
  if (rest.rfind("tor", 0) == 0) return "fabric.tor_uplink";
  if (rest.rfind("pod", 0) == 0) return "fabric.pod_uplink";
  if (rest.size() > 1 && (rest[0] == 'r' || rest[0] == 'p') && std::isdigit(static_cast<unsigned char>(rest[1])))
    return "fabric.leaf_uplink";
  return "fabric.other";
}

// Bytes each link carried over its effective capacity for the step, averaged per tier.
// The executor accounts the bytes of every collective and send over the platform's routes
// (SimGrid's link load plugin does not see L07 parallel tasks: measured 0 here). Links
// and trace.link_bytes are both by id (by name): each tier adds its links in name order.
std::map<std::string, double> link_utilisation(const Platform& platform, const ExecutionTrace& trace) {
  std::map<std::string, std::pair<double, int>> acc;
  if (trace.step_time <= 0) return {};
  const auto& links = platform.all_links();
  auto carried = trace.link_bytes.begin();
  for (uint32_t id = 0; id < links.size(); ++id) {
    const LinkInfo& l = links[id];
    const bool has = carried != trace.link_bytes.end() && carried->first == id;
    const double bytes = has ? (carried++)->second : 0.0;
    if (l.kind == topology::LinkKind::other) continue;
    auto& a = acc[link_tier(platform, id)];
    if (has) a.first += bytes / (l.bandwidth * trace.step_time);
    a.second += 1;
  }
  std::map<std::string, double> out;
  for (const auto& [k, v] : acc)
    if (v.second > 0) out[k] = v.first / v.second;
  return out;
}

// One line on stderr, rewritten in place (only asked for when stderr is a terminal).
void print_progress(const Progress& p) {
  const double pct = p.ops_total > 0 ? 100.0 * static_cast<double>(p.ops_done) / static_cast<double>(p.ops_total) : 0;
  std::fprintf(stderr, "\r[tcsim] simulated %.4g s, %.0f%% of ops done, %.0f events/s, %.0f s wall   ", p.sim_time, pct,
               p.wall_s > 0 ? static_cast<double>(p.events) / p.wall_s : 0.0, p.wall_s);
  std::fflush(stderr);
}

}  // namespace

Session::Session(const RunRequest& req) {
  for (const auto& s : req.sets) overrides.add(s, "--set");
  // The workload is resolved before SimGrid starts so that bad input fails fast.
  if (req.workload.empty() && req.chakra.empty()) throw InputError("tcsim run", "give --workload NAME|FILE or --chakra DIR/prefix");
  if (!req.chakra.empty() && !req.workload.empty()) throw InputError("--chakra", "give either --workload or --chakra, not both");
  replay = !req.chakra.empty();
  if (replay) {
    program = workloads::read_chakra(req.chakra);
  } else {
    workload = workloads::find_workload(req.workload, "--workload");
    workloads::apply_workload_overrides(workload, overrides);
  }
  if (auto v = overrides.take("sim.fold")) gen.fold = parse_bool(*v, overrides.where("sim.fold"));
  if (auto v = overrides.take("sim.sm_contention")) exec.sm_contention = parse_bool(*v, overrides.where("sim.sm_contention"));
  if (auto v = overrides.take("sim.fidelity")) exec.fidelity = parse_fidelity(*v, overrides.where("sim.fidelity"));
  if (auto v = overrides.take("sim.memoize")) exec.memoize = parse_bool(*v, overrides.where("sim.memoize"));
  if (auto v = overrides.take("sim.link_form")) exec.link_form = parse_bool(*v, overrides.where("sim.link_form"));
  if (auto v = overrides.take("sim.shifted_forms")) exec.shifted_forms = parse_bool(*v, overrides.where("sim.shifted_forms"));
  if (auto v = overrides.take("sim.memory_check")) memory_check = parse_bool(*v, overrides.where("sim.memory_check"));
  if (req.progress) exec.progress = print_progress;
  selector.configure(overrides);
  power = PowerModel::from_overrides(overrides);
  if (!req.tokens.empty()) tokens = parse_tokens(req.tokens, "--tokens");
  check_trace_path(req.trace);

  int argc = 2;
  char arg0[] = "tcsim";
  char arg1[] = "--log=root.thres:warning";
  char* argv[] = {arg0, arg1, nullptr};
  engine = std::make_unique<sg::Engine>(&argc, argv);
  configure_engine(*engine);
  core::set_sim_clock([] { return sg::Engine::get_clock(); });
  if (req.platform.empty() == req.gpu.empty()) {
    throw InputError("tcsim run", "give either --platform FILE.xml or --gpu NAME --nodes N [--fabric F]");
  }
  if (!req.platform.empty()) {
    platform.emplace(Platform::load(*engine, req.platform, overrides));
  } else {
    topology::GpuSpec spec = topology::find_gpu(req.gpu, "--gpu");
    topology::apply_gpu_overrides(spec, overrides);
    auto cluster = topology::build_cluster(spec, req.nodes, req.gpus_per_node, req.fabric, overrides);
    platform.emplace(Platform::build(*engine, std::move(cluster), overrides, simgrid_objects(exec)));
  }

  std::vector<std::string> known = topology::gpu_keys();
  for (const auto& k : workloads::workload_override_keys()) known.push_back(k);
  for (const auto& k : sim_keys()) known.push_back(k);
  for (const auto& o : topology::fabric_options()) known.push_back(o.key);
  overrides.check_all_taken(known);
}

namespace {
bool leave_engines = false;
}  // namespace

void leave_engines_to_exit() { leave_engines = true; }

// A left engine stays reachable from Engine::get_instance() until the process exits.
Session::~Session() {
  if (leave_engines) static_cast<void>(engine.release());
}

Throughput throughput(const workloads::Program& p, double step_time, double peak_flops) {
  if (step_time <= 0) return {};
  return {p.tokens_per_step / step_time, p.model_flops_per_step / (step_time * p.world_size * peak_flops)};
}

ExecutionTrace Session::execute_program(const workloads::Program& p, const ExecutorOptions& o) const {
  AlgorithmSelector sel = selector;
  if (p.moe_top_k > 0) sel.set_default_moe({p.moe_top_k, p.moe_max_nodes});
  CostModel cost(platform->spec(), platform->calibration());
  return execute(*platform, p, cost, sel, o);
}

RunResult simulate(const RunRequest& req) {
  Session session(req);
  const bool replay = session.replay;
  const auto& workload = session.workload;
  const Platform& platform = *session.platform;
  if (!replay && session.memory_check) {
    // A plan that does not fit the GPU's HBM is rejected with its breakdown (issue 4), as
    // `tcsim plan check --gpu` does; sim.memory_check=false simulates it anyway.
    const auto model = workloads::workload_model(workload, "--workload");
    // An invalid plan (tp not dividing the heads, ...) is reported as such, not as the
    // infinite memory its sizes work out to.
    workloads::validate_plan(model, workload.plan(), platform.size(), "--set");
    try {
      workloads::check_memory(model, workload.plan(), platform.size(), platform.spec().hbm,
                              "--workload " + req.workload + " on " + platform.spec().name);
    } catch (const InputError& e) {
      throw InputError(e.where(), e.problem() + "; or --set sim.memory_check=false to simulate it anyway");
    }
  }
  workloads::Program program = replay ? std::move(session.program) : workloads::generate(workload, platform.size(), session.gen);
  const ExecutorOptions& exec_opts = session.exec;
  ExecutionTrace trace = session.execute_program(program, exec_opts);
  CostModel cost(platform.spec(), platform.calibration());
  if (req.progress) std::fprintf(stderr, "\r\033[K");
  if (!req.trace.empty()) write_timeline(req.trace, program, trace);

  RunResult r;
  r.gpu = platform.spec().name;
  r.platform = platform.path();
  r.workload = replay ? "chakra:" + req.chakra : (workload.name().empty() ? req.workload : workload.name());
  r.gpus = program.world_size;
  r.nodes = platform.nodes();
  r.step_time_s = trace.step_time;
  r.tokens_per_step = program.tokens_per_step;
  r.peak_flops = cost.peak(program.precision);
  const Throughput tp = throughput(program, trace.step_time, r.peak_flops);
  r.tokens_per_second = tp.tokens_per_second;
  r.mfu = tp.mfu;
  r.breakdown = compute_breakdown(program, trace);
  r.algorithms = trace.algorithms_used;
  std::sort(r.algorithms.begin(), r.algorithms.end());
  r.algorithms.erase(std::unique(r.algorithms.begin(), r.algorithms.end()), r.algorithms.end());
  r.link_utilisation = link_utilisation(platform, trace);
  r.training = estimate_training(r.step_time_s, r.tokens_per_second, r.breakdown.compute_s, r.gpus, r.nodes,
                                 platform.spec().tdp.value(), platform.spec().price_per_hour_usd, session.power, session.tokens);
  r.ops = program.op_count();
  r.ptasks = trace.ptasks;
  r.link_form_tasks = trace.link_form_tasks;
  r.alarms = trace.alarms;
  r.activities = trace.activities;
  r.transfers = trace.transfers;
  r.inputs["overrides"] = req.sets;
  r.inputs["fidelity"] = to_string(exec_opts.fidelity);
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

RunResult simulate_in_child(const RunRequest& req) { return simulate_in_children({req}, 1).front(); }

std::vector<RunResult> simulate_in_children(const std::vector<RunRequest>& reqs, int jobs) {
  std::vector<std::function<std::string()>> fns;
  for (const auto& req : reqs) {
    fns.emplace_back([&req] {
      leave_engines_to_exit();  // the child exits once it has written the result
      return to_json(simulate(req)).dump();
    });
  }
  std::vector<RunResult> out;
  for (const auto& text : run_in_children(fns, jobs)) out.push_back(from_json(nlohmann::ordered_json::parse(text)));
  return out;
}

}  // namespace tcsim::sim
