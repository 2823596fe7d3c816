#include "workloads/program.hpp"

#include <algorithm>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "core/error.hpp"

namespace tcsim::workloads {

const char* to_string(CommCategory c) {
  switch (c) {
    case CommCategory::TpAllReduce: return "tp_all_reduce";
    case CommCategory::TpAllGather: return "tp_all_gather";
    case CommCategory::TpReduceScatter: return "tp_reduce_scatter";
    case CommCategory::EpAllToAll: return "ep_all_to_all";
    case CommCategory::PpP2P: return "pp_p2p";
    case CommCategory::DpAllReduce: return "dp_all_reduce";
    case CommCategory::DpReduceScatter: return "dp_reduce_scatter";
    case CommCategory::DpAllGather: return "dp_all_gather";
    case CommCategory::CpExchange: return "cp_exchange";
    case CommCategory::Other: return "other";
    case CommCategory::EmbAllReduce: return "embedding_all_reduce";
  }
  return "other";
}

const char* to_string(CollectiveType t) {
  switch (t) {
    case CollectiveType::AllReduce: return "all_reduce";
    case CollectiveType::AllGather: return "all_gather";
    case CollectiveType::ReduceScatter: return "reduce_scatter";
    case CollectiveType::AllToAll: return "all_to_all";
    case CollectiveType::Broadcast: return "broadcast";
    case CollectiveType::Reduce: return "reduce";
  }
  return "?";
}

const char* to_string(Stream s) {
  switch (s) {
    case Stream::Compute: return "compute";
    case Stream::TpComm: return "tp_comm";
    case Stream::EpComm: return "ep_comm";
    case Stream::PpComm: return "pp_comm";
    case Stream::DpComm: return "dp_comm";
    case Stream::CpComm: return "cp_comm";
    case Stream::Memory: return "memory";
    case Stream::Cpu: return "cpu";
  }
  return "?";
}

const char* to_string(Precision p) {
  switch (p) {
    case Precision::BF16: return "bf16";
    case Precision::FP8: return "fp8";
    case Precision::FP32: return "fp32";
    case Precision::FP16: return "fp16";
  }
  return "?";
}

const char* to_string(ComputeClass c) {
  switch (c) {
    case ComputeClass::Gemm: return "gemm";
    case ComputeClass::ExpertGemm: return "expert_gemm";
    case ComputeClass::Attention: return "attention";
    case ComputeClass::Elementwise: return "elementwise";
    case ComputeClass::Fixed: return "fixed";
  }
  return "?";
}

uint32_t Program::label(const std::string& name) {
  // Linear search is fine: generators intern a few dozen distinct names.
  for (uint32_t i = 0; i < labels.size(); ++i) {
    if (labels[i] == name) return i;
  }
  labels.push_back(name);
  return static_cast<uint32_t>(labels.size() - 1);
}

const std::vector<double>* Program::add_matrix(std::vector<double> m) {
  matrices.push_back(std::make_shared<const std::vector<double>>(std::move(m)));
  return matrices.back().get();
}

size_t Program::op_count() const {
  size_t n = 0;
  for (const auto& l : lanes) n += l.ops.size();
  return n;
}

void validate(const Program& p, const std::string& source) {
  using core::InputError;
  if (p.lanes.empty()) throw InputError(source, "the program has no ranks");
  std::vector<int> lane_of_rank(static_cast<size_t>(p.world_size), -1);
  for (size_t l = 0; l < p.lanes.size(); ++l) {
    const auto& lane = p.lanes[l];
    if (lane.ranks.empty()) throw InputError(source, "lane " + std::to_string(l) + " stands for no rank");
    for (int r : lane.ranks) {
      if (r < 0 || r >= p.world_size) throw InputError(source, "lane " + std::to_string(l) + " has rank " + std::to_string(r) + " outside 0.." + std::to_string(p.world_size - 1));
      if (lane_of_rank[static_cast<size_t>(r)] != -1) throw InputError(source, "rank " + std::to_string(r) + " belongs to two lanes");
      lane_of_rank[static_cast<size_t>(r)] = static_cast<int>(l);
    }
  }
  for (size_t r = 0; r < lane_of_rank.size(); ++r) {
    if (lane_of_rank[r] == -1) throw InputError(source, "rank " + std::to_string(r) + " has no program");
  }
  for (size_t c = 0; c < p.comms.size(); ++c) {
    for (const auto& g : p.comms[c].groups) {
      for (int r : g) {
        if (r < 0 || r >= p.world_size) throw InputError(source, "communicator '" + p.comms[c].name + "' has rank " + std::to_string(r) + " outside the job");
      }
    }
  }
  // Collective counts per communicator must agree across participating lanes, and
  // sends must match receives between each ordered pair of lanes.
  std::map<uint32_t, std::map<size_t, int>> coll_count;  // comm -> lane -> count
  // (src lane, dst lane, tag, +1 per send / -1 per receive), summed per key after sorting:
  // a map keyed by the triple was a tenth of generating S1 (7,200 sends and receives).
  struct P2PCount {
    uint32_t src, dst, tag;
    int delta;
  };
  std::vector<P2PCount> p2p;
  for (size_t l = 0; l < p.lanes.size(); ++l) {
    const auto& ops = p.lanes[l].ops;
    // Collectives per communicator of this lane, counted flat and merged after the lane:
    // two map lookups per op were most of this check's time on S1's 123,440 ops.
    std::vector<int> lane_colls(p.comms.size(), 0);
    for (size_t i = 0; i < ops.size(); ++i) {
      const Op& op = ops[i];
      // Where the problem is, built only when there is one.
      auto at = [&] {
        return source + ": lane " + std::to_string(l) + " op " + std::to_string(i) +
               (op.label < p.labels.size() ? " (" + p.labels[op.label] + ")" : "");
      };
      for (uint32_t d : op.deps) {
        if (d >= i) throw InputError(at(), "depends on op " + std::to_string(d) + " which does not come before it");
      }
      if (op.kind == OpKind::Collective) {
        if (op.coll.comm >= p.comms.size()) throw InputError(at(), "uses communicator " + std::to_string(op.coll.comm) + " which does not exist");
        if (op.coll.bytes < 0) throw InputError(at(), "negative collective size");
        lane_colls[op.coll.comm]++;
      } else if (op.kind == OpKind::Send || op.kind == OpKind::Recv) {
        if (op.p2p.peer_lane >= p.lanes.size()) throw InputError(at(), "peer lane " + std::to_string(op.p2p.peer_lane) + " does not exist");
        if (op.kind == OpKind::Send) p2p.push_back({static_cast<uint32_t>(l), op.p2p.peer_lane, op.p2p.tag, +1});
        else p2p.push_back({op.p2p.peer_lane, static_cast<uint32_t>(l), op.p2p.tag, -1});
      } else if (op.kind == OpKind::Compute) {
        if (op.compute.flops < 0 || op.compute.hbm_bytes < 0) throw InputError(at(), "negative compute cost");
      }
    }
    for (uint32_t c = 0; c < lane_colls.size(); ++c)
      if (lane_colls[c] > 0) coll_count[c][l] = lane_colls[c];
  }
  std::vector<uint32_t> stamp(p.lanes.size(), 0);  // comm + 1 once a lane is counted for it
  for (const auto& [comm, per_lane] : coll_count) {
    // The communicator's lanes, in lane order (a std::set per communicator was most of
    // this check on S1: 100 communicators of 128 ranks).
    std::vector<size_t> members;
    for (const auto& g : p.comms[comm].groups)
      for (int r : g) {
        const auto l = static_cast<size_t>(lane_of_rank[static_cast<size_t>(r)]);
        if (stamp[l] != comm + 1) {
          stamp[l] = comm + 1;
          members.push_back(l);
        }
      }
    std::sort(members.begin(), members.end());
    int expected = -1;
    for (size_t l : members) {
      auto it = per_lane.find(l);
      int n = it == per_lane.end() ? 0 : it->second;
      if (expected == -1) expected = n;
      else if (n != expected) {
        throw InputError(source, "communicator '" + p.comms[comm].name + "': lane " + std::to_string(l) + " issues " +
                                     std::to_string(n) + " collectives but another member issues " + std::to_string(expected) +
                                     " (the replay would deadlock)");
      }
    }
  }
  std::sort(p2p.begin(), p2p.end(), [](const P2PCount& a, const P2PCount& b) {
    return std::tie(a.src, a.dst, a.tag) < std::tie(b.src, b.dst, b.tag);
  });
  for (size_t i = 0; i < p2p.size();) {
    const uint32_t src = p2p[i].src, dst = p2p[i].dst, tag = p2p[i].tag;
    int balance = 0;
    for (; i < p2p.size() && p2p[i].src == src && p2p[i].dst == dst && p2p[i].tag == tag; ++i) balance += p2p[i].delta;
    if (balance != 0) {
      throw InputError(source, "lane " + std::to_string(src) + " -> lane " + std::to_string(dst) + " tag " + std::to_string(tag) +
                                   ": " + std::to_string(std::abs(balance)) + (balance > 0 ? " send(s) without a matching receive" : " receive(s) without a matching send"));
    }
  }
}

}  // namespace tcsim::workloads
