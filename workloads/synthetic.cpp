#include "workloads/synthetic.hpp"

#include <string>

namespace tcsim::workloads {
namespace {

Program skeleton(int ranks, bool fold) {
  Program p;
  p.world_size = ranks;
  if (fold) {
    Lane lane;
    for (int r = 0; r < ranks; ++r) lane.ranks.push_back(r);
    p.lanes.push_back(std::move(lane));
  } else {
    for (int r = 0; r < ranks; ++r) p.lanes.push_back(Lane{{r}, {}});
  }
  return p;
}

// A collective op on communicator `comm`, on the stream and category its type implies.
Op collective(CollectiveType type, uint32_t comm, double bytes) {
  const bool a2a = type == CollectiveType::AllToAll;
  Op op;
  op.kind = OpKind::Collective;
  op.stream = a2a ? Stream::EpComm : Stream::DpComm;
  op.category = a2a ? CommCategory::EpAllToAll : CommCategory::DpAllReduce;
  op.coll.type = type;
  op.coll.comm = comm;
  op.coll.bytes = bytes;
  return op;
}

}  // namespace

Program synthetic_moe(int ranks, int layers, double compute_s, double a2a_bytes, double allreduce_bytes, int a2a_group,
                      bool fold) {
  Program p = skeleton(ranks, fold);
  const int g = a2a_group <= 0 ? ranks : a2a_group;
  Communicator world{"world", {{}}};
  for (int r = 0; r < ranks; ++r) world.groups[0].push_back(r);
  Communicator ep{"ep", {}};
  for (int s = 0; s < ranks; s += g) {
    std::vector<int> grp;
    for (int r = s; r < s + g && r < ranks; ++r) grp.push_back(r);
    ep.groups.push_back(grp);
  }
  p.comms = {world, ep};
  for (auto& lane : p.lanes) {
    auto add = [&](Op op, const std::string& name) {
      op.label = p.label(name);
      if (!lane.ops.empty()) op.deps = {static_cast<uint32_t>(lane.ops.size() - 1)};
      lane.ops.push_back(std::move(op));
    };
    auto compute = [&](const std::string& name) {
      Op op;
      op.kind = OpKind::Compute;
      op.compute.cls = ComputeClass::Fixed;
      op.compute.fixed_seconds = compute_s;
      add(op, name);
    };
    auto a2a = [&](const std::string& name) { add(collective(CollectiveType::AllToAll, 1, a2a_bytes), name); };
    for (const char* dir : {"fwd", "bwd"}) {
      for (int l = 0; l < layers; ++l) {
        std::string L = "L" + std::to_string(l) + " " + dir;
        compute(L + " compute 1");
        a2a(L + " a2a 1");
        compute(L + " compute 2");
        a2a(L + " a2a 2");
      }
    }
    add(collective(CollectiveType::AllReduce, 0, allreduce_bytes), "grad all-reduce");
  }
  p.tokens_per_step = 0;
  p.model_flops_per_step = 0;
  return p;
}

Program single_collective(int ranks, CollectiveType type, double bytes, bool fold) {
  Program p = skeleton(ranks, fold);
  Communicator world{"world", {{}}};
  for (int r = 0; r < ranks; ++r) world.groups[0].push_back(r);
  p.comms = {world};
  for (auto& lane : p.lanes) {
    Op op = collective(type, 0, bytes);
    op.label = p.label(std::string(to_string(type)));
    lane.ops.push_back(op);
  }
  return p;
}

}  // namespace tcsim::workloads
