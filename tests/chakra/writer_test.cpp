// Writing Chakra traces: a program written and read back has the same structure, the files
// follow the conventions of Chakra's feeder, and external traces survive a round trip.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <tuple>

#include <nlohmann/json.hpp>

#include "core/error.hpp"
#include "core/overrides.hpp"
#include "test_util.hpp"
#include "workloads/chakra/chakra.hpp"
#include "workloads/generator.hpp"
#include "workloads/model.hpp"

namespace tcsim::workloads {
namespace {

using namespace tcsim::testing;

/// A folded 4-rank program: lane 0 stands for ranks {0,1}, lane 1 for {2,3}; "tp" pairs
/// {0,1},{2,3}, "dp" pairs {0,2},{1,3}; lane 0 sends to lane 1 (rank 0 -> 2, 1 -> 3).
Program folded_program() {
  Program p;
  p.world_size = 4;
  p.tokens_per_step = 4096;
  p.model_flops_per_step = 1.5e15;
  p.precision = Precision::FP8;
  p.comms = {{"tp", {{0, 1}, {2, 3}}}, {"dp", {{0, 2}, {1, 3}}}};
  p.lanes.resize(2);
  p.lanes[0].ranks = {0, 1};
  p.lanes[1].ranks = {2, 3};
  const auto* matrix = p.add_matrix({0, 4194304, 4194304, 0});
  auto add = [&](int lane, Op op, const std::string& label) {
    op.label = p.label(label);
    p.lanes[lane].ops.push_back(std::move(op));
  };
  Op gemm;
  gemm.compute.flops = 1e12;
  gemm.compute.hbm_bytes = 2e9;
  gemm.compute.m = 4096, gemm.compute.n = 7168, gemm.compute.k = 2048;
  gemm.compute.precision = Precision::FP8;
  add(0, gemm, "fwd.gemm");
  Op tp;
  tp.kind = OpKind::Collective, tp.stream = Stream::TpComm, tp.category = CommCategory::TpAllReduce;
  tp.coll.comm = 0, tp.coll.bytes = 67108864, tp.deps = {0};
  add(0, tp, "fwd.tp_all_reduce");
  Op send;
  send.kind = OpKind::Send, send.stream = Stream::PpComm, send.category = CommCategory::PpP2P;
  send.p2p = {1, 16777216, 7};
  send.deps = {1};
  add(0, send, "fwd.pp_send");
  Op mem;
  mem.kind = OpKind::Memory, mem.stream = Stream::Memory, mem.compute.hbm_bytes = 1e9, mem.deps = {0};
  mem.compute.cls = ComputeClass::Elementwise;
  add(0, mem, "offload");
  Op fixed;
  fixed.compute.fixed_seconds = 12.5e-6, fixed.compute.cls = ComputeClass::Fixed, fixed.deps = {2, 3};
  add(0, fixed, "optimizer");
  Op a2a;
  a2a.kind = OpKind::Collective, a2a.stream = Stream::EpComm, a2a.category = CommCategory::EpAllToAll;
  a2a.coll.type = CollectiveType::AllToAll, a2a.coll.comm = 1, a2a.coll.bytes = 8388608;
  a2a.coll.matrix = matrix, a2a.coll.max_nodes = 1, a2a.deps = {4};
  add(0, a2a, "moe.dispatch");

  Op recv = send;
  recv.kind = OpKind::Recv, recv.p2p.peer_lane = 0, recv.deps = {};
  add(1, recv, "fwd.pp_recv");
  Op elem;
  elem.compute.flops = 3.3e11 + 0.5, elem.compute.hbm_bytes = 1e8 + 0.25, elem.compute.cls = ComputeClass::Elementwise;
  elem.deps = {0};
  add(1, elem, "norm");
  tp.deps = {1};
  add(1, tp, "fwd.tp_all_reduce");
  a2a.deps = {2};
  add(1, a2a, "moe.dispatch");
  return p;
}

const std::vector<int>* group_with(const Program& p, uint32_t comm, int rank) {
  for (const auto& g : p.comms.at(comm).groups)
    if (std::find(g.begin(), g.end(), rank) != g.end()) return &g;
  return nullptr;
}

/// The size of the message each send and receive of `p` moves, per lane and op (0 for other
/// ops): a send's own bytes; a receive's those of the send it matches, per (source lane,
/// destination lane, tag) in issue order. Programs keep sizes on sends (the generator's
/// receives carry 0 bytes); Chakra puts it on both nodes (comm_size).
std::vector<std::vector<double>> message_sizes(const Program& p) {
  std::map<std::tuple<size_t, uint32_t, uint32_t>, std::vector<double>> sent;
  for (size_t l = 0; l < p.lanes.size(); ++l)
    for (const Op& op : p.lanes[l].ops)
      if (op.kind == OpKind::Send) sent[{l, op.p2p.peer_lane, op.p2p.tag}].push_back(op.p2p.bytes);
  std::map<std::tuple<size_t, uint32_t, uint32_t>, size_t> taken;
  std::vector<std::vector<double>> sizes(p.lanes.size());
  for (size_t l = 0; l < p.lanes.size(); ++l)
    for (const Op& op : p.lanes[l].ops) {
      double b = 0;
      if (op.kind == OpKind::Send) b = op.p2p.bytes;
      if (op.kind == OpKind::Recv) {
        std::tuple<size_t, uint32_t, uint32_t> key{op.p2p.peer_lane, static_cast<uint32_t>(l), op.p2p.tag};
        b = sent.at(key).at(taken[key]++);
      }
      sizes[l].push_back(b);
    }
  return sizes;
}

/// Checks that `got` (unfolded, lane = rank) is `want` unfolded. Sends and receives both carry
/// their message's size.
void expect_same_structure(const Program& want, const Program& got) {
  const auto want_sizes = message_sizes(want);
  ASSERT_EQ(got.world_size, want.world_size);
  ASSERT_EQ(got.lanes.size(), static_cast<size_t>(want.world_size));
  for (size_t l = 0; l < want.lanes.size(); ++l) {
    for (size_t j = 0; j < want.lanes[l].ranks.size(); ++j) {
      int r = want.lanes[l].ranks[j];
      SCOPED_TRACE("rank " + std::to_string(r));
      const auto& wops = want.lanes[l].ops;
      const auto& gops = got.lanes[static_cast<size_t>(r)].ops;
      EXPECT_EQ(got.lanes[static_cast<size_t>(r)].ranks, std::vector<int>{r});
      ASSERT_EQ(gops.size(), wops.size());
      for (size_t i = 0; i < wops.size(); ++i) {
        SCOPED_TRACE("op " + std::to_string(i));
        const Op &w = wops[i], &g = gops[i];
        EXPECT_EQ(g.kind, w.kind);
        EXPECT_EQ(g.stream, w.stream);
        EXPECT_EQ(g.category, w.category);
        EXPECT_EQ(got.labels.at(g.label), want.labels.at(w.label));
        auto sorted = [](const Deps& d) {
          std::vector<uint32_t> v(d.begin(), d.end());
          std::sort(v.begin(), v.end());
          v.erase(std::unique(v.begin(), v.end()), v.end());
          return v;
        };
        EXPECT_EQ(sorted(g.deps), sorted(w.deps));  // a set: the reader lists them once, ascending
        if (w.kind == OpKind::Compute || w.kind == OpKind::Memory) {
          EXPECT_EQ(g.compute.flops, w.compute.flops);
          EXPECT_EQ(g.compute.hbm_bytes, w.compute.hbm_bytes);
          EXPECT_EQ(g.compute.fixed_seconds, w.compute.fixed_seconds);
          EXPECT_EQ(g.compute.cls, w.compute.cls);
          EXPECT_EQ(g.compute.precision, w.compute.precision);
          EXPECT_EQ(g.compute.m, w.compute.m);
          EXPECT_EQ(g.compute.n, w.compute.n);
          EXPECT_EQ(g.compute.k, w.compute.k);
        } else if (w.kind == OpKind::Collective) {
          EXPECT_EQ(g.coll.type, w.coll.type);
          EXPECT_EQ(g.coll.bytes, w.coll.bytes);
          EXPECT_EQ(got.comms.at(g.coll.comm).name, want.comms.at(w.coll.comm).name);
          ASSERT_NE(group_with(got, g.coll.comm, r), nullptr);
          EXPECT_EQ(*group_with(got, g.coll.comm, r), *group_with(want, w.coll.comm, r));
          EXPECT_EQ(g.coll.max_nodes, w.coll.max_nodes);
          EXPECT_EQ(g.coll.matrix == nullptr, w.coll.matrix == nullptr);
          if (w.coll.matrix && g.coll.matrix) {
            EXPECT_EQ(*g.coll.matrix, *w.coll.matrix);
          }
        } else {
          EXPECT_EQ(g.p2p.peer_lane, static_cast<uint32_t>(want.lanes[w.p2p.peer_lane].ranks[j]));
          EXPECT_EQ(g.p2p.bytes, want_sizes[l][i]);
          EXPECT_EQ(g.p2p.tag, w.p2p.tag);
        }
      }
    }
  }
}

TEST(ChakraWriter, FoldedProgramRoundTrips) {
  TempDir dir;
  Program want = folded_program();
  ASSERT_NO_THROW(validate(want, "folded_program"));
  write_chakra(want, dir / "step");
  Program got = read_chakra(dir / "step");
  expect_same_structure(want, got);
  // The communicators come back whole (groups in order), not one per process group.
  ASSERT_EQ(got.comms.size(), 2u);
  EXPECT_EQ(got.comms[0].name, "tp");
  EXPECT_EQ(got.comms[0].groups, want.comms[0].groups);
  EXPECT_EQ(got.comms[1].name, "dp");
  EXPECT_EQ(got.comms[1].groups, want.comms[1].groups);
  EXPECT_EQ(got.tokens_per_step, 4096);
  EXPECT_EQ(got.model_flops_per_step, 1.5e15);
  EXPECT_EQ(got.precision, Precision::FP8);
  EXPECT_NO_THROW(validate(got, dir / "step"));
}

TEST(ChakraWriter, FilesFollowChakraFeederConventions) {
  TempDir dir;
  write_chakra(folded_program(), dir / "step");
  // Rank 3 is replica 1 of lane 1: recv from rank 1, then norm, tp all-reduce on {2,3}
  // (process group 2), all-to-all on {1,3} (process group 4).
  auto f = chakra::read_et_file(dir / "step.3.et");
  EXPECT_EQ(f.meta.version(), "0.0.4");
  ASSERT_EQ(f.nodes.size(), 4u);
  for (size_t i = 0; i < f.nodes.size(); ++i) {
    EXPECT_EQ(f.nodes[i].id(), i);  // unique, in order
    const auto& attrs = f.nodes[i].attr();
    auto it = std::find_if(attrs.begin(), attrs.end(), [](const auto& a) { return a.name() == "is_cpu_op"; });
    ASSERT_NE(it, attrs.end());
    EXPECT_TRUE(it->has_bool_val());
    EXPECT_FALSE(it->bool_val());
  }
  auto attr = [](const ChakraProtoMsg::Node& n, const std::string& name) {
    for (const auto& a : n.attr())
      if (a.name() == name) return a;
    ADD_FAILURE() << "no attribute " << name << " on node " << n.id();
    return ChakraProtoMsg::AttributeProto();
  };
  EXPECT_EQ(f.nodes[0].type(), ChakraProtoMsg::COMM_RECV_NODE);
  EXPECT_EQ(attr(f.nodes[0], "comm_src").int32_val(), 1);
  EXPECT_EQ(attr(f.nodes[0], "comm_dst").int32_val(), 3);
  EXPECT_EQ(attr(f.nodes[0], "comm_tag").int32_val(), 7);
  EXPECT_EQ(attr(f.nodes[0], "comm_size").int64_val(), 16777216);
  EXPECT_EQ(f.nodes[1].type(), ChakraProtoMsg::COMP_NODE);
  EXPECT_EQ(attr(f.nodes[1], "num_ops").uint64_val(), 330000000001u);  // 3.3e11 + 0.5, rounded
  EXPECT_EQ(std::vector<uint64_t>(f.nodes[1].data_deps().begin(), f.nodes[1].data_deps().end()), std::vector<uint64_t>{0});
  EXPECT_EQ(f.nodes[2].type(), ChakraProtoMsg::COMM_COLL_NODE);
  EXPECT_EQ(attr(f.nodes[2], "comm_type").int64_val(), ChakraProtoMsg::ALL_REDUCE);
  EXPECT_EQ(attr(f.nodes[2], "comm_size").int64_val(), 67108864);
  EXPECT_EQ(attr(f.nodes[2], "pg_name").string_val(), "2");
  EXPECT_EQ(attr(f.nodes[3], "comm_type").int64_val(), ChakraProtoMsg::ALL_TO_ALL);
  EXPECT_EQ(attr(f.nodes[3], "pg_name").string_val(), "4");
  // Fixed durations go to duration_micros (rank 0's optimizer step: 12.5 us -> 13).
  auto f0 = chakra::read_et_file(dir / "step.0.et");
  EXPECT_EQ(f0.nodes[4].duration_micros(), 13u);
  // ASTRA-sim's --comm-group-configuration file.
  std::ifstream in(dir / "step.comm_groups.json");
  auto j = nlohmann::json::parse(in);
  EXPECT_EQ(j, nlohmann::json::parse(R"({"1":[0,1],"2":[2,3],"3":[0,2],"4":[1,3]})"));
}

TEST(ChakraWriter, ExternalTracesRoundTrip) {
  // Read -> write -> read keeps every op, dependency, size and peer of the ASTRA-sim ring
  // and of Chakra's PyTorch trace.
  TempDir dir;
  std::string feeder = extract_feeder_trace(dir);
  for (const std::string& src : {kRing8, kAllReduce8, feeder}) {
    SCOPED_TRACE(src);
    Program first = read_chakra(src);
    write_chakra(first, dir / "copy");
    Program second = read_chakra(dir / "copy");
    expect_same_structure(first, second);
  }
}

TEST(ChakraWriter, GeneratedWorkloadsRoundTrip) {
  // The generator's folded programs (one lane for all ranks) export to one file per rank and
  // read back unfolded with the same ops, dependencies, sizes and groups.
  for (auto [name, gpus] : {std::pair<const char*, int>{"moe-demo", 16}, {"dense-demo", 8}}) {
    SCOPED_TRACE(name);
    TempDir dir;
    Program want = generate(find_workload(name, "test"), gpus);
    write_chakra(want, dir / "w");
    Program got = read_chakra(dir / "w");
    expect_same_structure(want, got);
    EXPECT_EQ(got.tokens_per_step, want.tokens_per_step);
    EXPECT_EQ(got.model_flops_per_step, want.model_flops_per_step);
    EXPECT_NO_THROW(validate(got, dir / "w"));
  }
}

/// The workload `name` with `sets` applied, generated for `gpus` GPUs.
Program generate_with(const std::string& name, int gpus, const std::vector<std::string>& sets) {
  auto w = find_workload(name, "test");
  core::Overrides o;
  for (const auto& s : sets) o.add(s, "test");
  apply_workload_overrides(w, o);
  return generate(w, gpus);
}

TEST(ChakraWriter, PipelineReceivesCarryTheSizeOfTheirSend) {
  // Pipeline-parallel workloads exchange activations and gradients with sends and receives.
  // The generator keeps a message's size on its send (receives carry 0 bytes); a Chakra
  // receive node needs it in comm_size (ASTRA-sim posts the receive with it), and
  // read_chakra refuses a receive whose size is not its send's. Exported, such a workload
  // must read back whole, its receives sized like their sends.
  struct Case {
    const char* name;
    int gpus;
    std::vector<std::string> sets;
  };
  const std::vector<Case> cases = {
      {"moe-demo", 16, {"plan.pp=2"}},
      {"dense-demo", 8, {"plan.pp=2", "plan.schedule=interleaved-1f1b", "plan.virtual_stages=2"}},
      {"dense-demo", 8, {"plan.pp=4", "plan.schedule=1f1b"}},
  };
  for (const auto& c : cases) {
    std::string what = std::string(c.name) + " on " + std::to_string(c.gpus);
    for (const auto& s : c.sets) what += " " + s;
    SCOPED_TRACE(what);
    Program want = generate_with(c.name, c.gpus, c.sets);
    size_t recvs = 0;
    for (const auto& lane : want.lanes)
      for (const Op& op : lane.ops) recvs += op.kind == OpKind::Recv;
    ASSERT_GT(recvs, 0u) << "the case has no pipeline receives";
    TempDir dir;
    write_chakra(want, dir / "w");
    // Every receive node on disk has the comm_size of its send.
    ChakraSummary sum = summarize_chakra(dir / "w");
    EXPECT_THAT(sum.fatal, ::testing::IsEmpty());
    ASSERT_TRUE(sum.collectives.count("SEND") && sum.collectives.count("RECV"));
    EXPECT_EQ(sum.collectives.at("RECV").count, sum.collectives.at("SEND").count);
    EXPECT_GT(sum.collectives.at("RECV").bytes, 0);
    EXPECT_EQ(sum.collectives.at("RECV").bytes, sum.collectives.at("SEND").bytes);
    Program got;
    ASSERT_NO_THROW(got = read_chakra(dir / "w"));
    expect_same_structure(want, got);
    EXPECT_NO_THROW(validate(got, dir / "w"));
  }
}

TEST(ChakraWriter, RejectsReceivesItCannotSize) {
  TempDir dir;
  auto expect_refused = [&](const Program& p, const std::string& message) {
    try {
      write_chakra(p, dir / "t");
      FAIL() << "expected InputError: " << message;
    } catch (const core::InputError& e) {
      EXPECT_THAT(std::string(e.what()), ::testing::HasSubstr(message));
    }
  };
  // A receive of a different size than its send: the trace would not replay.
  Program other_size = folded_program();
  other_size.lanes[1].ops[0].p2p.bytes = 1024;
  expect_refused(other_size, "lane 1 op 0: receive #1 from lane 0 tag 7 expects 1024 bytes but its send sends 16777216");
  // A receive without a send has no size to write.
  Program no_send = folded_program();
  no_send.lanes[1].ops[0].p2p.tag = 8;
  expect_refused(no_send, "lane 1 op 0: receive #1 from lane 0 tag 8 has no matching send");
}

TEST(ChakraWriter, RemovesStaleRankFilesOfALargerExport) {
  TempDir dir;
  write_chakra(read_chakra(kRing8), dir / "t");
  write_chakra(folded_program(), dir / "t");
  EXPECT_EQ(read_chakra(dir / "t").world_size, 4);
  EXPECT_FALSE(std::filesystem::exists(dir / "t.4.et"));
}

TEST(ChakraWriter, RejectsPeersWithDifferentReplicaCounts) {
  TempDir dir;
  Program p = folded_program();
  p.world_size = 5;
  p.lanes[1].ranks = {2, 3, 4};
  try {
    write_chakra(p, dir / "t");
    FAIL() << "expected InputError";
  } catch (const core::InputError& e) {
    EXPECT_THAT(std::string(e.what()), ::testing::HasSubstr("lane 0 op 2: peer lane 1 stands for 3 ranks but this lane for 2"));
  }
}

}  // namespace
}  // namespace tcsim::workloads
