#include "sim/report.hpp"

#include <algorithm>
#include <array>
#include <bit>
#include <cstdint>
#include <cstdio>
#include <set>
#include <vector>

namespace tcsim::sim {
using workloads::OpKind;
using workloads::Stream;

namespace {

// A boundary of a lane's timeline: compute (cat -1) or a communication category starting
// (+1) or ending (-1).
struct Boundary {
  double t;
  int cat;
  int delta;
};

// The lane's boundaries in time order. A stream runs its ops one after another in program
// order, so each stream's boundaries come already sorted and are merged rather than sorted
// (S1: 16 lanes of ~18,000 boundaries). A stream out of order (not made by the executor)
// is sorted instead. Boundaries at the same time may come in any order: the accounting
// below adds nothing between them.
void lane_boundaries(const workloads::Lane& lane, const std::vector<OpRecord>& records,
                     std::array<std::vector<Boundary>, workloads::kStreamCount>& by_stream, std::vector<Boundary>& out) {
  for (auto& v : by_stream) v.clear();
  out.clear();
  bool sorted = true;
  for (size_t i = 0; i < lane.ops.size(); ++i) {
    const auto& rec = records[i];
    if (rec.start < 0 || rec.end <= rec.start) continue;
    const auto& op = lane.ops[i];
    int cat = -2;
    if (op.kind == OpKind::Compute && op.stream == Stream::Compute) cat = -1;
    else if (op.kind == OpKind::Collective || op.kind == OpKind::Send || op.kind == OpKind::Recv) cat = static_cast<int>(op.category);
    if (cat == -2) continue;
    auto& v = by_stream[static_cast<size_t>(op.stream)];
    sorted = sorted && (v.empty() || v.back().t <= rec.start);
    v.push_back({rec.start, cat, +1});
    v.push_back({rec.end, cat, -1});
  }
  if (!sorted) {
    for (const auto& v : by_stream) out.insert(out.end(), v.begin(), v.end());
    std::sort(out.begin(), out.end(), [](const Boundary& a, const Boundary& b) { return a.t < b.t; });
    return;
  }
  // Merged by repeatedly taking the earliest head among the streams that have boundaries.
  struct Head {
    const Boundary* at;
    const Boundary* end;
  };
  std::array<Head, workloads::kStreamCount> heads{};
  size_t n = 0;
  for (const auto& v : by_stream)
    if (!v.empty()) heads[n++] = {v.data(), v.data() + v.size()};
  while (n > 0) {
    size_t pick = 0;
    for (size_t s = 1; s < n; ++s)
      if (heads[s].at->t < heads[pick].at->t) pick = s;
    out.push_back(*heads[pick].at++);
    if (heads[pick].at == heads[pick].end) heads[pick] = heads[--n];
  }
}

}  // namespace

Breakdown compute_breakdown(const workloads::Program& program, const ExecutionTrace& trace) {
  constexpr int kCats = workloads::kCommCategoryCount;
  Breakdown total;
  double weight_sum = 0;
  std::array<std::vector<Boundary>, workloads::kStreamCount> by_stream;
  std::vector<Boundary> ev;
  for (size_t l = 0; l < program.lanes.size(); ++l) {
    lane_boundaries(program.lanes[l], trace.ops[l], by_stream, ev);
    Breakdown b;
    // Per category in arrays, the categories in flight as a bitmask: a pass over all the
    // categories and a map lookup by name per boundary were most of the breakdown (S1's
    // `tcsim run`: 101 M instructions, now 35 M). The maps get the categories ever in flight.
    std::array<double, kCats> comm{}, exposed{};
    std::array<bool, kCats> in_comm{}, in_exposed{};
    int compute_active = 0;
    std::array<int, kCats> active{};
    uint32_t in_flight = 0;  // bit c: category c has something in flight
    double t = 0;
    auto account = [&](double until) {
      double dt = until - t;
      if (dt <= 0) return;
      const int kinds = std::popcount(in_flight);
      for (uint32_t m = in_flight; m != 0; m &= m - 1) {
        const auto c = static_cast<size_t>(std::countr_zero(m));
        comm[c] += dt;
        in_comm[c] = true;
      }
      if (compute_active > 0) {
        b.compute_s += dt;
        if (kinds > 0) b.overlapped_comm_s += dt;
      } else if (kinds > 0) {
        for (uint32_t m = in_flight; m != 0; m &= m - 1) {
          const auto c = static_cast<size_t>(std::countr_zero(m));
          exposed[c] += dt / kinds;
          in_exposed[c] = true;
        }
      } else {
        b.bubble_s += dt;
      }
    };
    for (const auto& e : ev) {
      account(e.t);
      t = std::max(t, e.t);
      if (e.cat == -1) {
        compute_active += e.delta;
      } else {
        const auto c = static_cast<size_t>(e.cat);
        active[c] += e.delta;
        in_flight = active[c] > 0 ? in_flight | (1u << c) : in_flight & ~(1u << c);
      }
    }
    account(trace.step_time);
    for (size_t c = 0; c < kCats; ++c) {
      const std::string name = workloads::to_string(static_cast<workloads::CommCategory>(c));
      if (in_comm[c]) b.comm_s[name] = comm[c];
      if (in_exposed[c]) b.exposed_comm_s[name] = exposed[c];
    }
    const double w = static_cast<double>(program.lanes[l].ranks.size());
    weight_sum += w;
    total.compute_s += w * b.compute_s;
    total.bubble_s += w * b.bubble_s;
    total.overlapped_comm_s += w * b.overlapped_comm_s;
    for (const auto& [k, v] : b.exposed_comm_s) total.exposed_comm_s[k] += w * v;
    for (const auto& [k, v] : b.comm_s) total.comm_s[k] += w * v;
  }
  if (weight_sum > 0) {
    total.compute_s /= weight_sum;
    total.bubble_s /= weight_sum;
    total.overlapped_comm_s /= weight_sum;
    for (auto& [k, v] : total.exposed_comm_s) v /= weight_sum;
    for (auto& [k, v] : total.comm_s) v /= weight_sum;
  }
  return total;
}

nlohmann::ordered_json to_json(const RunResult& r) {
  nlohmann::ordered_json j;
  j["gpu"] = r.gpu;
  j["platform"] = r.platform;
  j["workload"] = r.workload;
  j["gpus"] = r.gpus;
  j["nodes"] = r.nodes;
  j["step_time_s"] = r.step_time_s;
  j["tokens_per_step"] = r.tokens_per_step;
  j["tokens_per_second"] = r.tokens_per_second;
  j["mfu"] = r.mfu;
  j["peak_flops_per_gpu"] = r.peak_flops;
  nlohmann::ordered_json b;
  b["compute_s"] = r.breakdown.compute_s;
  nlohmann::ordered_json exposed = nlohmann::ordered_json::object();
  double exposed_total = 0;
  for (const auto& [k, v] : r.breakdown.exposed_comm_s) {
    exposed[k] = v;
    exposed_total += v;
  }
  b["exposed_comm_s"] = exposed;
  b["exposed_comm_total_s"] = exposed_total;
  b["overlapped_comm_s"] = r.breakdown.overlapped_comm_s;
  b["bubble_s"] = r.breakdown.bubble_s;
  nlohmann::ordered_json comm = nlohmann::ordered_json::object();
  for (const auto& [k, v] : r.breakdown.comm_s) comm[k] = v;
  b["comm_in_flight_s"] = comm;
  j["breakdown"] = b;
  j["training"] = to_json(r.training);
  nlohmann::ordered_json util = nlohmann::ordered_json::object();
  for (const auto& [k, v] : r.link_utilisation) util[k] = v;
  j["link_utilisation"] = util;
  j["algorithms"] = r.algorithms;
  j["inputs"] = r.inputs;
  j["simulation"] = {{"ops", r.ops}, {"parallel_tasks", r.ptasks}, {"link_form_tasks", r.link_form_tasks}, {"alarms", r.alarms},
                     {"activities", r.activities},
                     {"transfers", r.transfers}};
  return j;
}

namespace {
std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}
}  // namespace

std::string format_table(const RunResult& r) {
  std::string s;
  s += "GPU " + r.gpu + " x " + std::to_string(r.gpus) + " (" + std::to_string(r.nodes) + " nodes), workload " + r.workload + "\n";
  s += "  step time          " + fmt("%10.3f ms", r.step_time_s * 1e3) + "\n";
  s += "  tokens/s           " + fmt("%10.0f", r.tokens_per_second) + "\n";
  s += "  MFU                " + fmt("%10.1f %%", r.mfu * 100) + "\n";
  s += "  compute            " + fmt("%10.3f ms", r.breakdown.compute_s * 1e3) + "\n";
  for (const auto& [k, v] : r.breakdown.exposed_comm_s) {
    char line[160];
    std::snprintf(line, sizeof line, "  exposed %-17s %10.3f ms\n", k.c_str(), v * 1e3);
    s += line;
  }
  s += "  overlapped comm    " + fmt("%10.3f ms", r.breakdown.overlapped_comm_s * 1e3) + "\n";
  s += "  idle (bubble)      " + fmt("%10.3f ms", r.breakdown.bubble_s * 1e3) + "\n";
  for (const auto& [k, v] : r.link_utilisation) {
    char line[160];
    std::snprintf(line, sizeof line, "  link util %-15s %10.1f %%\n", k.c_str(), v * 100);
    s += line;
  }
  s += "  cluster power      " + fmt("%10.3f MW", r.training.avg_cluster_power_mw) + "\n";
  s += "  GPU-h / 1T tokens  " + fmt("%10.0f", r.training.gpu_hours_per_trillion_tokens) + "\n";
  if (r.training.tokens) {
    s += "  tokens             " + fmt("%10.3g", *r.training.tokens) + "\n";
    s += "  time to train      " + fmt("%10.2f days", r.training.time_to_train_days) + "\n";
    s += "  GPU hours          " + fmt("%10.0f", r.training.gpu_hours) + "\n";
    s += "  cost               " + fmt("%10.0f USD", r.training.cost_usd) + "\n";
    s += "  energy             " + fmt("%10.1f MWh", r.training.energy_mwh) + "\n";
  }
  return s;
}

std::string format_comparison(const RunResult& a, const RunResult& b) {
  std::string s;
  auto row = [&](const std::string& name, double va, double vb, const char* unit, double scale) {
    char buf[200];
    double ratio = va != 0 ? vb / va : 0;
    std::snprintf(buf, sizeof buf, "  %-24s %12.3f %12.3f   %6.3fx  %s\n", name.c_str(), va * scale, vb * scale, ratio, unit);
    s += buf;
  };
  char head[200];
  std::snprintf(head, sizeof head, "  %-24s %12s %12s   %7s\n", "", a.gpu.c_str(), b.gpu.c_str(), "ratio");
  s += head;
  row("step time", a.step_time_s, b.step_time_s, "ms", 1e3);
  row("tokens/s", a.tokens_per_second, b.tokens_per_second, "", 1);
  row("MFU", a.mfu, b.mfu, "%", 100);
  row("compute", a.breakdown.compute_s, b.breakdown.compute_s, "ms", 1e3);
  std::set<std::string> kinds;
  for (const auto& [k, v] : a.breakdown.exposed_comm_s) kinds.insert(k);
  for (const auto& [k, v] : b.breakdown.exposed_comm_s) kinds.insert(k);
  for (const auto& k : kinds) {
    auto get = [&](const RunResult& r) {
      auto it = r.breakdown.exposed_comm_s.find(k);
      return it == r.breakdown.exposed_comm_s.end() ? 0.0 : it->second;
    };
    row("exposed " + k, get(a), get(b), "ms", 1e3);
  }
  row("idle (bubble)", a.breakdown.bubble_s, b.breakdown.bubble_s, "ms", 1e3);
  row("overlapped comm", a.breakdown.overlapped_comm_s, b.breakdown.overlapped_comm_s, "ms", 1e3);
  std::set<std::string> tiers;
  for (const auto& [k, v] : a.link_utilisation) tiers.insert(k);
  for (const auto& [k, v] : b.link_utilisation) tiers.insert(k);
  for (const auto& k : tiers) {
    auto get = [&](const RunResult& r) {
      auto it = r.link_utilisation.find(k);
      return it == r.link_utilisation.end() ? 0.0 : it->second;
    };
    row("link util " + k, get(a), get(b), "%", 100);
  }
  row("cluster power", a.training.avg_cluster_power_mw, b.training.avg_cluster_power_mw, "MW", 1);
  row("GPU-h per 1T tokens", a.training.gpu_hours_per_trillion_tokens, b.training.gpu_hours_per_trillion_tokens, "", 1);
  if (a.training.tokens && b.training.tokens) {
    row("time to train", a.training.time_to_train_days, b.training.time_to_train_days, "days", 1);
    row("cost", a.training.cost_usd, b.training.cost_usd, "USD", 1);
    row("energy", a.training.energy_mwh, b.training.energy_mwh, "MWh", 1);
  }
  char tail[200];
  std::snprintf(tail, sizeof tail, "  slowdown (%s / %s step time): %.3fx\n", b.gpu.c_str(), a.gpu.c_str(),
                a.step_time_s > 0 ? b.step_time_s / a.step_time_s : 0.0);
  s += tail;
  return s;
}

}  // namespace tcsim::sim

namespace tcsim::sim {
RunResult from_json(const nlohmann::ordered_json& j) {
  RunResult r;
  r.gpu = j.at("gpu").get<std::string>();
  r.platform = j.at("platform").get<std::string>();
  r.workload = j.at("workload").get<std::string>();
  r.gpus = j.at("gpus").get<int>();
  r.nodes = j.at("nodes").get<int>();
  r.step_time_s = j.at("step_time_s").get<double>();
  r.tokens_per_step = j.at("tokens_per_step").get<double>();
  r.tokens_per_second = j.at("tokens_per_second").get<double>();
  r.mfu = j.at("mfu").get<double>();
  r.peak_flops = j.at("peak_flops_per_gpu").get<double>();
  const auto& b = j.at("breakdown");
  r.breakdown.compute_s = b.at("compute_s").get<double>();
  r.breakdown.bubble_s = b.at("bubble_s").get<double>();
  r.breakdown.overlapped_comm_s = b.at("overlapped_comm_s").get<double>();
  for (const auto& [k, v] : b.at("exposed_comm_s").items()) r.breakdown.exposed_comm_s[k] = v.get<double>();
  for (const auto& [k, v] : b.at("comm_in_flight_s").items()) r.breakdown.comm_s[k] = v.get<double>();
  r.algorithms = j.at("algorithms").get<std::vector<std::string>>();
  if (j.contains("training")) r.training = training_from_json(j.at("training"));
  if (j.contains("link_utilisation"))
    for (const auto& [k, v] : j.at("link_utilisation").items()) r.link_utilisation[k] = v.get<double>();
  r.inputs = j.at("inputs");
  r.ops = j.at("simulation").at("ops").get<size_t>();
  r.ptasks = j.at("simulation").at("parallel_tasks").get<size_t>();
  r.link_form_tasks = j.at("simulation").value("link_form_tasks", size_t{0});
  r.alarms = j.at("simulation").value("alarms", size_t{0});
  r.activities = j.at("simulation").at("activities").get<size_t>();
  r.transfers = j.at("simulation").value("transfers", size_t{0});
  return r;
}
}  // namespace tcsim::sim
