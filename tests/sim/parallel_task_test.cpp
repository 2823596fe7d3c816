// Sparse sets of pairs cut into parallel tasks of bounded size (sim/parallel_task.hpp): every pair
// in exactly one task with its bytes, dense sets left whole, and a folded send that is cut
// takes the same time as one task on an idle network.
#include <gtest/gtest.h>

#include <map>
#include <tuple>
#include <vector>

#include "sim/parallel_task.hpp"
#include "sim_test_util.hpp"

using namespace tcsim;
using sim::HostPair;
using sim::TaskSpec;

namespace {

// Distinct host pointers that are never dereferenced (pack_tasks only copies them).
std::vector<simgrid::s4u::Host*> fake_hosts(size_t n) {
  static std::vector<char> storage(100000);
  std::vector<simgrid::s4u::Host*> hosts;
  for (size_t i = 0; i < n; ++i) hosts.push_back(reinterpret_cast<simgrid::s4u::Host*>(&storage[i]));
  return hosts;
}

// (from host, to host) -> bytes summed over every task, and checks each matrix's shape.
std::map<std::pair<void*, void*>, double> flatten(const std::vector<TaskSpec>& tasks) {
  std::map<std::pair<void*, void*>, double> out;
  for (const auto& t : tasks) {
    const size_t k = t.hosts.size();
    EXPECT_EQ(t.bytes.size(), k * k);
    for (size_t i = 0; i < k; ++i)
      for (size_t j = 0; j < k; ++j)
        if (t.bytes[i * k + j] != 0) out[{t.hosts[i], t.hosts[j]}] += t.bytes[i * k + j];
  }
  return out;
}

// The tasks for pairs over hosts, at most 32 hosts each.
std::vector<TaskSpec> pack32(const std::vector<simgrid::s4u::Host*>& hosts, const std::vector<HostPair>& pairs) {
  std::vector<TaskSpec> tasks;
  sim::pack_tasks(hosts, pairs, 32, tasks);
  return tasks;
}

}  // namespace

TEST(PackTasks, ReplicaPairsAreCutIntoTasksOfAtMost32Hosts) {
  // A send between folded lanes of 128 replicas: pair i goes from host 2i to host 2i+1.
  auto hosts = fake_hosts(256);
  std::vector<HostPair> pairs;
  for (uint32_t i = 0; i < 128; ++i) pairs.push_back({2 * i, 2 * i + 1, 1.0 + i});
  auto tasks = pack32(hosts, pairs);
  ASSERT_EQ(tasks.size(), 8u);
  for (const auto& t : tasks) EXPECT_EQ(t.hosts.size(), 32u);
  auto flat = flatten(tasks);
  ASSERT_EQ(flat.size(), 128u);
  for (uint32_t i = 0; i < 128; ++i) EXPECT_EQ((flat[{hosts[2 * i], hosts[2 * i + 1]}]), 1.0 + i);
}

TEST(PackTasks, DenseAndSmallSetsStayOneTask) {
  // An all-to-all among 64 hosts: 4,032 pairs, more than two per host.
  auto hosts = fake_hosts(64);
  std::vector<HostPair> dense;
  for (uint32_t i = 0; i < 64; ++i)
    for (uint32_t j = 0; j < 64; ++j)
      if (i != j) dense.push_back({i, j, 1.0});
  auto tasks = pack32(hosts, dense);
  ASSERT_EQ(tasks.size(), 1u);
  EXPECT_EQ(tasks[0].hosts.size(), 64u);
  // 20 hosts under the limit, and pairs of the same hosts adding up.
  tasks = pack32(fake_hosts(20), {{0, 1, 2.0}, {2, 3, 1.0}, {0, 1, 3.0}});
  ASSERT_EQ(tasks.size(), 1u);
  EXPECT_EQ(tasks[0].hosts.size(), 4u);  // hosts in no pair are left out
  EXPECT_EQ(tasks[0].bytes[0 * 4 + 1], 5.0);
}

TEST(PackTasks, APathIsCutWithEveryLinkInOneTask) {
  // A path of 100 links, one pair per link (as in a link form): consecutive pairs share a
  // host, so a task of 32 hosts holds 31 of them.
  auto hosts = fake_hosts(101);
  std::vector<HostPair> path;
  for (uint32_t i = 0; i < 100; ++i) path.push_back({i, i + 1, 10.0});
  auto tasks = pack32(hosts, path);
  ASSERT_EQ(tasks.size(), 4u);
  for (const auto& t : tasks) EXPECT_LE(t.hosts.size(), 32u);
  auto flat = flatten(tasks);
  ASSERT_EQ(flat.size(), 100u);
  for (uint32_t i = 0; i < 100; ++i) EXPECT_EQ((flat[{hosts[i], hosts[i + 1]}]), 10.0);
}

TEST(PackTasks, FoldedSendCutIntoTasksTakesTheOneTaskTime) {
  // Two lanes of 64 ranks (nodes 0-7 and 8-15): one send of 64 MiB per replica pair
  // crosses the fabric on 64 NICs at once. Cut into 4 tasks of 32 hosts (default) or one
  // task of 128: on an idle network both take the time of one NIC's transfer.
  auto xml = simtest::make_platform("H800", 16);
  workloads::Program p = simtest::send_recv_program(1e12, 64.0 * 1048576);
  p.world_size = 128;
  p.lanes[0].ranks.clear();
  p.lanes[1].ranks.clear();
  for (int r = 0; r < 64; ++r) {
    p.lanes[0].ranks.push_back(r);
    p.lanes[1].ranks.push_back(64 + r);
  }
  auto run = [&](size_t task_hosts) {
    return simtest::in_child([&] {
      sim::ExecutorOptions o;
      o.memoize = false;  // real parallel tasks, not the closed-form timer
      o.task_hosts = task_hosts;
      auto t = simtest::run_program(xml, p, {}, o);
      return std::vector<double>{t.step_time, static_cast<double>(t.ptasks)};
    });
  };
  auto cut = run(32);
  auto whole = run(1000);
  EXPECT_EQ(cut[1], 4);
  EXPECT_EQ(whole[1], 1);
  EXPECT_NEAR(cut[0], whole[0], 1e-12 * whole[0]);
  EXPECT_GT(cut[0], 64.0 * 1048576 / 50e9);  // more than the bytes over a 400 Gb/s NIC alone
}

TEST(PackTasks, LargeSparsePhaseIsCutIntoTasksOfWholeTransfersWithTheOneTaskTime) {
  // A ring all-reduce over one GPU of each of 32 nodes (a data-parallel group under TP8):
  // every ring step is 32 transfers among 32 hosts, each on a different node. With the
  // split threshold at 16 hosts (128 by default: a DP256 ring at 32,768 GPUs), such a
  // sparse phase is cut into tasks of at most 16 hosts holding whole transfers along the
  // ring (it was one task per (source node, destination node) block: 32 tasks here, 256
  // per step for DP256). On an idle network it takes the time of the phase as one task.
  auto xml = simtest::make_platform("H800", 32);
  workloads::Program p;
  p.world_size = 256;
  workloads::Lane lane;
  for (int r = 0; r < 256; r += 8) lane.ranks.push_back(r);
  p.comms = {{"dp", {lane.ranks}}};
  workloads::Op ar;
  ar.kind = workloads::OpKind::Collective;
  ar.stream = workloads::Stream::DpComm;
  ar.coll.type = workloads::CollectiveType::AllReduce;
  ar.coll.comm = 0;
  ar.coll.bytes = 64.0 * 1048576;
  lane.ops = {ar};
  p.lanes = {lane};
  auto run = [&](size_t split_above_hosts) {
    return simtest::in_child([&] {
      sim::ExecutorOptions o;
      o.memoize = false;  // real parallel tasks, not the closed-form timer
      o.split_above_hosts = split_above_hosts;
      auto t = simtest::run_program(xml, p, {"sim.algo.all_reduce=ring"}, o);
      return std::vector<double>{t.step_time, static_cast<double>(t.ptasks)};
    });
  };
  auto cut = run(16);
  auto whole = run(1000);
  EXPECT_EQ(whole[1], 1);
  EXPECT_EQ(cut[1], 3);  // 15 + 15 + 2 transfers: a task of 16 hosts holds 15 ring links
  EXPECT_NEAR(cut[0], whole[0], 1e-12 * whole[0]);
  // 2 x 31/32 of 64 MiB over one 400 Gb/s NIC at least.
  EXPECT_GT(cut[0], 2 * 31.0 / 32 * 64.0 * 1048576 / 50e9);
}
