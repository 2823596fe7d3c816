// Chakra trace -> Program.
#include <algorithm>
#include <cmath>
#include <set>
#include <unordered_map>

#include "core/error.hpp"
#include "core/log.hpp"
#include "workloads/chakra/chakra.hpp"
#include "workloads/chakra/internal.hpp"
#include "workloads/chakra/tcsim_attrs.hpp"

namespace tcsim::workloads {

using core::InputError;
using ChakraProtoMsg::Node;
using namespace chakra;

namespace {

CollectiveType collective_type(int t, const std::string& where) {
  using namespace ChakraProtoMsg;
  switch (t) {
    case ALL_REDUCE: return CollectiveType::AllReduce;
    case REDUCE: return CollectiveType::Reduce;
    case ALL_GATHER: return CollectiveType::AllGather;
    case BROADCAST: return CollectiveType::Broadcast;
    case ALL_TO_ALL: return CollectiveType::AllToAll;
    case REDUCE_SCATTER:
    case REDUCE_SCATTER_BLOCK: return CollectiveType::ReduceScatter;
    case BARRIER: return CollectiveType::AllReduce;  // a barrier is an all-reduce of comm_size (normally 0) bytes
    default:
      throw InputError(where, "comm_type " + comm_type_name(t) +
                                  " is not supported (supported: ALL_REDUCE, REDUCE, ALL_GATHER, BROADCAST, "
                                  "ALL_TO_ALL, REDUCE_SCATTER, REDUCE_SCATTER_BLOCK, BARRIER)");
  }
}

// A GEMM dimension (tcsim_m/n/k): 0 (unknown) to 2^32 - 1.
uint32_t gemm_dim(const Node& n, const char* name, const std::string& where) {
  const int64_t v = int_attr(n, name, where).value_or(0);
  if (v < 0 || v > static_cast<int64_t>(UINT32_MAX)) {
    throw InputError(where, "attribute " + std::string(name) + " is " + std::to_string(v) +
                                "; a GEMM dimension is 0 (unknown) to 4294967295");
  }
  return static_cast<uint32_t>(v);
}

template <class E>
E enum_attr(const Node& n, const char* name, int count, E dflt, const std::string& where) {
  auto s = string_attr(n, name, where);
  if (!s) return dflt;
  std::string valid;
  for (int i = 0; i < count; ++i) {
    if (*s == to_string(static_cast<E>(i))) return static_cast<E>(i);
    valid += std::string(i ? ", " : "") + to_string(static_cast<E>(i));
  }
  throw InputError(where, std::string("attribute ") + name + " = '" + *s + "'; valid: " + valid);
}

/// Numeric order for numeric pg names ("2" < "10"), then text.
bool pg_less(const std::string& a, const std::string& b) {
  auto num = [](const std::string& s) -> std::optional<long long> {
    if (s.empty() || s.size() > 18 || !std::all_of(s.begin(), s.end(), ::isdigit)) return std::nullopt;
    return std::stoll(s);
  };
  auto na = num(a), nb = num(b);
  if (na && nb) return *na < *nb;
  if (na != nb) return na.has_value();  // numbers first
  return a < b;
}

}  // namespace

Program read_chakra(const std::string& prefix) {
  Analysis a = analyze(prefix);
  for (const auto& p : a.problems)
    if (p.fatal) throw InputError(p.where, p.what);
  auto log = core::logger("workloads");
  for (const auto& p : a.problems) log->warn("{}: {}", p.where, p.what);

  Program prog;
  const int world = static_cast<int>(a.files.size());
  prog.world_size = world;
  const auto& meta = a.files[0].meta;
  if (auto v = meta_double(meta, kTokensPerStep)) prog.tokens_per_step = *v;
  if (auto v = meta_double(meta, kModelFlopsPerStep)) prog.model_flops_per_step = *v;
  if (auto v = meta_string(meta, kProgramPrecision)) {
    for (int i = 0; i < 4; ++i)
      if (*v == to_string(static_cast<Precision>(i))) prog.precision = static_cast<Precision>(i);
  }

  // Communicators: one per process group, or the groups the writer recorded as one
  // communicator (attributes tcsim_pg_comm.<pg> of the metadata) merged back together.
  std::set<std::string> used;
  for (const auto& per_rank : a.comm)
    for (const auto& c : per_rank)
      if (c.kind == NodeKind::Collective) used.insert(c.pg);
  std::vector<std::string> pgs(used.begin(), used.end());
  std::sort(pgs.begin(), pgs.end(), pg_less);
  std::map<std::string, uint32_t> comm_of_pg;
  std::map<std::string, uint32_t> comm_by_name;
  for (const auto& pg : pgs) {
    std::string name = pg.empty() ? "world" : "pg " + pg;
    bool from_writer = false;
    if (!pg.empty())
      if (auto n = meta_string(meta, std::string(kPgCommPrefix) + pg)) name = *n, from_writer = true;
    auto it = from_writer ? comm_by_name.find(name) : comm_by_name.end();
    if (it == comm_by_name.end()) {
      prog.comms.push_back(Communicator{name, {}});
      it = comm_by_name.emplace(name, static_cast<uint32_t>(prog.comms.size() - 1)).first;
      if (!from_writer) comm_by_name.erase(name);  // never merge foreign groups
    }
    uint32_t idx = it->second;
    prog.comms[idx].groups.push_back(a.groups.at(pg));
    comm_of_pg[pg] = idx;
  }

  std::unordered_map<std::string, uint32_t> label_index;
  auto intern = [&](const std::string& s) {
    auto [it, fresh] = label_index.emplace(s, static_cast<uint32_t>(prog.labels.size()));
    if (fresh) prog.labels.push_back(s);
    return it->second;
  };

  prog.lanes.resize(static_cast<size_t>(world));
  for (int r = 0; r < world; ++r) {
    const EtFile& f = a.files[r];
    Lane& lane = prog.lanes[static_cast<size_t>(r)];
    lane.ranks = {r};
    std::unordered_map<uint32_t, const CommNode*> comm_node;
    for (const auto& c : a.comm[r]) comm_node[c.node] = &c;
    // eff[i]: the ops that stand for node i as a dependency (itself, or for a skipped node
    // the ops it depends on), so dependencies through METADATA nodes are kept.
    std::vector<std::vector<uint32_t>> eff(f.nodes.size());
    for (uint32_t i : a.graphs[r].order) {
      const Node& n = f.nodes[i];
      std::string where = node_where(f, n);
      NodeKind kind = classify(n, where);
      std::vector<uint32_t> deps;
      for (uint32_t p : a.graphs[r].preds[i]) deps.insert(deps.end(), eff[p].begin(), eff[p].end());
      std::sort(deps.begin(), deps.end());
      deps.erase(std::unique(deps.begin(), deps.end()), deps.end());
      if (kind == NodeKind::Skip) {
        eff[i] = std::move(deps);
        continue;
      }
      Op op;
      op.deps = std::move(deps);
      op.label = intern(n.name().empty() ? ChakraProtoMsg::NodeType_Name(n.type()) + " " + std::to_string(n.id()) : n.name());
      op.category = enum_attr(n, kCategory, kCommCategoryCount, CommCategory::Other, where);
      std::optional<double> fixed = double_attr(n, kFixedSeconds, where);
      if (fixed && !(std::isfinite(*fixed) && *fixed >= 0)) {
        throw InputError(where, std::string("attribute ") + kFixedSeconds + " is " + std::to_string(*fixed) +
                                    "; a duration is a finite number of seconds, 0 or more");
      }
      if (!fixed && n.duration_micros() > 0) fixed = static_cast<double>(n.duration_micros()) * 1e-6;
      switch (kind) {
        case NodeKind::Compute:
        case NodeKind::Memory: {
          op.kind = kind == NodeKind::Compute ? OpKind::Compute : OpKind::Memory;
          // Host-side ops (is_cpu_op: PyTorch CPU ops, c10d:: calls) run on the Cpu stream, one
          // at a time, overlapping GPU kernels, as ASTRA-sim's HardwareResource schedules them.
          const bool cpu = bool_attr(n, "is_cpu_op", where, false);
          const Stream dflt = kind == NodeKind::Memory ? Stream::Memory : cpu ? Stream::Cpu : Stream::Compute;
          op.stream = enum_attr(n, kStream, kStreamCount, dflt, where);
          auto& c = op.compute;
          c.flops = static_cast<double>(int_attr(n, "num_ops", where).value_or(0));
          c.hbm_bytes = static_cast<double>(int_attr(n, "tensor_size", where).value_or(0));
          if (auto v = double_attr(n, kFlops, where)) c.flops = *v;
          if (auto v = double_attr(n, kHbmBytes, where)) c.hbm_bytes = *v;
          if (!(c.flops >= 0 && c.hbm_bytes >= 0 && std::isfinite(c.flops) && std::isfinite(c.hbm_bytes))) {
            throw InputError(where, "num_ops and tensor_size (or tcsim_flops and tcsim_hbm_bytes) must be finite and 0 or more, got " +
                                        std::to_string(c.flops) + " and " + std::to_string(c.hbm_bytes));
          }
          if (kind == NodeKind::Memory) c.cls = ComputeClass::Elementwise;
          bool no_cost = kind == NodeKind::Compute && c.flops == 0 && c.hbm_bytes == 0;
          if (fixed || no_cost) {
            c.fixed_seconds = fixed.value_or(0.0);  // no duration and no cost: ASTRA-sim skips it; 0 s is the same
            c.cls = ComputeClass::Fixed;
          }
          c.cls = enum_attr(n, kClass, 5, c.cls, where);
          c.precision = enum_attr(n, kPrecision, 4, prog.precision, where);
          c.m = gemm_dim(n, kM, where);
          c.n = gemm_dim(n, kN, where);
          c.k = gemm_dim(n, kK, where);
          break;
        }
        case NodeKind::Collective: {
          const CommNode& cn = *comm_node.at(i);
          op.kind = OpKind::Collective;
          op.stream = enum_attr(n, kStream, kStreamCount, Stream::DpComm, where);
          op.coll.type = collective_type(cn.comm_type, where);
          op.coll.comm = comm_of_pg.at(cn.pg);
          op.coll.bytes = static_cast<double>(cn.bytes);
          op.coll.max_nodes = static_cast<uint32_t>(int_attr(n, kMaxNodes, where).value_or(0));
          if (const auto* m = find_attr(n, kMatrix); m && m->has_double_list()) {
            std::vector<double> mat(m->double_list().values().begin(), m->double_list().values().end());
            size_t g = prog.comms[op.coll.comm].groups.front().size();
            if (mat.size() != g * g)
              throw InputError(where, std::string(kMatrix) + " has " + std::to_string(mat.size()) +
                                          " values, expected group size squared (" + std::to_string(g * g) + ")");
            op.coll.matrix = prog.add_matrix(std::move(mat));
          }
          break;
        }
        case NodeKind::Send:
        case NodeKind::Recv: {
          const CommNode& cn = *comm_node.at(i);
          op.kind = kind == NodeKind::Send ? OpKind::Send : OpKind::Recv;
          op.stream = enum_attr(n, kStream, kStreamCount, Stream::PpComm, where);
          op.p2p.peer_lane = static_cast<uint32_t>(cn.peer);
          op.p2p.bytes = static_cast<double>(cn.bytes);
          if (cn.tag < 0 || cn.tag > 0xffffffffLL) throw InputError(where, "comm_tag " + std::to_string(cn.tag) + " is outside 0..2^32-1");
          op.p2p.tag = static_cast<uint32_t>(cn.tag);
          break;
        }
        case NodeKind::Skip: break;
      }
      eff[i] = {static_cast<uint32_t>(lane.ops.size())};
      lane.ops.push_back(std::move(op));
    }
  }
  return prog;
}

}  // namespace tcsim::workloads
