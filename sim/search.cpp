#include "sim/search.hpp"

#include <malloc.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <functional>
#include <new>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <stdexcept>
#include <fstream>
#include <set>

#include <google/protobuf/util/json_util.h>

#include "core/cpus.hpp"
#include "core/error.hpp"
#include "core/proto_util.hpp"
#include "sim/child_process.hpp"
#include "sim/cost_model.hpp"
#include "sim/session.hpp"
#include "sim/steady_state.hpp"
#include "workloads/enumerate.hpp"
#include "workloads/generator.hpp"
#include "workloads/model.hpp"
#include "workloads/plan.hpp"

namespace tcsim::sim {
namespace wl = tcsim::workloads;
using nlohmann::ordered_json;

namespace {

bool has_key(const std::vector<std::string>& sets, const std::string& key) {
  return std::any_of(sets.begin(), sets.end(), [&](const std::string& s) { return s.rfind(key + "=", 0) == 0; });
}

// Keys that shape the workload (already applied to the candidates' workload file).
bool workload_key(const std::string& set) {
  return set.rfind("model.", 0) == 0 || set.rfind("plan.", 0) == 0 || set.rfind("seed=", 0) == 0;
}

ordered_json row_json(const SearchRow& r) {
  ordered_json j = {{"tp", r.plan.tp()},
                    {"pp", r.plan.pp()},
                    {"ep", r.plan.ep()},
                    {"cp", r.plan.cp()},
                    {"dp", r.plan.dp()},
                    {"zero_stage", r.plan.zero_stage()},
                    {"recompute", wl::config::ParallelPlan::Recompute_Name(r.plan.recompute())},
                    {"schedule", r.plan.schedule()},
                    {"micro_batch", r.plan.micro_batch()},
                    {"virtual_stages", r.plan.virtual_stages()},
                    {"memory_bytes", r.memory_bytes},
                    {"step_time_s", r.step_time_s},
                    {"mfu", r.mfu},
                    {"tokens_per_second", r.tokens_per_second}};
  if (!r.simulated_micro_batches.empty()) j["extrapolated_from_micro_batches"] = r.simulated_micro_batches;
  if (r.flow_step_time_s >= 0) j["flow_step_time_s"] = r.flow_step_time_s;
  j["plan"] = ordered_json::parse(core::to_json(r.plan));
  return j;
}

SearchRow row_from_json(const ordered_json& j) {
  SearchRow r;
  if (!google::protobuf::util::JsonStringToMessage(j.at("plan").dump(), &r.plan).ok()) {
    throw std::runtime_error("plan search: a ranked plan did not read back");
  }
  r.memory_bytes = j.at("memory_bytes").get<double>();
  r.step_time_s = j.at("step_time_s").get<double>();
  r.mfu = j.at("mfu").get<double>();
  r.tokens_per_second = j.at("tokens_per_second").get<double>();
  if (j.contains("extrapolated_from_micro_batches")) r.simulated_micro_batches = j.at("extrapolated_from_micro_batches").get<std::vector<int64_t>>();
  return r;
}

// Progress shared by the workers of a search (in memory they all map).
struct SharedProgress {
  std::atomic<size_t> next{0}, done{0};
  std::atomic<double> best{0};
};

// evaluate(i) for i in [0, n), in `jobs` forked workers sharing the plans (each takes the
// next plan not yet taken) and what this process has built (the platform); the outcomes
// come back in plan order, so the ranking does not depend on the number of workers. An
// outcome's row is the JSON the ranking leaves this process as anyway.
std::vector<ordered_json> evaluate_all(size_t n, int jobs, bool progress,
                                       const std::function<ordered_json(size_t)>& evaluate) {
  std::vector<ordered_json> out(n);
  const size_t workers = std::min(n, static_cast<size_t>(std::max(1, jobs)));
  void* mem = workers > 1 ? ::mmap(nullptr, sizeof(SharedProgress), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0)
                          : MAP_FAILED;
  SharedProgress local;
  SharedProgress* shared = mem != MAP_FAILED ? new (mem) SharedProgress : &local;
  auto last_shown = std::chrono::steady_clock::now();
  // Takes plans until none is left; returns (index, outcome) pairs.
  auto work = [&](bool show) {
    ordered_json mine = ordered_json::array();
    for (size_t i; (i = shared->next.fetch_add(1)) < n;) {
      if (show && std::chrono::steady_clock::now() - last_shown > std::chrono::milliseconds(500)) {
        last_shown = std::chrono::steady_clock::now();
        std::fprintf(stderr, "\r[tcsim] plan search: %zu/%zu plans simulated, best %.4g tokens/s\033[K", shared->done.load(), n,
                     shared->best.load());
      }
      ordered_json o = evaluate(i);
      if (o.contains("row")) {
        const double tps = o["row"].at("tokens_per_second").get<double>();
        for (double b = shared->best.load(); tps > b && !shared->best.compare_exchange_weak(b, tps);) {
        }
      }
      ++shared->done;
      mine.push_back({{"i", i}, {"outcome", std::move(o)}});
    }
    return mine;
  };
  auto collect = [&](const ordered_json& mine) {
    for (const auto& e : mine) out.at(e.at("i").get<size_t>()) = e.at("outcome");
  };
  if (shared == &local) {
    collect(work(progress));
  } else {
    std::vector<std::function<std::string()>> fns;
    for (size_t w = 0; w < workers; ++w) fns.emplace_back([&work, progress, w] { return work(progress && w == 0).dump(); });
    std::vector<std::string> texts;
    try {
      texts = run_in_children(fns, static_cast<int>(workers));
    } catch (...) {
      ::munmap(mem, sizeof(SharedProgress));
      throw;
    }
    ::munmap(mem, sizeof(SharedProgress));
    for (const auto& t : texts) collect(ordered_json::parse(t));
  }
  if (progress) std::fprintf(stderr, "\r\033[K");
  for (size_t i = 0; i < n; ++i)
    if (out[i].is_null()) throw std::runtime_error("plan search: plan " + std::to_string(i) + " was not evaluated");
  return out;
}

// Every fitting plan simulated on one platform in this process, best first.
SearchResult rank_in_process(const SearchRequest& req, wl::config::Workload& workload) {
  Session session(req.run);
  if (session.replay) throw core::InputError("plan search", "searches plans of a --workload, not a --chakra replay");
  workload = session.workload;
  const Platform& platform = *session.platform;
  const auto model = wl::workload_model(session.workload, "--workload");
  wl::EnumerateOptions eo;
  eo.gpus = platform.size();
  eo.gpu_memory = session.memory_check ? platform.spec().hbm : core::Bytes(1e30);
  eo.max_tp = req.max_tp;
  eo.max_cp = req.max_cp;
  eo.zero_stages = req.zero_stages;
  // Every (schedule, micro-batch, chunks per rank) asked for, each enumerated over the
  // parallel sizes, ZeRO stages and recompute modes.
  const auto& base = session.workload.plan();
  const std::vector<std::string> schedules = req.schedules.empty() ? std::vector<std::string>{base.schedule()} : req.schedules;
  const std::vector<int64_t> mbs = req.micro_batches.empty() ? std::vector<int64_t>{base.micro_batch()} : req.micro_batches;
  const std::vector<int64_t> vs = req.virtual_stages.empty() ? std::vector<int64_t>{base.virtual_stages()} : req.virtual_stages;
  std::vector<wl::PlanCandidate> candidates;
  std::set<std::string> seen;
  for (const auto& sched : schedules)
    for (int64_t mb : mbs)
      for (int64_t v : vs) {
        // Chunks per rank belong to the interleaved schedule only; the others keep theirs.
        const auto* info = wl::find_schedule(sched);
        if (info != nullptr && !info->interleaved && v != vs.front()) continue;
        if (info != nullptr && !info->interleaved) v = base.virtual_stages() > 1 ? 0 : base.virtual_stages();
        eo.base = base;
        eo.base.set_schedule(sched);
        eo.base.set_micro_batch(mb);
        eo.base.set_virtual_stages(v);
        for (auto& c : wl::enumerate_plans(model, eo)) {
          // Without a pipeline the schedule is moot: keep the first of such twins.
          wl::config::ParallelPlan key = c.plan;
          if (key.pp() == 1) key.clear_schedule(), key.clear_virtual_stages();
          if (seen.insert(core::to_json(key)).second) candidates.push_back(std::move(c));
        }
      }

  SearchResult res;
  res.model = model.name();
  res.gpu = platform.spec().name;
  res.gpus = platform.size();
  res.fidelity = to_string(session.exec.fidelity);
  res.fitting = static_cast<int64_t>(candidates.size());
  CostModel cost(platform.spec(), platform.calibration());
  SteadyStateOptions steady;
  steady.enabled = !req.exact;
  // Plans share collectives (same groups, type and size), and the shorter steps a plan is
  // extrapolated from share all of theirs: closed forms are computed once per worker.
  ExecutorOptions exec = session.exec;
  exec.evaluations = std::make_shared<EvaluationCache>();
  exec.link_bytes = false;  // plans are ranked by step time; no link report is made
  // One plan: its row, or why it could not be generated.
  auto evaluate = [&](size_t i) -> ordered_json {
    const auto& c = candidates[i];
    wl::config::Workload w = session.workload;
    *w.mutable_plan() = c.plan;
    StepEstimate est;
    double peak = 0;
    wl::StepTotals totals;
    try {
      totals = wl::step_totals(w, platform.size());
      est = estimate_step(w, platform.size(), [&](const wl::config::Workload& shorter) {
        const wl::Program program = wl::generate(shorter, platform.size(), session.gen);
        peak = cost.peak(program.precision);
        return session.execute_program(program, exec).step_time;
      }, steady);
    } catch (const core::InputError& e) {
      return {{"skipped", std::string(e.what())}};
    }
    SearchRow r;
    r.plan = c.plan;
    r.memory_bytes = c.memory.total.value();
    r.step_time_s = est.step_time_s;
    if (est.extrapolated()) r.simulated_micro_batches.assign(est.simulated.begin(), est.simulated.end());
    if (est.step_time_s > 0) {  // as throughput() does for a step that took no time
      r.mfu = totals.model_flops / (est.step_time_s * platform.size() * peak);
      r.tokens_per_second = totals.tokens / est.step_time_s;
    }
    return {{"row", row_json(r)}};
  };
  const int jobs = req.jobs > 0 ? req.jobs : core::available_cpus();
  const std::vector<ordered_json> outcomes = evaluate_all(candidates.size(), jobs, req.progress, evaluate);
  std::vector<SearchRow> rows;
  for (const auto& o : outcomes) {
    if (o.contains("skipped")) {
      res.skipped.push_back(o.at("skipped").get<std::string>());
      continue;
    }
    rows.push_back(row_from_json(o.at("row")));
    if (!rows.back().simulated_micro_batches.empty()) ++res.extrapolated;
  }
  res.evaluated = static_cast<int64_t>(rows.size());
  // Highest throughput first (the batch in tokens can differ between plans when the workload
  // fixes micro-batches per pipeline); enumeration order breaks ties, deterministically.
  std::stable_sort(rows.begin(), rows.end(),
                   [](const SearchRow& a, const SearchRow& b) { return a.tokens_per_second > b.tokens_per_second; });
  res.rows = std::move(rows);
  return res;
}

}  // namespace

SearchResult search_plans(const SearchRequest& request) {
  if (request.top < 1) throw core::InputError("--top", "must be at least 1, got " + std::to_string(request.top));
  if (request.verify < 0 || request.verify > request.top) {
    throw core::InputError("--verify", "must be between 0 and --top (" + std::to_string(request.top) + "), got " +
                                           std::to_string(request.verify));
  }
  if (request.jobs < 0) throw core::InputError("--jobs", "must be at least 1 (or 0: the CPUs this process may use), got " + std::to_string(request.jobs));
  if (request.max_tp < 1 || request.max_cp < 1) throw core::InputError("--max-tp/--max-cp", "must be at least 1");
  for (int64_t z : request.zero_stages) {
    if (z < 0 || z > 3) throw core::InputError("--zero", std::to_string(z) + " is not a ZeRO stage; valid: 0, 1, 2, 3");
  }
  for (int64_t mb : request.micro_batches)
    if (mb < 1) throw core::InputError("--micro-batch", "must be at least 1, got " + std::to_string(mb));
  for (int64_t v : request.virtual_stages)
    if (v < 1) throw core::InputError("--virtual-stages", "must be at least 1, got " + std::to_string(v));
  for (const auto& sched : request.schedules) {
    if (wl::find_schedule(sched) == nullptr) {
      std::string valid;
      for (const auto& info : wl::pipeline_schedules()) valid += std::string(valid.empty() ? "" : ", ") + info.name;
      throw core::InputError("--schedule", "unknown schedule '" + sched + "'; valid: " + valid);
    }
  }
  SearchRequest req = request;
  for (const auto& s : req.run.sets) {
    // Flow runs SimGrid, one engine per process: ranking many plans with it in one process is
    // not possible, and a child per plan would be a sweep (`tcsim sweep`), not a search.
    if (s.rfind("sim.fidelity=", 0) == 0 && s != "sim.fidelity=analytical") {
      throw core::InputError("--set sim.fidelity", "plan search ranks with the analytical fidelity; valid: analytical "
                                                   "(use --verify K to re-run the best K with flow)");
    }
  }
  if (!has_key(req.run.sets, "sim.fidelity")) req.run.sets.push_back("sim.fidelity=analytical");
  req.run.progress = false;  // the search shows its own

  const auto t0 = std::chrono::steady_clock::now();
  const ordered_json j = ordered_json::parse(run_in_child([&] {
    leave_engines_to_exit();  // the child exits once it has written the ranking
    // Plans are built and freed one after another: keep freed memory in the heap instead of
    // returning it to the kernel, so later plans reuse pages instead of faulting new ones in.
    mallopt(M_MMAP_THRESHOLD, 1 << 30);
    mallopt(M_TRIM_THRESHOLD, 1 << 30);
    wl::config::Workload base_workload;
    SearchResult r = rank_in_process(req, base_workload);
    ordered_json out = to_json(r);
    out["workload"] = core::to_json(base_workload);  // with the --set overrides, for --verify
    out["plans"] = ordered_json::array();
    for (const auto& row : r.rows) out["plans"].push_back(row_json(row));  // all of them, not just the top
    return out.dump();
  }));
  SearchResult res;
  res.wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  res.model = j.at("model").get<std::string>();
  res.gpu = j.at("gpu").get<std::string>();
  res.gpus = j.at("gpus").get<int>();
  res.fidelity = j.at("fidelity").get<std::string>();
  res.fitting = j.at("fitting").get<int64_t>();
  res.evaluated = j.at("evaluated").get<int64_t>();
  res.extrapolated = j.at("extrapolated").get<int64_t>();
  for (const auto& s : j.at("skipped")) res.skipped.push_back(s.get<std::string>());
  if (res.fitting == 0) {
    throw core::InputError("plan search", "no plan of " + res.model + " passes the plan checks and fits " + std::to_string(res.gpus) +
                                              " x " + res.gpu + "; valid: more GPUs or memory (gpu.hbm), --zero 1 2 3, "
                                              "--max-tp 8, plan.recompute_modules, or sim.memory_check=false");
  }
  for (const auto& p : j.at("plans")) {
    if (static_cast<int>(res.rows.size()) == request.top) break;
    res.rows.push_back(row_from_json(p));
  }

  // Flow verification: each candidate's workload (with its plan) in a file, simulated in its
  // own child with the non-workload overrides.
  wl::config::Workload base;
  if (!google::protobuf::util::JsonStringToMessage(j.at("workload").get<std::string>(), &base).ok()) {
    throw std::runtime_error("plan search: the workload did not read back");
  }
  // Written first, simulated --jobs at a time, removed whatever happens.
  std::vector<std::filesystem::path> paths;
  std::vector<RunRequest> runs;
  for (int i = 0; i < request.verify && i < static_cast<int>(res.rows.size()); ++i) {
    wl::config::Workload w = base;
    *w.mutable_plan() = res.rows[static_cast<size_t>(i)].plan;
    paths.push_back(std::filesystem::temp_directory_path() /
                    ("tcsim-search-" + std::to_string(getpid()) + "-" + std::to_string(i) + ".json"));
    std::ofstream(paths.back()) << core::to_json(w);
    RunRequest run = req.run;
    run.workload = paths.back().string();
    run.sets.clear();
    for (const auto& s : req.run.sets)
      if (!workload_key(s) && s.rfind("sim.fidelity=", 0) != 0) run.sets.push_back(s);
    run.sets.push_back("sim.fidelity=flow");
    run.progress = request.progress && runs.empty();  // one progress line: the first run's
    runs.push_back(std::move(run));
  }
  if (!runs.empty()) {
    const int jobs = request.jobs > 0 ? request.jobs : core::available_cpus();
    if (request.progress) std::fprintf(stderr, "[tcsim] plan search: verifying the best %zu plans with the flow fidelity, %d at a time\n", runs.size(), std::min<int>(jobs, static_cast<int>(runs.size())));
    std::vector<RunResult> flows;
    try {
      flows = simulate_in_children(runs, jobs);
    } catch (...) {
      for (const auto& p : paths) std::filesystem::remove(p);
      throw;
    }
    for (const auto& p : paths) std::filesystem::remove(p);
    for (size_t i = 0; i < flows.size(); ++i) res.rows[i].flow_step_time_s = flows[i].step_time_s;
  }
  return res;
}

ordered_json to_json(const SearchResult& r) {
  ordered_json j = {{"model", r.model},        {"gpu", r.gpu},           {"gpus", r.gpus},
                    {"fidelity", r.fidelity},  {"fitting", r.fitting},   {"evaluated", r.evaluated},
                    {"extrapolated", r.extrapolated}, {"skipped", r.skipped}};
  ordered_json rows = ordered_json::array();
  for (const auto& row : r.rows) rows.push_back(row_json(row));
  j["plans"] = rows;
  return j;
}

}  // namespace tcsim::sim
