// Program -> Chakra trace, one file per physical rank.
#include <cmath>
#include <filesystem>
#include <map>
#include <tuple>

#include <nlohmann/json.hpp>

#include "core/error.hpp"
#include "workloads/chakra/chakra.hpp"
#include "workloads/chakra/et_io.hpp"
#include "workloads/chakra/tcsim_attrs.hpp"

namespace tcsim::workloads {

using core::InputError;
using ChakraProtoMsg::AttributeProto;
using ChakraProtoMsg::Node;
using namespace chakra;

namespace {

// Version strings as Chakra's converters write them (GlobalMetadata.version and the "schema"
// attribute) for the 0.0.4 schema this file implements.
constexpr const char* kChakraVersion = "0.0.4";
constexpr const char* kChakraSchema = "1.0.2-chakra.0.0.4";

AttributeProto& add(google::protobuf::RepeatedPtrField<AttributeProto>* attrs, const std::string& name) {
  auto* a = attrs->Add();
  a->set_name(name);
  return *a;
}

int chakra_comm_type(CollectiveType t) {
  using namespace ChakraProtoMsg;
  switch (t) {
    case CollectiveType::AllReduce: return ALL_REDUCE;
    case CollectiveType::AllGather: return ALL_GATHER;
    case CollectiveType::ReduceScatter: return REDUCE_SCATTER;
    case CollectiveType::AllToAll: return ALL_TO_ALL;
    case CollectiveType::Broadcast: return BROADCAST;
    case CollectiveType::Reduce: return REDUCE;
  }
  return ALL_REDUCE;
}

uint64_t rounded(double v) { return v <= 0 ? 0 : static_cast<uint64_t>(std::llround(v)); }

void set_int(AttributeProto& a, int64_t v) {
  if (v >= INT32_MIN && v <= INT32_MAX) a.set_int32_val(static_cast<int32_t>(v));
  else a.set_int64_val(v);
}

}  // namespace

void write_chakra(const Program& p, const std::string& prefix) {
  const std::string where = "chakra export to " + prefix;
  const int world = p.world_size;
  if (world <= 0) throw InputError(where, "the program has no ranks");

  // Physical rank -> (lane, replica index).
  std::vector<std::pair<int, int>> place(static_cast<size_t>(world), {-1, -1});
  for (size_t l = 0; l < p.lanes.size(); ++l)
    for (size_t j = 0; j < p.lanes[l].ranks.size(); ++j) {
      int r = p.lanes[l].ranks[j];
      if (r < 0 || r >= world || place[static_cast<size_t>(r)].first >= 0)
        throw InputError(where, "lane " + std::to_string(l) + ": rank " + std::to_string(r) +
                                    " is outside the job or in two lanes");
      place[static_cast<size_t>(r)] = {static_cast<int>(l), static_cast<int>(j)};
    }
  for (int r = 0; r < world; ++r)
    if (place[static_cast<size_t>(r)].first < 0) throw InputError(where, "rank " + std::to_string(r) + " is in no lane");

  // One numeric pg_name per group of every communicator (ASTRA-sim's comm-group ids), and
  // the group of each rank per communicator.
  nlohmann::ordered_json groups_json = nlohmann::ordered_json::object();
  std::vector<std::vector<int>> pg_of_rank(p.comms.size(), std::vector<int>(static_cast<size_t>(world), -1));
  int next_pg = 1;
  for (size_t c = 0; c < p.comms.size(); ++c)
    for (const auto& g : p.comms[c].groups) {
      int id = next_pg++;
      groups_json[std::to_string(id)] = g;
      for (int r : g)
        if (r >= 0 && r < world) pg_of_rank[c][static_cast<size_t>(r)] = id;
    }

  // A receive node's comm_size is the size of the message it receives: ASTRA-sim posts the
  // receive with it, and read_chakra refuses a receive whose size differs from its send's. A
  // program keeps message sizes on its sends (the generator's receives carry 0 bytes, so that
  // volumes are counted once), so each receive takes the size of the send it matches: per
  // (source lane, destination lane, tag) in issue order, as the executor and the reader pair them.
  std::vector<std::vector<uint64_t>> recv_size(p.lanes.size());  // per lane, its receives in order
  {
    using Key = std::tuple<uint32_t, uint32_t, uint32_t>;  // source lane, destination lane, tag
    std::map<Key, std::vector<uint64_t>> sent;
    for (size_t l = 0; l < p.lanes.size(); ++l)
      for (const Op& op : p.lanes[l].ops)
        if (op.kind == OpKind::Send) sent[{static_cast<uint32_t>(l), op.p2p.peer_lane, op.p2p.tag}].push_back(rounded(op.p2p.bytes));
    std::map<Key, size_t> taken;
    for (size_t l = 0; l < p.lanes.size(); ++l)
      for (size_t i = 0; i < p.lanes[l].ops.size(); ++i) {
        const Op& op = p.lanes[l].ops[i];
        if (op.kind != OpKind::Recv) continue;
        const std::string at = where + ": lane " + std::to_string(l) + " op " + std::to_string(i);
        if (op.p2p.peer_lane >= p.lanes.size()) throw InputError(at, "peer lane " + std::to_string(op.p2p.peer_lane) + " does not exist");
        const Key key{op.p2p.peer_lane, static_cast<uint32_t>(l), op.p2p.tag};
        const size_t k = taken[key]++;
        auto it = sent.find(key);
        if (it == sent.end() || k >= it->second.size())
          throw InputError(at, "receive #" + std::to_string(k + 1) + " from lane " + std::to_string(op.p2p.peer_lane) +
                                   " tag " + std::to_string(op.p2p.tag) + " has no matching send, so its size is unknown");
        const uint64_t bytes = it->second[k];
        if (op.p2p.bytes > 0 && rounded(op.p2p.bytes) != bytes)
          throw InputError(at, "receive #" + std::to_string(k + 1) + " from lane " + std::to_string(op.p2p.peer_lane) +
                                   " tag " + std::to_string(op.p2p.tag) + " expects " + std::to_string(rounded(op.p2p.bytes)) +
                                   " bytes but its send sends " + std::to_string(bytes));
        recv_size[l].push_back(bytes);
      }
  }

  ChakraProtoMsg::GlobalMetadata common;
  common.set_version(kChakraVersion);
  add(common.mutable_attr(), "schema").set_string_val(kChakraSchema);
  add(common.mutable_attr(), kTokensPerStep).set_double_val(p.tokens_per_step);
  add(common.mutable_attr(), kModelFlopsPerStep).set_double_val(p.model_flops_per_step);
  add(common.mutable_attr(), kProgramPrecision).set_string_val(to_string(p.precision));
  {
    int id = 1;
    for (const auto& comm : p.comms)
      for (size_t g = 0; g < comm.groups.size(); ++g)
        add(common.mutable_attr(), kPgCommPrefix + std::to_string(id++)).set_string_val(comm.name);
  }

  for (int r = 0; r < world; ++r) {
    auto [l, j] = place[static_cast<size_t>(r)];
    const Lane& lane = p.lanes[static_cast<size_t>(l)];
    ChakraProtoMsg::GlobalMetadata meta = common;
    add(meta.mutable_attr(), kLane).set_int64_val(l);
    add(meta.mutable_attr(), kReplica).set_int64_val(j);
    std::vector<Node> nodes(lane.ops.size());
    size_t recvs = 0;  // receives of this lane written so far (index into recv_size)
    for (size_t i = 0; i < lane.ops.size(); ++i) {
      const Op& op = lane.ops[i];
      const std::string at = where + ": lane " + std::to_string(l) + " op " + std::to_string(i);
      Node& n = nodes[i];
      n.set_id(i);
      n.set_name(op.label < p.labels.size() ? p.labels[op.label] : "op " + std::to_string(i));
      for (uint32_t d : op.deps) {
        if (d >= i) throw InputError(at, "depends on op " + std::to_string(d) + ", which does not come before it");
        n.add_data_deps(d);
      }
      auto* attrs = n.mutable_attr();
      // Host-side compute (Stream::Cpu) is a CPU op for Chakra's feeders; everything else a GPU op.
      add(attrs, "is_cpu_op").set_bool_val(op.kind == OpKind::Compute && op.stream == Stream::Cpu);
      add(attrs, kStream).set_string_val(to_string(op.stream));
      add(attrs, kCategory).set_string_val(to_string(op.category));
      switch (op.kind) {
        case OpKind::Compute:
        case OpKind::Memory: {
          const ComputeOp& c = op.compute;
          n.set_type(op.kind == OpKind::Compute ? ChakraProtoMsg::COMP_NODE : ChakraProtoMsg::MEM_LOAD_NODE);
          if (c.fixed_seconds >= 0) {
            n.set_duration_micros(rounded(c.fixed_seconds * 1e6));
            add(attrs, kFixedSeconds).set_double_val(c.fixed_seconds);
          }
          if (c.flops > 0) {
            add(attrs, "num_ops").set_uint64_val(rounded(c.flops));
            if (c.flops != std::floor(c.flops)) add(attrs, kFlops).set_double_val(c.flops);
          }
          if (c.hbm_bytes > 0) {
            add(attrs, "tensor_size").set_uint64_val(rounded(c.hbm_bytes));
            if (c.hbm_bytes != std::floor(c.hbm_bytes)) add(attrs, kHbmBytes).set_double_val(c.hbm_bytes);
          }
          add(attrs, kClass).set_string_val(to_string(c.cls));
          add(attrs, kPrecision).set_string_val(to_string(c.precision));
          if (c.m) add(attrs, kM).set_uint64_val(c.m);
          if (c.n) add(attrs, kN).set_uint64_val(c.n);
          if (c.k) add(attrs, kK).set_uint64_val(c.k);
          break;
        }
        case OpKind::Collective: {
          if (op.coll.comm >= p.comms.size()) throw InputError(at, "communicator " + std::to_string(op.coll.comm) + " does not exist");
          int pg = pg_of_rank[op.coll.comm][static_cast<size_t>(r)];
          if (pg < 0)
            throw InputError(at, "rank " + std::to_string(r) + " is in no group of communicator '" +
                                     p.comms[op.coll.comm].name + "'");
          n.set_type(ChakraProtoMsg::COMM_COLL_NODE);
          add(attrs, "comm_type").set_int64_val(chakra_comm_type(op.coll.type));
          add(attrs, "comm_size").set_int64_val(static_cast<int64_t>(rounded(op.coll.bytes)));
          add(attrs, "pg_name").set_string_val(std::to_string(pg));
          if (op.coll.max_nodes) add(attrs, kMaxNodes).set_uint32_val(op.coll.max_nodes);
          if (op.coll.matrix) {
            auto* list = add(attrs, kMatrix).mutable_double_list();
            for (double v : *op.coll.matrix) list->add_values(v);
          }
          break;
        }
        case OpKind::Send:
        case OpKind::Recv: {
          if (op.p2p.peer_lane >= p.lanes.size()) throw InputError(at, "peer lane " + std::to_string(op.p2p.peer_lane) + " does not exist");
          const Lane& peer = p.lanes[op.p2p.peer_lane];
          if (peer.ranks.size() != lane.ranks.size())
            throw InputError(at, "peer lane " + std::to_string(op.p2p.peer_lane) + " stands for " +
                                     std::to_string(peer.ranks.size()) + " ranks but this lane for " +
                                     std::to_string(lane.ranks.size()) + ": cannot pair replicas");
          int peer_rank = peer.ranks[static_cast<size_t>(j)];
          bool send = op.kind == OpKind::Send;
          n.set_type(send ? ChakraProtoMsg::COMM_SEND_NODE : ChakraProtoMsg::COMM_RECV_NODE);
          const uint64_t bytes = send ? rounded(op.p2p.bytes) : recv_size[static_cast<size_t>(l)][recvs++];
          add(attrs, "comm_size").set_int64_val(static_cast<int64_t>(bytes));
          set_int(add(attrs, "comm_src"), send ? r : peer_rank);
          set_int(add(attrs, "comm_dst"), send ? peer_rank : r);
          set_int(add(attrs, "comm_tag"), op.p2p.tag);
          break;
        }
      }
    }
    write_et_file(rank_path(prefix, r), meta, nodes);
  }
  // Files of a larger earlier export would be read as extra ranks.
  for (int r = world; std::filesystem::exists(rank_path(prefix, r)); ++r) std::filesystem::remove(rank_path(prefix, r));
  write_file_bytes(prefix + ".comm_groups.json", groups_json.dump(2) + "\n");
}

}  // namespace tcsim::workloads
