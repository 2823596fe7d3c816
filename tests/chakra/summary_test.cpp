// `tcsim trace show` data: node counts, communication by type, critical path, problems.
// Expected values were computed independently from `protoc --decode` dumps of the files.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "test_util.hpp"
#include "workloads/chakra/chakra.hpp"

namespace tcsim::workloads {
namespace {

using namespace tcsim::testing;

TEST(ChakraSummary, AllReduceMicrobenchmark) {
  ChakraSummary s = summarize_chakra(kAllReduce8);
  EXPECT_EQ(s.schema, "0.0.4");  // GlobalMetadata.version; no "schema" attribute
  ASSERT_EQ(s.ranks.size(), 8u);
  for (const auto& r : s.ranks) {
    EXPECT_EQ(r.nodes, 1u);
    EXPECT_EQ(r.by_type.at("COMM_COLL_NODE"), 1u);
    EXPECT_EQ(r.critical_path_us, 0);  // no duration_micros in the file
  }
  ASSERT_EQ(s.collectives.size(), 1u);
  EXPECT_EQ(s.collectives.at("ALL_REDUCE").count, 8u);
  EXPECT_EQ(s.collectives.at("ALL_REDUCE").bytes, 8 * 1048576.0);
  EXPECT_EQ(s.process_groups.at("(all ranks)"), (std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7}));
  EXPECT_TRUE(s.fatal.empty());
  EXPECT_TRUE(s.warnings.empty());
}

TEST(ChakraSummary, RingCriticalPathIsTheChainOfReductions) {
  // Each rank is one chain of 35 nodes; only the 7 reductions have a duration (7 us each):
  // critical path 7 x 7 = 49 us over 35 nodes. 8 ranks x 14 sends of 131,072 bytes.
  ChakraSummary s = summarize_chakra(kRing8);
  EXPECT_EQ(s.schema, "1.0.2-chakra.0.0.4");
  ASSERT_EQ(s.ranks.size(), 8u);
  EXPECT_EQ(s.ranks[6].by_type.at("COMM_SEND_NODE"), 14u);
  EXPECT_EQ(s.ranks[6].by_type.at("COMM_RECV_NODE"), 14u);
  EXPECT_EQ(s.ranks[6].by_type.at("COMP_NODE"), 7u);
  EXPECT_EQ(s.ranks[6].critical_path_us, 49);
  EXPECT_EQ(s.ranks[6].critical_path_nodes, 35u);
  EXPECT_EQ(s.critical_path_us, 49);
  EXPECT_EQ(s.collectives.at("SEND").count, 112u);
  EXPECT_EQ(s.collectives.at("SEND").bytes, 112 * 131072.0);
  EXPECT_EQ(s.collectives.at("RECV").count, 112u);
  EXPECT_TRUE(s.fatal.empty());
}

TEST(ChakraSummary, FeederTraceReportsItsControlDependencyProblems) {
  // feeder_tests_trace: 3,643 COMP_NODE + 21 COMM_COLL_NODE; NCCL kernels: 5 ALL_REDUCE
  // (102,228,128 bytes in all) and 2 BROADCAST (212,904 bytes). 1,277 ctrl_deps name nodes
  // that are not in the file, and the rest close cycles with data_deps, so the file is
  // ordered by data_deps: the longest chain of duration_micros is then 46,140 us.
  TempDir dir;
  ChakraSummary s = summarize_chakra(extract_feeder_trace(dir));
  EXPECT_EQ(s.schema, "1.0.1");
  ASSERT_EQ(s.ranks.size(), 1u);
  EXPECT_EQ(s.ranks[0].nodes, 3664u);
  EXPECT_EQ(s.ranks[0].by_type.at("COMP_NODE"), 3643u);
  EXPECT_EQ(s.ranks[0].by_type.at("COMM_COLL_NODE"), 21u);
  EXPECT_EQ(s.collectives.at("ALL_REDUCE").count, 5u);
  EXPECT_EQ(s.collectives.at("ALL_REDUCE").bytes, 102228128.0);
  EXPECT_EQ(s.collectives.at("BROADCAST").count, 2u);
  EXPECT_EQ(s.collectives.at("BROADCAST").bytes, 212904.0);
  EXPECT_EQ(s.critical_path_us, 46140);
  EXPECT_TRUE(s.fatal.empty());
  ASSERT_EQ(s.warnings.size(), 2u);
  EXPECT_THAT(s.warnings[0], ::testing::HasSubstr("1277 control dependencies on nodes not in the file"));
  EXPECT_THAT(s.warnings[1], ::testing::HasSubstr("ordered by data_deps only"));
}

TEST(ChakraSummary, ListsProblemsInsteadOfThrowing) {
  TempDir dir;
  std::string ring = dir / "ring";
  copy_trace(kRing8, 8, ring);
  edit_rank(ring, 0, [](chakra::EtFile& f) { f.nodes[7].add_data_deps(9999); });
  ChakraSummary s = summarize_chakra(ring);
  ASSERT_EQ(s.fatal.size(), 1u);
  EXPECT_THAT(s.fatal[0], ::testing::HasSubstr("ring.0.et: node 7 ('COMM_RECV_NODE_tb0_step5'): data dependency on node 9999"));
}

TEST(ChakraSummary, JsonHasTheSameNumbers) {
  auto j = nlohmann::json::parse(to_json(summarize_chakra(kAllToAll4)));
  EXPECT_EQ(j["ranks"], 4);
  EXPECT_EQ(j["communication"]["ALL_TO_ALL"]["count"], 4);
  EXPECT_EQ(j["communication"]["ALL_TO_ALL"]["bytes"], 4 * 1048576.0);
  EXPECT_EQ(j["per_rank"][0]["by_type"]["COMM_COLL_NODE"], 1);
  EXPECT_TRUE(j["problems"].empty());
}

}  // namespace
}  // namespace tcsim::workloads
