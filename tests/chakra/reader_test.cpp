// Reading the public Chakra traces of ASTRA-sim and Chakra (../shared/external, MANIFEST.tsv).
// Expected values were read off the files independently with
// `protoc --decode=ChakraProtoMsg.Node workloads/chakra/et_def.proto` on each record.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>

#include "test_util.hpp"
#include "workloads/chakra/chakra.hpp"

namespace tcsim::workloads {
namespace {

using namespace tcsim::testing;

/// The group of ranks a collective op of lane `lane` runs on.
std::vector<int> group_of(const Program& p, const Op& op, int lane) {
  for (const auto& g : p.comms.at(op.coll.comm).groups)
    if (std::find(g.begin(), g.end(), lane) != g.end()) return g;
  return {};
}

TEST(ChakraReader, AllReduce8RanksIsOneWorldAllReducePerRank) {
  // ASTRA-sim microbenchmark all_reduce/8npus_1MB: each rank holds one COMM_COLL_NODE
  // "all_reduce_8npus_1MB" with comm_type 0 (ALL_REDUCE) and comm_size 1048576 (int64_val),
  // no pg_name, so the group is all 8 ranks.
  Program p = read_chakra(kAllReduce8);
  ASSERT_EQ(p.world_size, 8);
  ASSERT_EQ(p.lanes.size(), 8u);
  ASSERT_EQ(p.comms.size(), 1u);
  EXPECT_EQ(p.comms[0].name, "world");
  EXPECT_EQ(p.comms[0].groups, (std::vector<std::vector<int>>{{0, 1, 2, 3, 4, 5, 6, 7}}));
  for (int r = 0; r < 8; ++r) {
    const Lane& lane = p.lanes[r];
    EXPECT_EQ(lane.ranks, std::vector<int>{r});
    ASSERT_EQ(lane.ops.size(), 1u);
    const Op& op = lane.ops[0];
    EXPECT_EQ(op.kind, OpKind::Collective);
    EXPECT_EQ(op.coll.type, CollectiveType::AllReduce);
    EXPECT_EQ(op.coll.bytes, 1048576.0);
    EXPECT_EQ(op.coll.comm, 0u);
    EXPECT_EQ(op.stream, Stream::DpComm);
    EXPECT_EQ(p.labels.at(op.label), "all_reduce_8npus_1MB");
  }
  EXPECT_NO_THROW(validate(p, kAllReduce8));
}

TEST(ChakraReader, AllToAll4Ranks) {
  // all_to_all/4npus_1MB: comm_type 6 (ALL_TO_ALL), comm_size 1048576 on each of 4 ranks.
  Program p = read_chakra(kAllToAll4);
  ASSERT_EQ(p.world_size, 4);
  for (const Lane& lane : p.lanes) {
    ASSERT_EQ(lane.ops.size(), 1u);
    EXPECT_EQ(lane.ops[0].coll.type, CollectiveType::AllToAll);
    EXPECT_EQ(lane.ops[0].coll.bytes, 1048576.0);
  }
  EXPECT_EQ(group_of(p, p.lanes[2].ops[0], 2), (std::vector<int>{0, 1, 2, 3}));
  EXPECT_NO_THROW(validate(p, kAllToAll4));
}

TEST(ChakraReader, SendRecvRingAllReduce8Ranks) {
  // custom_ring_allreduce_8npus_1MB: per rank 35 nodes in one data-dependency chain:
  // 14 COMM_SEND_NODE to rank r+1 and 14 COMM_RECV_NODE from rank r-1 (2(n-1) = 14 ring steps,
  // comm_size 131072 = 1 MiB / 8, comm_tag 0, attrs as int32_val) and 7 COMP_NODE of 7 us
  // (the reductions). Node 0 is a send, node 1 a receive depending on it, node 2 a 7 us compute.
  Program p = read_chakra(kRing8);
  ASSERT_EQ(p.world_size, 8);
  for (int r = 0; r < 8; ++r) {
    const Lane& lane = p.lanes[r];
    ASSERT_EQ(lane.ops.size(), 35u) << "rank " << r;
    int sends = 0, recvs = 0, comps = 0;
    for (size_t i = 0; i < lane.ops.size(); ++i) {
      const Op& op = lane.ops[i];
      if (i > 0) {
        EXPECT_EQ(op.deps, std::vector<uint32_t>{static_cast<uint32_t>(i - 1)}) << "chain at op " << i;
      }
      switch (op.kind) {
        case OpKind::Send:
          ++sends;
          EXPECT_EQ(op.p2p.peer_lane, static_cast<uint32_t>((r + 1) % 8));
          EXPECT_EQ(op.p2p.bytes, 131072.0);
          EXPECT_EQ(op.p2p.tag, 0u);
          EXPECT_EQ(op.stream, Stream::PpComm);
          break;
        case OpKind::Recv:
          ++recvs;
          EXPECT_EQ(op.p2p.peer_lane, static_cast<uint32_t>((r + 7) % 8));
          EXPECT_EQ(op.p2p.bytes, 131072.0);
          break;
        case OpKind::Compute:
          ++comps;
          EXPECT_DOUBLE_EQ(op.compute.fixed_seconds, 7e-6);
          EXPECT_EQ(op.compute.cls, ComputeClass::Fixed);
          break;
        default: ADD_FAILURE() << "unexpected op kind at " << i;
      }
    }
    EXPECT_EQ(sends, 14);
    EXPECT_EQ(recvs, 14);
    EXPECT_EQ(comps, 7);
    EXPECT_EQ(lane.ops[0].kind, OpKind::Send);
    EXPECT_EQ(lane.ops[1].kind, OpKind::Recv);
    EXPECT_EQ(p.labels.at(lane.ops[2].label), "COMP_NODE_tb0_step1");
  }
  EXPECT_TRUE(p.comms.empty());
  EXPECT_NO_THROW(validate(p, kRing8));
}

TEST(ChakraReader, PyTorchFeederTraceLoads) {
  // Chakra tests/data/feeder_tests_trace.tar.gz: one rank (chakra.0.et, schema 1.0.1),
  // 3,664 nodes: 3,643 COMP_NODE and 21 COMM_COLL_NODE. 14 of the collective nodes are the
  // host-side c10d:: calls (is_cpu_op true, no comm_type), which run as compute of their
  // duration like ASTRA-sim does; 7 are NCCL kernels: 5 ALL_REDUCE and 2 BROADCAST
  // (the first "ncclKernel_Broadcast_RING_LL_Sum_int8_t(...)", id 435, 212,480 bytes).
  // Its ctrl_deps point at dropped parent ops and close cycles with the data_deps, so the
  // file is ordered by data_deps only (181,878 of them, some pointing forward in the file).
  TempDir dir;
  std::string prefix = extract_feeder_trace(dir);
  Program p = read_chakra(prefix);
  ASSERT_EQ(p.world_size, 1);
  const Lane& lane = p.lanes[0];
  EXPECT_EQ(lane.ops.size(), 3664u);
  size_t compute = 0, all_reduce = 0, broadcast = 0, deps = 0;
  for (size_t i = 0; i < lane.ops.size(); ++i) {
    const Op& op = lane.ops[i];
    deps += op.deps.size();
    for (uint32_t d : op.deps) ASSERT_LT(d, i);
    if (op.kind == OpKind::Compute) ++compute;
    if (op.kind == OpKind::Collective) {
      if (op.coll.type == CollectiveType::AllReduce) ++all_reduce;
      if (op.coll.type == CollectiveType::Broadcast) ++broadcast;
      EXPECT_EQ(group_of(p, op, 0), std::vector<int>{0});
    }
  }
  EXPECT_EQ(compute, 3657u);
  EXPECT_EQ(all_reduce, 5u);
  EXPECT_EQ(broadcast, 2u);
  EXPECT_EQ(deps, 181878u);
  auto first_bcast = std::find_if(lane.ops.begin(), lane.ops.end(), [](const Op& op) {
    return op.kind == OpKind::Collective && op.coll.type == CollectiveType::Broadcast;
  });
  ASSERT_NE(first_bcast, lane.ops.end());
  EXPECT_EQ(first_bcast->coll.bytes, 212480.0);
  EXPECT_EQ(p.labels.at(first_bcast->label), "ncclKernel_Broadcast_RING_LL_Sum_int8_t(ncclDevComm*, unsigned long, ncclWork*)");
  EXPECT_NO_THROW(validate(p, prefix));
}

TEST(ChakraReader, GzipFileReadsLikePlain) {
  // Chakra's tools may gzip .et files (magic 1f 8b); rank 3 is compressed here.
  TempDir dir;
  std::string prefix = dir / "ring";
  copy_trace(kRing8, 8, prefix);
  std::string cmd = "gzip -c '" + prefix + ".3.et' > '" + prefix + ".3.et.gz' && mv '" + prefix + ".3.et.gz' '" + prefix + ".3.et'";
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  ASSERT_LT(std::filesystem::file_size(prefix + ".3.et"), 29581u);  // it is really compressed
  Program gz = read_chakra(prefix);
  Program plain = read_chakra(kRing8);
  ASSERT_EQ(gz.lanes[3].ops.size(), plain.lanes[3].ops.size());
  for (size_t i = 0; i < gz.lanes[3].ops.size(); ++i) {
    EXPECT_EQ(gz.lanes[3].ops[i].kind, plain.lanes[3].ops[i].kind);
    EXPECT_EQ(gz.lanes[3].ops[i].deps, plain.lanes[3].ops[i].deps);
  }
}

TEST(ChakraReader, MetadataNodesAreSkippedButKeepDependencies) {
  // Turn node 2 of every rank of the ring (a 7 us compute between a receive and a send)
  // into a METADATA_NODE: it disappears, and node 3 (the send) now depends on node 1.
  TempDir dir;
  std::string prefix = dir / "ring";
  copy_trace(kRing8, 8, prefix);
  for (int r = 0; r < 8; ++r)
    edit_rank(prefix, r, [](chakra::EtFile& f) { f.nodes[2].set_type(ChakraProtoMsg::METADATA_NODE); });
  Program p = read_chakra(prefix);
  const Lane& lane = p.lanes[0];
  ASSERT_EQ(lane.ops.size(), 34u);
  EXPECT_EQ(lane.ops[1].kind, OpKind::Recv);
  EXPECT_EQ(lane.ops[2].kind, OpKind::Send);
  EXPECT_EQ(lane.ops[2].deps, std::vector<uint32_t>{1});
}

TEST(ChakraReader, AttributesInUnsignedFormAreAccepted) {
  // Traces in the wild write comm_size as uint64_val and comm_type as uint32_val.
  TempDir dir;
  std::string prefix = dir / "ar";
  copy_trace(kAllReduce8, 8, prefix);
  for (int r = 0; r < 8; ++r)
    edit_rank(prefix, r, [](chakra::EtFile& f) {
      for (auto& a : *f.nodes[0].mutable_attr()) {
        if (a.name() == "comm_size") a.set_uint64_val(3u << 30);  // 3 GiB: past int32
        if (a.name() == "comm_type") a.set_uint32_val(ChakraProtoMsg::ALL_GATHER);
      }
    });
  Program p = read_chakra(prefix);
  EXPECT_EQ(p.lanes[5].ops[0].coll.type, CollectiveType::AllGather);
  EXPECT_EQ(p.lanes[5].ops[0].coll.bytes, 3221225472.0);
}

TEST(ChakraReader, ProcessGroupsFromPgName) {
  // pg_name "1" on ranks 0-3 and "2" on ranks 4-7: two groups of four, derived from which
  // ranks use each name (no comm_groups.json).
  TempDir dir;
  std::string prefix = dir / "ar";
  copy_trace(kAllReduce8, 8, prefix);
  for (int r = 0; r < 8; ++r)
    edit_rank(prefix, r, [r](chakra::EtFile& f) {
      auto* a = f.nodes[0].add_attr();
      a->set_name("pg_name");
      a->set_string_val(r < 4 ? "1" : "2");
    });
  Program p = read_chakra(prefix);
  ASSERT_EQ(p.comms.size(), 2u);
  EXPECT_EQ(p.comms[0].groups, (std::vector<std::vector<int>>{{0, 1, 2, 3}}));
  EXPECT_EQ(p.comms[1].groups, (std::vector<std::vector<int>>{{4, 5, 6, 7}}));
  EXPECT_EQ(p.lanes[6].ops[0].coll.comm, 1u);
  EXPECT_NO_THROW(validate(p, prefix));
}


TEST(ChakraReader, HostSideOpsRunOnTheCpuStream) {
  // The feeder trace's is_cpu_op nodes (PyTorch CPU ops and the 14 host-side c10d:: calls)
  // go to Stream::Cpu, so they overlap GPU kernels as in ASTRA-sim (one CPU op and one GPU
  // compute op in flight); GPU kernels and the 7 NCCL collectives stay on their streams.
  TempDir dir;
  Program p = read_chakra(extract_feeder_trace(dir));
  size_t cpu = 0, gpu_compute = 0;
  for (const Op& op : p.lanes[0].ops) {
    if (op.stream == Stream::Cpu) {
      ++cpu;
      EXPECT_EQ(op.kind, OpKind::Compute);
    } else if (op.kind == OpKind::Compute) {
      ++gpu_compute;
    }
    if (op.kind == OpKind::Collective) {
      EXPECT_EQ(op.stream, Stream::DpComm);
    }
  }
  EXPECT_GE(cpu, 14u);
  EXPECT_GT(gpu_compute, 0u);
  EXPECT_EQ(cpu + gpu_compute, 3657u);
  EXPECT_STREQ(to_string(Stream::Cpu), "cpu");
  // Written back, they are CPU ops for Chakra's feeders and read back onto the Cpu stream.
  write_chakra(p, dir / "copy");
  Program back = read_chakra(dir / "copy");
  size_t cpu_back = 0;
  for (const Op& op : back.lanes[0].ops) cpu_back += op.stream == Stream::Cpu;
  EXPECT_EQ(cpu_back, cpu);
}

}  // namespace
}  // namespace tcsim::workloads
