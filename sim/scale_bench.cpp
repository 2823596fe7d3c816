#include "sim/scale_bench.hpp"

#include <sys/resource.h>

#include <chrono>
#include <cmath>
#include <map>
#include <cstdio>
#include <algorithm>
#include <functional>

#include <simgrid/s4u.hpp>

#include "core/error.hpp"
#include "core/overrides.hpp"
#include "sim/child_process.hpp"
#include "sim/collectives.hpp"
#include "sim/cost_model.hpp"
#include "sim/executor.hpp"
#include "sim/calibration.hpp"
#include "sim/platform.hpp"
#include "topology/cluster.hpp"
#include "workloads/generator.hpp"
#include "workloads/memory.hpp"
#include "workloads/model.hpp"
#include "workloads/synthetic.hpp"

namespace tcsim::sim {
namespace sg = simgrid::s4u;

namespace {

struct Scenario {
  std::string name, description;
  std::string gpu;
  int nodes = 0;
  std::string fabric;
  std::vector<std::string> sets;  // gpu.* / fabric.* / plan.* / model.*
  std::function<workloads::Program(int ranks, core::Overrides&)> program;
};

std::vector<Scenario> scenarios() {
  std::vector<Scenario> s;
  // A model preset with the scenario's plan, checked against the GPU's memory as `tcsim
  // run` checks it.
  // `source`: a workload preset (its plan is the start) or a model preset (empty plan).
  auto preset_step = [](const std::string& workload_preset, const std::string& source, const std::string& gpu,
                        bool memory_check = true) {
    return [workload_preset, source, gpu, memory_check](int ranks, core::Overrides& o) {
      workloads::config::Workload w = workloads::find_workload(source, "scenario " + workload_preset);
      w.set_name(workload_preset);
      workloads::apply_workload_overrides(w, o);
      if (memory_check) {
        workloads::check_memory(workloads::workload_model(w, workload_preset), w.plan(), ranks, topology::find_gpu(gpu).hbm,
                                "scenario " + workload_preset);
      }
      return workloads::generate(w, ranks);
    };
  };
  s.push_back({"S1", "DeepSeek-V3, 2,048 H800, multi-plane fat-tree, PP16 DualPipe, EP64, ZeRO-1, FP8, 15,360 x 4,096 tokens",
               "H800", 256, "multi-plane-fat-tree", {}, preset_step("S1", "deepseek-v3-pretrain", "H800")});
  s.push_back({"S2", "S1 on H100", "H100", 256, "multi-plane-fat-tree", {}, preset_step("S2", "deepseek-v3-pretrain", "H100")});
  // S1 weak-scaled, for the cost exponent: batch 7.5 sequences per GPU (15,360 at 2,048),
  // EP limited by the data-parallel width (EP groups are data-parallel ranks). Probes of the
  // simulator's cost only: below 1,024 GPUs the experts do not fit in 80 GB (not checked).
  for (int gpus : {256, 512, 1024}) {
    const std::vector<std::string> sets = {"plan.global_batch=" + std::to_string(gpus * 15 / 2),
                                           "plan.ep=" + std::to_string(std::min(64, gpus / 16))};
    s.push_back({"S1@" + std::to_string(gpus), "S1 weak-scaled to " + std::to_string(gpus) + " H800 (memory not checked)", "H800",
                 gpus / 8, "multi-plane-fat-tree", sets, preset_step("S1", "deepseek-v3-pretrain", "H800", false)});
  }
  // The same with EP held at 16 at every size: each rank's ops, and the transfers of each,
  // stay the same, so only the rank count grows (above, EP 16 -> 64 multiplies each rank's
  // all-to-all transfers by 4 between 256 and 1,024 GPUs).
  for (int gpus : {256, 512, 1024, 2048}) {
    const std::vector<std::string> sets = {"plan.global_batch=" + std::to_string(gpus * 15 / 2), "plan.ep=16"};
    s.push_back({"S1e16-" + std::to_string(gpus), "S1 weak-scaled to " + std::to_string(gpus) + " H800 with EP16 (memory not checked)",
                 "H800", gpus / 8, "multi-plane-fat-tree", sets, preset_step("S1", "deepseek-v3-pretrain", "H800", false)});
  }
  // Llama 3's data parallelism is FSDP that keeps the weights gathered between forward and
  // backward, i.e. shards gradients and optimizer states (arXiv 2407.21783 sec 3.3.2): ZeRO-2.
  s.push_back({"S3", "Llama 3 405B, 16,384 H100, three-tier Clos, TP8 PP16 DP128 (ZeRO-2), seq 8,192, 16M tokens/batch", "H100", 2048,
               "clos3", {"plan.tp=8", "plan.pp=16", "plan.seq_len=8192", "plan.global_batch=2048", "plan.sp=true",
                         "plan.uneven_stages=true", "plan.zero_stage=2"},
               preset_step("S3", "llama3-405b", "H100")});
  // S3 at the top of the range of the clusters in question (2,048 to 32,000 GPUs): twice
  // the data parallelism and the batch, the same tokens per GPU.
  s.push_back({"S3@32768", "S3 weak-scaled to 32,768 H100 (4,096 nodes of clos3): TP8 PP16 DP256, 32M tokens/batch", "H100", 4096,
               "clos3", {"plan.tp=8", "plan.pp=16", "plan.seq_len=8192", "plan.global_batch=4096", "plan.sp=true",
                         "plan.uneven_stages=true", "plan.zero_stage=2"},
               preset_step("S3", "llama3-405b", "H100")});
  // S4: ASTRA-sim's comparison trace, 400 GB/s NVLink (200 GB/s per direction), 50 GB/s per GPU.
  for (int ranks : {256, 1024}) {
    s.push_back({"S4-" + std::to_string(ranks),
                 "synthetic MoE: 58 layers x (1 ms, 32 MiB all-to-all, 1 ms, 32 MiB all-to-all) fwd+bwd, 1 GiB all-reduce",
                 "H800", ranks / 8, "single-switch", {"gpu.nvlink_bw=200GBps", "gpu.nic_bw=50GBps"},
                 [](int n, core::Overrides&) { return workloads::synthetic_moe(n, 58, 1e-3, 32.0 * 1048576, 1073741824.0); }});
  }
  for (const char* op : {"a2a", "ar"}) {
    for (int ranks : {8, 64, 256, 1024, 4096}) {
      bool a2a = std::string(op) == "a2a";
      s.push_back({"S5-" + std::string(op) + "-" + std::to_string(ranks),
                   std::string(a2a ? "all-to-all" : "all-reduce") + " of 64 MiB per rank", "H800", ranks / 8, "single-switch",
                   {"gpu.nic_bw=50GBps"},
                   [a2a](int n, core::Overrides&) {
                     return workloads::single_collective(n, a2a ? workloads::CollectiveType::AllToAll : workloads::CollectiveType::AllReduce,
                                                         64.0 * 1048576);
                   }});
    }
  }
  return s;
}

ScaleRow run_scenario(const Scenario& sc, Fidelity fidelity) {
  ScaleRow row;
  row.fidelity = to_string(fidelity);
  row.scenario = sc.name;
  row.description = sc.description;
  row.ranks = sc.nodes * 8;
  std::string text;
  try {
    text = run_in_child([&] {
      double step = 0;
      size_t events = 0, memo_hits = 0, transfers = 0, evaluated = 0, shifted = 0;
      std::string error;
      auto t0 = std::chrono::steady_clock::now();
      auto since = [](std::chrono::steady_clock::time_point t) {
        return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
      };
      double platform_s = 0, program_s = 0, execute_s = 0;
      struct rusage ru0 {};
      getrusage(RUSAGE_SELF, &ru0);
      try {
        core::Overrides o;
        for (const auto& kv : sc.sets) o.add(kv, "scenario " + sc.name);
        int argc = 2;
        char a0[] = "tcsim", a1[] = "--log=root.thres:critical";
        char* argv[] = {a0, a1, nullptr};
        ExecutorOptions opts;
        opts.fidelity = fidelity;
        opts.link_bytes = false;  // as plan search runs: no per-link report is read here
        // The analytical fidelity runs without a SimGrid engine (as a plan search does after
        // its first plan). Never deleted: this child only reports its numbers and leaves with
        // _exit, and destroying a flow platform's SimGrid objects (S3: 0.09 s) would count in
        // its wall.
        auto* engine = fidelity == Fidelity::Flow ? new sg::Engine(&argc, argv) : nullptr;
        if (engine != nullptr) configure_engine(*engine);
        auto spec = topology::find_gpu(sc.gpu);
        topology::apply_gpu_overrides(spec, o);
        auto cluster = topology::build_cluster(spec, sc.nodes, 8, sc.fabric, o);
        Platform platform = engine != nullptr ? Platform::build(*engine, std::move(cluster), o, simgrid_objects(opts))
                                              : Platform::build(std::move(cluster), o);
        platform_s = since(t0);
        auto t1 = std::chrono::steady_clock::now();
        auto program = sc.program(platform.size(), o);
        program_s = since(t1);
        t1 = std::chrono::steady_clock::now();
        CostModel cost(platform.spec(), platform.calibration());
        AlgorithmSelector selector;
        if (program.moe_top_k > 0) selector.set_default_moe({program.moe_top_k, program.moe_max_nodes});  // as tcsim run
        auto trace = execute(platform, program, cost, selector, opts);
        execute_s = since(t1);
        step = trace.step_time;
        events = trace.activities;
        memo_hits = trace.memo_hits;
        evaluated = trace.evaluated_forms;
        shifted = trace.shifted_forms;
        transfers = trace.transfers;
      } catch (const std::exception& e) {
        error = e.what();  // reported in the row, the other scenarios still run
      }
      double wall = since(t0);
      struct rusage ru {};
      getrusage(RUSAGE_SELF, &ru);
      auto secs = [](const timeval& a, const timeval& b) { return static_cast<double>(b.tv_sec - a.tv_sec) + 1e-6 * static_cast<double>(b.tv_usec - a.tv_usec); };
      return nlohmann::json{{"step", step}, {"events", events}, {"memo_hits", memo_hits}, {"evaluated", evaluated}, {"shifted", shifted}, {"transfers", transfers}, {"wall", wall}, {"rss_kib", ru.ru_maxrss}, {"error", error},
                             {"platform_s", platform_s}, {"program_s", program_s}, {"execute_s", execute_s},
                             {"user_s", secs(ru0.ru_utime, ru.ru_utime)}, {"sys_s", secs(ru0.ru_stime, ru.ru_stime)},
                             {"page_faults", ru.ru_minflt - ru0.ru_minflt}}.dump();
    });
  } catch (const std::exception& e) {
    row.status = std::string("crashed: ") + e.what();
    return row;
  }
  auto j = nlohmann::json::parse(text);
  row.step_time_s = j["step"].get<double>();
  row.events = j["events"].get<size_t>();
  row.memo_hits = j["memo_hits"].get<size_t>();
  row.closed_forms = j["evaluated"].get<size_t>();
  row.shifted_forms = j["shifted"].get<size_t>();
  row.transfers = j["transfers"].get<size_t>();
  row.wall_s = j["wall"].get<double>();
  row.rss_mib = j["rss_kib"].get<double>() / 1024.0;
  row.platform_s = j["platform_s"].get<double>();
  row.user_s = j["user_s"].get<double>();
  row.sys_s = j["sys_s"].get<double>();
  row.page_faults = j["page_faults"].get<long>();
  row.program_s = j["program_s"].get<double>();
  row.execute_s = j["execute_s"].get<double>();
  row.events_per_s = row.wall_s > 0 ? static_cast<double>(row.events) / row.wall_s : 0;
  if (!j["error"].get<std::string>().empty()) row.status = "not run: " + j["error"].get<std::string>();
  return row;
}

// A scenario's runs, each in a fresh process, folded into one row: the fastest run, every
// run's wall time, and the status "nondeterministic" when two runs simulate different
// steps. After a failed run the scenario is not run again.
struct Repeated {
  ScaleRow best;
  bool started = false;
  [[nodiscard]] bool wants_more() const { return !started || best.status == "ok"; }
  void add(ScaleRow again) {
    if (!started) {
      started = true;
      best = std::move(again);
      best.wall_runs = {best.wall_s};
      return;
    }
    auto runs = std::move(best.wall_runs);
    runs.push_back(again.wall_s);
    if (again.status != "ok") {
      best = std::move(again);
    } else if (again.step_time_s != best.step_time_s) {
      char why[128];
      std::snprintf(why, sizeof why, "nondeterministic: step %.17g s, then %.17g s", best.step_time_s, again.step_time_s);
      best.status = why;
    } else if (again.wall_s < best.wall_s) {
      best = std::move(again);
    }
    best.wall_runs = std::move(runs);
  }
};

// The scenario in each fidelity, `repeat` times. With both fidelities their runs alternate
// (flow, analytical, flow, ...), so that the machine's drift over the minutes the runs take
// (on the project's VM the same binary ran at half speed an hour later) weighs on both
// alike and their ratio compares runs of the same moments.
std::vector<ScaleRow> run_repeated(const Scenario& s, const std::vector<Fidelity>& fidelities, int repeat) {
  std::vector<Repeated> acc(fidelities.size());
  for (int k = 0; k < std::max(repeat, 1); ++k)
    for (size_t f = 0; f < fidelities.size(); ++f)
      if (acc[f].wants_more()) acc[f].add(run_scenario(s, fidelities[f]));
  std::vector<ScaleRow> rows;
  for (auto& a : acc) {
    if (repeat <= 1) a.best.wall_runs.clear();
    rows.push_back(std::move(a.best));
  }
  return rows;
}

// `--only S4` selects S4-256 and S4-1024; `--only S1` selects S1 alone, not S1@256.
bool selects(const std::string& only, const std::string& name) {
  return name == only || (name.rfind(only, 0) == 0 && (name[only.size()] == '-' || only.back() == '-'));
}

}  // namespace

std::vector<std::string> scale_scenarios() {
  std::vector<std::string> names;
  for (const auto& s : scenarios()) names.push_back(s.name);
  return names;
}

std::vector<ScaleRow> run_scale_bench(const std::vector<std::string>& only, const std::string& fidelity_name, int repeat) {
  // "both": each scenario in flow, then analytical (issue 6: the analytical fidelity's
  // agreement with flow and its speed-up, from one command).
  std::vector<Fidelity> fidelities;
  if (fidelity_name == "both") {
    fidelities = {Fidelity::Flow, Fidelity::Analytical};
  } else {
    try {
      fidelities = {parse_fidelity(fidelity_name, "--fidelity")};
    } catch (const core::InputError&) {
      throw core::InputError("--fidelity", "unknown fidelity '" + fidelity_name +
                                               "'; valid: flow (SimGrid flows, the default), analytical (closed forms), both");
    }
  }
  if (repeat < 1 || repeat > 100) throw core::InputError("--repeat", std::to_string(repeat) + " runs; valid: 1 to 100");
  std::vector<ScaleRow> rows;
  auto all = scenarios();
  for (const auto& o : only) {
    bool any = false;
    for (const auto& s : all) any = any || selects(o, s.name);
    if (!any) {
      std::string names;
      for (const auto& s : all) names += (names.empty() ? "" : ", ") + s.name;
      throw core::InputError("--only " + o, "no such scenario; scenarios: " + names);
    }
  }
  for (const auto& s : all) {
    bool selected = only.empty();
    for (const auto& o : only) selected = selected || selects(o, s.name);
    if (!selected) continue;
    // What a process does once, before its first run (as its start-up, not timed): parse
    // the GPU catalogue and the calibration tables (with protobuf's descriptors, 4 ms).
    // Each scenario's child inherits them; a sweep point or a searched plan pays them once.
    calibration_for(topology::find_gpu(s.gpu).family);
    for (ScaleRow& r : run_repeated(s, fidelities, repeat)) {
      rows.push_back(std::move(r));
      const auto& row = rows.back();
      std::fprintf(stderr, "%s%s: %s (step %.6g s, wall %.2f s, RSS %.0f MiB, %zu events)\n", s.name.c_str(),
                   fidelities.size() > 1 ? (" " + row.fidelity).c_str() : "", row.status.c_str(), row.step_time_s, row.wall_s,
                   row.rss_mib, row.events);
    }
  }
  return rows;
}

nlohmann::ordered_json to_json(const std::vector<ScaleRow>& rows) {
  nlohmann::ordered_json j = nlohmann::ordered_json::array();
  for (const auto& r : rows) {
    j.push_back({{"scenario", r.scenario}, {"ranks", r.ranks}, {"step_time_s", r.step_time_s}, {"wall_s", r.wall_s},
                 {"rss_mib", r.rss_mib}, {"events_per_s", r.events_per_s}, {"events", r.events}, {"memo_hits", r.memo_hits},
                 {"closed_forms", r.closed_forms}, {"shifted_forms", r.shifted_forms},
                 {"transfers", r.transfers},
                 {"platform_s", r.platform_s}, {"program_s", r.program_s}, {"execute_s", r.execute_s},
                 {"user_s", r.user_s}, {"sys_s", r.sys_s}, {"page_faults", r.page_faults},
                 {"fidelity", r.fidelity}, {"status", r.status},
                 {"description", r.description}});
    if (!r.wall_runs.empty()) j.back()["wall_runs_s"] = r.wall_runs;
  }
  return j;
}

namespace {

// Least-squares slope of log(y) against log(x).
double loglog_slope(const std::vector<double>& x, const std::vector<double>& y) {
  const auto n = static_cast<double>(x.size());
  double mx = 0, my = 0;
  for (size_t i = 0; i < x.size(); ++i) mx += std::log(x[i]) / n, my += std::log(y[i]) / n;
  double sxy = 0, sxx = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    const double dx = std::log(x[i]) - mx;
    sxy += dx * (std::log(y[i]) - my);
    sxx += dx * dx;
  }
  return sxx > 0 ? sxy / sxx : 0;
}

std::string family_of(const std::string& scenario) {
  if (scenario == "S1" || scenario.rfind("S1@", 0) == 0) return "S1 weak scaling";
  if (scenario == "S3" || scenario.rfind("S3@", 0) == 0) return "S3 weak scaling";
  if (scenario.rfind("S1e16-", 0) == 0) return "S1 EP16 weak";
  for (const char* f : {"S5-a2a", "S5-ar", "S4"})
    if (scenario.rfind(std::string(f) + "-", 0) == 0) return f;
  return "";
}

}  // namespace

std::vector<FidelityComparison> fidelity_comparison(const std::vector<ScaleRow>& rows) {
  std::vector<FidelityComparison> out;
  for (const auto& f : rows) {
    if (f.fidelity != "flow" || f.status != "ok" || f.step_time_s <= 0) continue;
    for (const auto& a : rows) {
      if (a.scenario != f.scenario || a.fidelity != "analytical" || a.status != "ok" || a.wall_s <= 0) continue;
      FidelityComparison c{f.scenario, a.step_time_s / f.step_time_s - 1, f.wall_s, a.wall_s, f.wall_s / a.wall_s};
      if (f.wall_runs.size() > 1 && f.wall_runs.size() == a.wall_runs.size()) {
        for (size_t k = 0; k < f.wall_runs.size(); ++k) {
          if (a.wall_runs[k] <= 0) continue;
          const double r = f.wall_runs[k] / a.wall_runs[k];
          c.paired_min = c.paired_min == 0 ? r : std::min(c.paired_min, r);
          c.paired_max = std::max(c.paired_max, r);
        }
      }
      out.push_back(c);
    }
  }
  return out;
}

std::vector<CostGrowth> cost_growth(const std::vector<ScaleRow>& rows) {
  std::vector<std::string> order;
  std::map<std::string, std::vector<const ScaleRow*>> by_family;
  for (const auto& r : rows) {
    std::string f = family_of(r.scenario);
    if (f.empty() || r.status != "ok" || r.ranks < 256 || r.wall_s <= 0 || r.transfers == 0) continue;
    if (r.fidelity != "flow") f += " (" + r.fidelity + ")";  // fitted apart from flow's
    if (by_family[f].empty()) order.push_back(f);
    by_family[f].push_back(&r);
  }
  std::vector<CostGrowth> out;
  for (const auto& f : order) {
    const auto& rs = by_family[f];
    if (rs.size() < 2) continue;
    std::vector<double> ranks, transfers, wall;
    CostGrowth g;
    g.family = f;
    g.points = rs.size();
    g.min_ranks = rs.front()->ranks, g.max_ranks = rs.front()->ranks;
    for (const ScaleRow* r : rs) {
      ranks.push_back(r->ranks);
      transfers.push_back(static_cast<double>(r->transfers));
      wall.push_back(r->wall_s);
      g.min_ranks = std::min(g.min_ranks, r->ranks), g.max_ranks = std::max(g.max_ranks, r->ranks);
    }
    if (g.min_ranks == g.max_ranks) continue;
    g.ranks_exponent = loglog_slope(ranks, wall);
    g.transfers_exponent = loglog_slope(transfers, wall);
    out.push_back(g);
  }
  return out;
}

std::string format_scale_table(const std::vector<ScaleRow>& rows) {
  std::string s;
  char buf[512];
  bool mixed = false;  // both fidelities: a column says which
  for (const auto& r : rows) mixed = mixed || r.fidelity != rows.front().fidelity;
  std::snprintf(buf, sizeof buf, "%-13s%s %6s %14s %9s %13s %9s %12s %24s  %s\n", "scenario", mixed ? " fidelity  " : "", "ranks",
                "step time (s)", "wall (s)", "user/sys (s)", "RSS (MiB)", "events/s", "platform/program/exec (s)", "status");
  s += buf;
  for (const auto& r : rows) {
    const std::string status = r.status.substr(0, r.status.find('\n'));  // the full text is in --json
    char stages[64];
    std::snprintf(stages, sizeof stages, "%.3f/%.3f/%.3f", r.platform_s, r.program_s, r.execute_s);
    char cpu[64];
    std::snprintf(cpu, sizeof cpu, "%.3f/%.3f", r.user_s, r.sys_s);
    char fid[32] = "";
    if (mixed) std::snprintf(fid, sizeof fid, " %-10s", r.fidelity.c_str());
    std::snprintf(buf, sizeof buf, "%-13s%s %6d %14.6g %9.3f %13s %9.0f %12.0f %24s  %s\n", r.scenario.c_str(), fid, r.ranks,
                  r.step_time_s, r.wall_s, cpu, r.rss_mib, r.events_per_s, stages, status.c_str());
    s += buf;
  }
  const auto pairs = fidelity_comparison(rows);
  if (!pairs.empty()) s += "analytical against flow (issue 6: within 5%, at least 100x faster):\n";
  for (const auto& c : pairs) {
    std::snprintf(buf, sizeof buf, "  %-13s step %+.2f%%, wall %.3f s / %.4f s = %.0fx", c.scenario.c_str(), 100 * c.step_difference,
                  c.flow_wall_s, c.analytical_wall_s, c.speedup);
    s += buf;
    // How much the ratio moves between runs made side by side: the machine's load, not the code.
    if (c.paired_max > 0) {
      std::snprintf(buf, sizeof buf, " (paired runs %.0fx-%.0fx)", c.paired_min, c.paired_max);
      s += buf;
    }
    s += "\n";
  }
  size_t runs = 0;
  for (const auto& r : rows) runs = std::max(runs, r.wall_runs.size());
  if (runs > 1) s += "wall, RSS, events/s and stages: the fastest of " + std::to_string(runs) + " runs of each scenario, each in a fresh process\n";
  const auto growth = cost_growth(rows);
  if (!growth.empty()) s += "cost growth (least-squares exponent of wall time, rows with 256 ranks or more):\n";
  for (const auto& g : growth) {
    std::snprintf(buf, sizeof buf, "  %-16s %zu sizes, %d-%d ranks: wall ~ ranks^%.2f, ~ transfers^%.2f\n", g.family.c_str(), g.points,
                  g.min_ranks, g.max_ranks, g.ranks_exponent, g.transfers_exponent);
    s += buf;
  }
  return s;
}

}  // namespace tcsim::sim
