#include "sim/timeline.hpp"

#include <fstream>
#include <map>
#include <set>
#include <tuple>

#include "core/error.hpp"

namespace tcsim::sim {
using workloads::OpKind;

namespace {

const char* kind_name(OpKind k) {
  switch (k) {
    case OpKind::Compute: return "compute";
    case OpKind::Collective: return "collective";
    case OpKind::Send: return "send";
    case OpKind::Recv: return "recv";
    case OpKind::Memory: return "memory";
  }
  return "?";
}

std::vector<size_t> sample_lanes(size_t n, size_t cap) {
  std::vector<size_t> out;
  if (n <= cap || cap < 2) {
    for (size_t i = 0; i < std::min(n, std::max<size_t>(cap, 1)); ++i) out.push_back(i);
    return out;
  }
  std::set<size_t> s;
  for (size_t k = 0; k < cap; ++k) s.insert(k * (n - 1) / (cap - 1));
  return {s.begin(), s.end()};
}

}  // namespace

nlohmann::json build_timeline(const workloads::Program& program, const ExecutionTrace& trace, const TimelineOptions& options) {
  nlohmann::json events = nlohmann::json::array();
  const auto lanes = sample_lanes(program.lanes.size(), options.max_tracks);
  std::set<size_t> kept(lanes.begin(), lanes.end());
  for (size_t l : lanes) {
    const auto& lane = program.lanes[l];
    std::string pname = "rank " + std::to_string(lane.ranks.front());
    if (lane.ranks.size() > 1) pname += " (+" + std::to_string(lane.ranks.size() - 1) + " identical ranks)";
    events.push_back({{"ph", "M"}, {"name", "process_name"}, {"pid", l}, {"tid", 0}, {"args", {{"name", pname}}}});
    events.push_back({{"ph", "M"}, {"name", "process_sort_index"}, {"pid", l}, {"tid", 0}, {"args", {{"sort_index", l}}}});
    std::set<int> streams;
    for (const auto& op : lane.ops) streams.insert(static_cast<int>(op.stream));
    for (int s : streams) {
      events.push_back({{"ph", "M"}, {"name", "thread_name"}, {"pid", l}, {"tid", s},
                        {"args", {{"name", std::string(workloads::to_string(static_cast<workloads::Stream>(s))) + " stream"}}}});
    }
    for (size_t i = 0; i < lane.ops.size(); ++i) {
      const auto& rec = trace.ops[l][i];
      if (rec.start < 0 || rec.end < rec.start) continue;
      const auto& op = lane.ops[i];
      std::string cat = kind_name(op.kind);
      if (op.kind == OpKind::Collective || op.kind == OpKind::Send || op.kind == OpKind::Recv)
        cat += std::string(",") + workloads::to_string(op.category);
      nlohmann::json args = {{"op", i}};
      if (op.kind == OpKind::Collective) {
        args["type"] = workloads::to_string(op.coll.type);
        args["bytes"] = op.coll.bytes;
        args["waited_us"] = (rec.start - rec.ready) * 1e6;
      } else if (op.kind == OpKind::Send || op.kind == OpKind::Recv) {
        args["bytes"] = op.p2p.bytes;
        args["peer_rank"] = program.lanes[op.p2p.peer_lane].ranks.front();
      } else {
        args["flops"] = op.compute.flops;
      }
      events.push_back({{"ph", "X"}, {"name", op.label < program.labels.size() ? program.labels[op.label] : "op"},
                        {"cat", cat}, {"pid", l}, {"tid", static_cast<int>(op.stream)}, {"ts", rec.start * 1e6},
                        {"dur", (rec.end - rec.start) * 1e6}, {"args", args}});
    }
  }
  // Flow arrows: the k-th send from lane a to lane b with tag t meets the k-th receive.
  std::map<std::tuple<size_t, size_t, uint32_t>, std::vector<uint32_t>> sends, recvs;
  for (size_t l = 0; l < program.lanes.size(); ++l)
    for (uint32_t i = 0; i < program.lanes[l].ops.size(); ++i) {
      const auto& op = program.lanes[l].ops[i];
      if (op.kind == OpKind::Send) sends[{l, op.p2p.peer_lane, op.p2p.tag}].push_back(i);
      else if (op.kind == OpKind::Recv) recvs[{op.p2p.peer_lane, l, op.p2p.tag}].push_back(i);
    }
  uint64_t id = 0;
  for (const auto& [key, s_ops] : sends) {
    auto [a, b, tag] = key;
    auto it = recvs.find(key);
    if (it == recvs.end() || !kept.count(a) || !kept.count(b)) continue;
    for (size_t k = 0; k < std::min(s_ops.size(), it->second.size()); ++k) {
      const auto& so = program.lanes[a].ops[s_ops[k]];
      const auto& sr = trace.ops[a][s_ops[k]];
      const auto& rr = trace.ops[b][it->second[k]];
      if (sr.start < 0 || rr.end < 0) continue;
      ++id;
      events.push_back({{"ph", "s"}, {"id", id}, {"name", "p2p"}, {"cat", "flow"}, {"pid", a},
                        {"tid", static_cast<int>(so.stream)}, {"ts", sr.start * 1e6}});
      events.push_back({{"ph", "f"}, {"bp", "e"}, {"id", id}, {"name", "p2p"}, {"cat", "flow"}, {"pid", b},
                        {"tid", static_cast<int>(program.lanes[b].ops[it->second[k]].stream)}, {"ts", rr.end * 1e6}});
    }
  }
  nlohmann::json out;
  out["traceEvents"] = events;
  out["displayTimeUnit"] = "ms";
  out["otherData"] = {{"generator", "tcsim"}, {"step_time_s", trace.step_time}, {"lanes", program.lanes.size()},
                      {"lanes_shown", lanes.size()}};
  return out;
}

void check_trace_path(const std::string& path) {
  if (path.empty()) return;
  std::ofstream probe(path, std::ios::app);
  if (!probe) throw core::InputError("--trace " + path, "cannot write this file (does the directory exist and is it writable?)");
}

void write_timeline(const std::string& path, const workloads::Program& program, const ExecutionTrace& trace,
                    const TimelineOptions& options) {
  std::ofstream out(path, std::ios::trunc);
  if (!out) throw core::InputError("--trace " + path, "cannot write this file (does the directory exist and is it writable?)");
  out << build_timeline(program, trace, options).dump() << "\n";
  if (!out) throw core::InputError("--trace " + path, "writing the trace failed (disk full?)");
}

}  // namespace tcsim::sim
