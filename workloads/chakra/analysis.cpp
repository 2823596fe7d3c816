#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <queue>
#include <set>
#include <tuple>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "core/error.hpp"
#include "workloads/chakra/internal.hpp"

namespace tcsim::workloads::chakra {

using core::InputError;
using ChakraProtoMsg::AttributeProto;
using ChakraProtoMsg::Node;

const AttributeProto* find_attr(const Node& n, const std::string& name) {
  for (const auto& a : n.attr())
    if (a.name() == name) return &a;
  return nullptr;
}

namespace {

const char* value_form(const AttributeProto& a) {
  const auto* f = a.GetDescriptor()->FindFieldByNumber(static_cast<int>(a.value_case()));
  return f ? f->name().c_str() : "no value";
}

std::optional<int64_t> as_int(const AttributeProto& a) {
  switch (a.value_case()) {
    case AttributeProto::kInt32Val: return a.int32_val();
    case AttributeProto::kInt64Val: return a.int64_val();
    case AttributeProto::kUint32Val: return a.uint32_val();
    case AttributeProto::kUint64Val: return static_cast<int64_t>(a.uint64_val());
    case AttributeProto::kSint32Val: return a.sint32_val();
    case AttributeProto::kSint64Val: return a.sint64_val();
    case AttributeProto::kFixed32Val: return a.fixed32_val();
    case AttributeProto::kFixed64Val: return static_cast<int64_t>(a.fixed64_val());
    case AttributeProto::kSfixed32Val: return a.sfixed32_val();
    case AttributeProto::kSfixed64Val: return a.sfixed64_val();
    case AttributeProto::kBoolVal: return a.bool_val() ? 1 : 0;
    case AttributeProto::kDoubleVal:
      if (a.double_val() == std::floor(a.double_val())) return static_cast<int64_t>(a.double_val());
      return std::nullopt;
    case AttributeProto::kFloatVal:
      if (a.float_val() == std::floor(a.float_val())) return static_cast<int64_t>(a.float_val());
      return std::nullopt;
    default: return std::nullopt;
  }
}

}  // namespace

std::optional<int64_t> int_attr(const Node& n, const std::string& name, const std::string& where) {
  const auto* a = find_attr(n, name);
  if (!a) return std::nullopt;
  auto v = as_int(*a);
  if (!v)
    throw InputError(where, "attribute " + name + " holds " + value_form(*a) +
                                ", expected an integer (int32/int64/uint32/uint64 _val)");
  return v;
}

std::optional<double> double_attr(const Node& n, const std::string& name, const std::string& where) {
  const auto* a = find_attr(n, name);
  if (!a) return std::nullopt;
  if (a->value_case() == AttributeProto::kDoubleVal) return a->double_val();
  if (a->value_case() == AttributeProto::kFloatVal) return a->float_val();
  auto v = as_int(*a);
  if (!v) throw InputError(where, "attribute " + name + " holds " + value_form(*a) + ", expected a number");
  return static_cast<double>(*v);
}

std::optional<std::string> string_attr(const Node& n, const std::string& name, const std::string& where) {
  const auto* a = find_attr(n, name);
  if (!a) return std::nullopt;
  if (a->value_case() == AttributeProto::kStringVal) return a->string_val();
  if (auto v = as_int(*a)) return std::to_string(*v);
  throw InputError(where, "attribute " + name + " holds " + value_form(*a) + ", expected a string");
}

bool bool_attr(const Node& n, const std::string& name, const std::string& where, bool dflt) {
  auto v = int_attr(n, name, where);
  return v ? *v != 0 : dflt;
}

std::string node_where(const EtFile& f, const Node& n) {
  std::string w = f.path + ": node " + std::to_string(n.id());
  if (!n.name().empty()) w += " ('" + n.name() + "')";
  return w;
}

NodeKind classify(const Node& n, const std::string& where) {
  using namespace ChakraProtoMsg;
  int t = n.type();
  if (!NodeType_IsValid(t))
    throw InputError(where, "unknown node type " + std::to_string(t) +
                                " (Chakra NodeType has 0..10: METADATA_NODE, MEM_LOAD_NODE, MEM_STORE_NODE, COMP_NODE, "
                                "COMM_SEND_NODE, COMM_RECV_NODE, COMM_COLL_NODE, ...)");
  // ASTRA-sim runs communication nodes marked as CPU ops (PyTorch's c10d:: host-side calls)
  // as compute of their duration. Unlike some ASTRA-sim feeders, an absent is_cpu_op means
  // a GPU op here: hand-written traces (ASTRA-sim's custom collectives) omit it.
  bool cpu = bool_attr(n, "is_cpu_op", where, false);
  switch (n.type()) {
    case COMP_NODE: return NodeKind::Compute;
    case COMM_COLL_NODE: return cpu ? NodeKind::Compute : NodeKind::Collective;
    case COMM_SEND_NODE: return cpu ? NodeKind::Compute : NodeKind::Send;
    case COMM_RECV_NODE: return cpu ? NodeKind::Compute : NodeKind::Recv;
    case MEM_LOAD_NODE:
    case MEM_STORE_NODE: return NodeKind::Memory;
    default: return NodeKind::Skip;  // METADATA, INVALID, STORAGE, BATCH, CHECKPOINT
  }
}

std::string comm_type_name(int t) {
  if (ChakraProtoMsg::CollectiveCommType_IsValid(t))
    return ChakraProtoMsg::CollectiveCommType_Name(static_cast<ChakraProtoMsg::CollectiveCommType>(t));
  return "comm_type " + std::to_string(t);
}

namespace {

/// Orders the nodes of `preds` (Kahn's algorithm; among ready nodes the earliest in the file
/// goes first, so a file already in dependency order keeps its order). Returns the blocked
/// in-degrees (non-zero for nodes on or behind a cycle).
std::vector<uint32_t> topo_order(RankGraph& g) {
  const size_t n = g.preds.size();
  std::vector<std::vector<uint32_t>> succs(n);
  std::vector<uint32_t> indeg(n);
  for (uint32_t i = 0; i < n; ++i) {
    indeg[i] = static_cast<uint32_t>(g.preds[i].size());
    for (uint32_t d : g.preds[i]) succs[d].push_back(i);
  }
  std::priority_queue<uint32_t, std::vector<uint32_t>, std::greater<>> ready;
  for (uint32_t i = 0; i < n; ++i)
    if (indeg[i] == 0) ready.push(i);
  g.order.clear();
  g.order.reserve(n);
  while (!ready.empty()) {
    uint32_t i = ready.top();
    ready.pop();
    g.order.push_back(i);
    for (uint32_t s : succs[i])
      if (--indeg[s] == 0) ready.push(s);
  }
  g.cyclic = g.order.size() < n;
  return indeg;
}

}  // namespace

RankGraph build_graph(const EtFile& f, std::vector<Problem>& problems) {
  const size_t n = f.nodes.size();
  std::unordered_map<uint64_t, uint32_t> index;
  index.reserve(n);
  for (uint32_t i = 0; i < n; ++i) {
    auto [it, fresh] = index.emplace(f.nodes[i].id(), i);
    if (!fresh)
      problems.push_back({true, node_where(f, f.nodes[i]),
                          "duplicate node id (also record " + std::to_string(it->second + 1) + ")"});
  }
  RankGraph data, both;  // data dependencies only; data and control dependencies
  data.preds.resize(n);
  both.preds.resize(n);
  size_t missing_ctrl = 0;
  std::string first_missing_ctrl;
  for (uint32_t i = 0; i < n; ++i) {
    const auto& node = f.nodes[i];
    for (uint64_t d : node.data_deps()) {
      auto it = index.find(d);
      if (it == index.end()) {
        problems.push_back({true, node_where(f, node),
                            "data dependency on node " + std::to_string(d) + ", which is not in the file"});
        continue;
      }
      data.preds[i].push_back(it->second);
    }
    both.preds[i] = data.preds[i];
    for (uint64_t d : node.ctrl_deps()) {
      auto it = index.find(d);
      if (it == index.end()) {
        if (missing_ctrl++ == 0) first_missing_ctrl = node_where(f, node) + " has ctrl_dep " + std::to_string(d);
        continue;
      }
      both.preds[i].push_back(it->second);
    }
    for (auto* p : {&data.preds[i], &both.preds[i]}) {
      std::sort(p->begin(), p->end());
      p->erase(std::unique(p->begin(), p->end()), p->end());
    }
  }
  if (missing_ctrl)
    problems.push_back({false, f.path,
                        std::to_string(missing_ctrl) + " control dependencies on nodes not in the file, ignored (first: " +
                            first_missing_ctrl + ")"});

  topo_order(both);
  if (!both.cyclic) return both;
  // PyTorch-converted traces use ctrl_deps for op nesting (a kernel or child op points at
  // its enclosing op, which in turn data-depends on it); Chakra's ETFeeder schedules by
  // data_deps only. Fall back to that when control dependencies close a cycle.
  std::vector<uint32_t> indeg = topo_order(data);
  if (!data.cyclic) {
    problems.push_back({false, f.path,
                        "control dependencies form cycles with the data dependencies (" +
                            std::to_string(n - both.order.size()) +
                            " nodes blocked), so this file is ordered by data_deps only, as Chakra's ETFeeder does"});
    return data;
  }
  // A cycle of data dependencies: walk blocked predecessors until one repeats.
  uint32_t start = 0;
  while (indeg[start] == 0) ++start;
  std::vector<int> seen(n, -1);
  std::vector<uint32_t> path;
  uint32_t cur = start;
  while (seen[cur] < 0) {
    seen[cur] = static_cast<int>(path.size());
    path.push_back(cur);
    for (uint32_t p : data.preds[cur])
      if (indeg[p] > 0) {
        cur = p;
        break;
      }
  }
  std::string chain;
  for (size_t k = static_cast<size_t>(seen[cur]); k < path.size(); ++k)
    chain += std::to_string(f.nodes[path[k]].id()) + " <- ";
  chain += std::to_string(f.nodes[cur].id());
  problems.push_back({true, node_where(f, f.nodes[cur]),
                      "dependency cycle (node <- its dependency): " + chain + "; " +
                          std::to_string(n - data.order.size()) + " nodes can never run"});
  return data;
}

namespace {

std::string ranks_text(const std::vector<int>& r) {
  std::string s;
  for (size_t i = 0; i < r.size(); ++i) s += (i ? "," : "") + std::to_string(r[i]);
  return "{" + s + "}";
}

std::map<std::string, std::vector<int>> read_comm_groups(const std::string& path, int world) {
  std::map<std::string, std::vector<int>> groups;
  std::ifstream in(path);
  if (!in) throw InputError(path, "cannot open file");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw InputError(path, std::string("not JSON: ") + e.what());
  }
  if (!j.is_object()) throw InputError(path, "expected an object {\"<pg_name>\": [ranks...]}");
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (!it.value().is_array()) throw InputError(path + ": \"" + it.key() + "\"", "expected an array of ranks");
    std::vector<int> ranks;
    for (const auto& v : it.value()) {
      if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() >= world)
        throw InputError(path + ": \"" + it.key() + "\"",
                         "rank " + v.dump() + " is not an integer in 0.." + std::to_string(world - 1));
      ranks.push_back(v.get<int>());
    }
    std::sort(ranks.begin(), ranks.end());
    ranks.erase(std::unique(ranks.begin(), ranks.end()), ranks.end());
    groups[it.key()] = ranks;
  }
  return groups;
}

}  // namespace

Analysis analyze(const std::string& prefix) {
  Analysis a;
  a.files = read_et_files(prefix);
  const int world = static_cast<int>(a.files.size());
  a.graphs.resize(a.files.size());
  a.comm.resize(a.files.size());

  std::map<std::string, std::set<int>> used;  // pg_name -> ranks whose collectives use it
  for (int r = 0; r < world; ++r) {
    const EtFile& f = a.files[r];
    for (const Node& n : f.nodes) classify(n, node_where(f, n));  // unknown node types are format errors
    a.graphs[r] = build_graph(f, a.problems);
    for (uint32_t i : a.graphs[r].order) {
      const Node& n = f.nodes[i];
      std::string where = node_where(f, n);
      NodeKind kind = classify(n, where);
      if (kind != NodeKind::Collective && kind != NodeKind::Send && kind != NodeKind::Recv) continue;
      CommNode c;
      c.node = i;
      c.kind = kind;
      c.bytes = int_attr(n, "comm_size", where).value_or(0);
      if (c.bytes < 0) a.problems.push_back({true, where, "negative comm_size " + std::to_string(c.bytes)});
      if (kind == NodeKind::Collective) {
        auto t = int_attr(n, "comm_type", where);
        if (!t) {
          a.problems.push_back({true, where, "collective node without a comm_type attribute"});
          continue;
        }
        c.comm_type = static_cast<int>(*t);
        c.pg = string_attr(n, "pg_name", where).value_or("");
        used[c.pg].insert(r);
      } else {
        const char* peer_attr = kind == NodeKind::Send ? "comm_dst" : "comm_src";
        const char* self_attr = kind == NodeKind::Send ? "comm_src" : "comm_dst";
        auto peer = int_attr(n, peer_attr, where);
        c.tag = int_attr(n, "comm_tag", where).value_or(0);
        if (!peer) {
          a.problems.push_back({true, where, std::string("point-to-point node without a ") + peer_attr + " attribute"});
          continue;
        }
        if (*peer < 0 || *peer >= world || *peer == r) {
          a.problems.push_back({true, where, std::string(peer_attr) + " " + std::to_string(*peer) +
                                                 " is not another rank of this " + std::to_string(world) +
                                                 "-rank trace"});
          continue;
        }
        if (auto self = int_attr(n, self_attr, where); self && *self != r) {
          a.problems.push_back({true, where, std::string(self_attr) + " " + std::to_string(*self) +
                                                 " but the node is in the file of rank " + std::to_string(r)});
          continue;
        }
        c.peer = static_cast<int>(*peer);
      }
      a.comm[r].push_back(c);
    }
  }

  // Process groups.
  std::string cg_path = prefix + ".comm_groups.json";
  if (std::filesystem::exists(cg_path)) a.groups = read_comm_groups(cg_path, world);
  for (const auto& [pg, ranks] : used) {
    if (pg.empty()) {
      std::vector<int> all(static_cast<size_t>(world));
      for (int r = 0; r < world; ++r) all[static_cast<size_t>(r)] = r;
      a.groups[""] = all;
      continue;
    }
    auto it = a.groups.find(pg);
    if (it == a.groups.end()) {
      a.groups[pg] = std::vector<int>(ranks.begin(), ranks.end());
      continue;
    }
    for (int r : ranks)
      if (!std::binary_search(it->second.begin(), it->second.end(), r))
        a.problems.push_back({true, a.files[r].path, "uses process group '" + pg + "', which " + cg_path +
                                                         " defines as ranks " + ranks_text(it->second)});
  }

  // Collectives: every member of a group issues the same sequence on it.
  for (const auto& [pg, members] : a.groups) {
    if (!used.count(pg)) continue;
    std::string gname = pg.empty() ? "all ranks (no pg_name)" : "process group '" + pg + "' " + ranks_text(members);
    std::map<int, std::vector<const CommNode*>> seq;
    size_t most = 0;
    int most_rank = members.front();
    for (int r : members) {
      for (const auto& c : a.comm[r])
        if (c.kind == NodeKind::Collective && c.pg == pg) seq[r].push_back(&c);
      if (seq[r].size() > most) most = seq[r].size(), most_rank = r;
    }
    for (int r : members) {
      const auto& mine = seq[r];
      const auto& ref = seq[most_rank];
      for (size_t k = 0; k < mine.size(); ++k) {
        const Node& n = a.files[r].nodes[mine[k]->node];
        const Node& m = a.files[most_rank].nodes[ref[k]->node];
        if (mine[k]->comm_type != ref[k]->comm_type) {
          a.problems.push_back({true, node_where(a.files[r], n),
                                "collective #" + std::to_string(k + 1) + " on " + gname + " is " +
                                    comm_type_name(mine[k]->comm_type) + " but rank " + std::to_string(most_rank) +
                                    "'s is " + comm_type_name(ref[k]->comm_type) + " (node " + std::to_string(m.id()) +
                                    ")"});
          break;
        }
      }
      if (mine.size() < most) {
        const Node& m = a.files[most_rank].nodes[ref[mine.size()]->node];
        a.problems.push_back({true, a.files[r].path,
                              "rank " + std::to_string(r) + " issues " + std::to_string(mine.size()) +
                                  " collectives on " + gname + " but rank " + std::to_string(most_rank) + " issues " +
                                  std::to_string(most) + ": rank " + std::to_string(most_rank) + " would wait forever in " +
                                  comm_type_name(ref[mine.size()]->comm_type) + " node " + std::to_string(m.id()) +
                                  " (collective #" + std::to_string(mine.size() + 1) + ")"});
      }
    }
  }

  // Sends and receives pair in issue order per (source, destination, tag).
  std::map<std::tuple<int, int, int64_t>, std::pair<std::vector<const CommNode*>, std::vector<const CommNode*>>> p2p;
  for (int r = 0; r < world; ++r)
    for (const auto& c : a.comm[r]) {
      if (c.kind == NodeKind::Send) p2p[{r, c.peer, c.tag}].first.push_back(&c);
      if (c.kind == NodeKind::Recv) p2p[{c.peer, r, c.tag}].second.push_back(&c);
    }
  for (const auto& [key, sr] : p2p) {
    auto [src, dst, tag] = key;
    const auto& [sends, recvs] = sr;
    std::string pair = "rank " + std::to_string(src) + " -> rank " + std::to_string(dst) + " tag " + std::to_string(tag);
    for (size_t k = 0; k < std::min(sends.size(), recvs.size()); ++k) {
      if (sends[k]->bytes != recvs[k]->bytes) {
        a.problems.push_back({true, node_where(a.files[dst], a.files[dst].nodes[recvs[k]->node]),
                              pair + ": receive #" + std::to_string(k + 1) + " expects " +
                                  std::to_string(recvs[k]->bytes) + " bytes but send #" + std::to_string(k + 1) +
                                  " (node " + std::to_string(a.files[src].nodes[sends[k]->node].id()) + ") sends " +
                                  std::to_string(sends[k]->bytes)});
      }
    }
    if (sends.size() > recvs.size()) {
      const auto* c = sends[recvs.size()];
      a.problems.push_back({true, node_where(a.files[src], a.files[src].nodes[c->node]),
                            pair + ": " + std::to_string(sends.size()) + " sends but " + std::to_string(recvs.size()) +
                                " receives; rank " + std::to_string(src) + " waits on rank " + std::to_string(dst) +
                                " to receive this send (" + std::to_string(c->bytes) + " bytes), which never happens"});
    } else if (recvs.size() > sends.size()) {
      const auto* c = recvs[sends.size()];
      a.problems.push_back({true, node_where(a.files[dst], a.files[dst].nodes[c->node]),
                            pair + ": " + std::to_string(recvs.size()) + " receives but " + std::to_string(sends.size()) +
                                " sends; rank " + std::to_string(dst) + " waits on rank " + std::to_string(src) +
                                " for this receive (" + std::to_string(c->bytes) + " bytes), which is never sent"});
    }
  }
  return a;
}

}  // namespace tcsim::workloads::chakra
