// Bad Chakra input, each made by corrupting a copy of a real external trace: the error is a
// core::InputError naming the file, the node id (or record) and the problem.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>

#include <google/protobuf/descriptor.pb.h>

#include "core/error.hpp"
#include "test_util.hpp"
#include "workloads/chakra/chakra.hpp"

namespace tcsim::workloads {
namespace {

using namespace tcsim::testing;
using ::testing::HasSubstr;

/// The message of the InputError read_chakra(prefix) throws ("" if none).
std::string read_error(const std::string& prefix) {
  try {
    read_chakra(prefix);
  } catch (const core::InputError& e) {
    return e.what();
  }
  return "";
}

void append_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::app);
  out << bytes;
}

void truncate_by(const std::string& path, uintmax_t n) {
  std::filesystem::resize_file(path, std::filesystem::file_size(path) - n);
}

class ChakraBadInput : public ::testing::Test {
protected:
  void SetUp() override {
    ring = dir / "ring";
    copy_trace(kRing8, 8, ring);
    ar = dir / "ar";
    copy_trace(kAllReduce8, 8, ar);
  }
  TempDir dir;
  std::string ring, ar;
};

TEST_F(ChakraBadInput, MissingTraceNamesTheExpectedFile) {
  EXPECT_THAT(read_error(dir / "nothing"), HasSubstr("nothing.0.et does not exist"));
}

TEST_F(ChakraBadInput, TruncatedRecord) {
  // Cut the last 10 bytes of rank 3: its last record (node 34) is incomplete.
  truncate_by(ring + ".3.et", 10);
  std::string e = read_error(ring);
  EXPECT_THAT(e, HasSubstr("ring.3.et: record 35 at byte"));
  EXPECT_THAT(e, HasSubstr("runs past the end of the file"));
}

TEST_F(ChakraBadInput, LengthPastEndOfFile) {
  // A record claiming 1000 bytes with 5 behind it (varint 1000 = e8 07).
  append_bytes(ar + ".2.et", std::string("\xe8\x07", 2) + "abcde");
  std::string e = read_error(ar);
  EXPECT_THAT(e, HasSubstr("ar.2.et: record 2 at byte 83"));
  EXPECT_THAT(e, HasSubstr("record length 1000 runs past the end of the file (5 bytes left)"));
}

TEST_F(ChakraBadInput, TruncatedLengthPrefix) {
  append_bytes(ar + ".1.et", std::string("\x80", 1));  // varint continuation byte, then EOF
  EXPECT_THAT(read_error(ar), HasSubstr("ar.1.et: record 2 at byte 83: truncated length prefix"));
}

TEST_F(ChakraBadInput, TruncatedGzip) {
  std::string f = ring + ".4.et";
  ASSERT_EQ(std::system(("gzip -c '" + f + "' > '" + f + ".gz' && mv '" + f + ".gz' '" + f + "'").c_str()), 0);
  truncate_by(f, 50);
  std::string e = read_error(ring);
  EXPECT_THAT(e, HasSubstr("ring.4.et"));
  EXPECT_THAT(e, HasSubstr("gzip"));
}

TEST_F(ChakraBadInput, NonChakraProtobuf) {
  // Rank 1's nodes replaced by another protobuf message (a FileDescriptorProto): it parses as
  // protobuf but its fields are not Node's.
  google::protobuf::FileDescriptorProto other;
  ChakraProtoMsg::Node::descriptor()->file()->CopyTo(&other);
  std::vector<std::string> recs = {chakra::read_et_file(ring + ".1.et").meta.SerializeAsString(), other.SerializeAsString()};
  chakra::write_file_bytes(ring + ".1.et", chakra::join_records(recs));
  std::string e = read_error(ring);
  EXPECT_THAT(e, HasSubstr("ring.1.et: record 1"));
  EXPECT_THAT(e, HasSubstr("not a Chakra Node"));
}

TEST_F(ChakraBadInput, NonChakraFile) {
  // A file of other protobuf records from the start: the metadata record is rejected.
  google::protobuf::FileDescriptorProto other;
  ChakraProtoMsg::Node::descriptor()->file()->CopyTo(&other);
  chakra::write_file_bytes(ar + ".0.et", chakra::join_records({other.SerializeAsString()}));
  std::string e = read_error(ar);
  EXPECT_THAT(e, HasSubstr("ar.0.et: record 0"));
  EXPECT_THAT(e, HasSubstr("not a Chakra GlobalMetadata"));
}

TEST_F(ChakraBadInput, UnknownNodeType) {
  edit_rank(ring, 6, [](chakra::EtFile& f) { f.nodes[5].set_type(static_cast<ChakraProtoMsg::NodeType>(42)); });
  std::string e = read_error(ring);
  EXPECT_THAT(e, HasSubstr("ring.6.et: node 5 ('COMP_NODE_tb0_step3')"));
  EXPECT_THAT(e, HasSubstr("unknown node type 42"));
}

TEST_F(ChakraBadInput, DependencyOnMissingNode) {
  edit_rank(ring, 0, [](chakra::EtFile& f) { f.nodes[7].add_data_deps(9999); });
  std::string e = read_error(ring);
  EXPECT_THAT(e, HasSubstr("ring.0.et: node 7"));
  EXPECT_THAT(e, HasSubstr("data dependency on node 9999, which is not in the file"));
}

TEST_F(ChakraBadInput, DependencyCycle) {
  // Node 0 made to depend on node 2, which depends on 1, which depends on 0.
  edit_rank(ring, 2, [](chakra::EtFile& f) { f.nodes[0].add_data_deps(2); });
  std::string e = read_error(ring);
  EXPECT_THAT(e, HasSubstr("ring.2.et: node"));
  EXPECT_THAT(e, HasSubstr("dependency cycle"));
  EXPECT_THAT(e, HasSubstr("0 <- 2 <- 1 <- 0"));
  EXPECT_THAT(e, HasSubstr("35 nodes can never run"));
}

TEST_F(ChakraBadInput, SendWithoutMatchingReceive) {
  // Rank 0's third send (node 3) gets tag 99: rank 1 posts no receive with that tag, and
  // rank 1 waits for a 14th tag-0 message that never comes.
  edit_rank(ring, 0, [](chakra::EtFile& f) {
    for (auto& a : *f.nodes[3].mutable_attr())
      if (a.name() == "comm_tag") a.set_int32_val(99);
  });
  std::string e = read_error(ring);
  EXPECT_THAT(e, HasSubstr("ring.1.et: node"));
  EXPECT_THAT(e, HasSubstr("rank 0 -> rank 1 tag 0: 14 receives but 13 sends; rank 1 waits on rank 0"));
}

TEST_F(ChakraBadInput, SizeMismatchBetweenSendAndReceive) {
  edit_rank(ring, 5, [](chakra::EtFile& f) {
    for (auto& a : *f.nodes[1].mutable_attr())
      if (a.name() == "comm_size") a.set_int64_val(4096);
  });
  std::string e = read_error(ring);
  EXPECT_THAT(e, HasSubstr("ring.5.et: node 1"));
  EXPECT_THAT(e, HasSubstr("rank 4 -> rank 5 tag 0: receive #1 expects 4096 bytes but send #1 (node 0) sends 131072"));
}

TEST_F(ChakraBadInput, MissingCollectiveOnOneRank) {
  // Rank 5 keeps only its metadata record: the other 7 ranks would wait in their all-reduce.
  edit_rank(ar, 5, [](chakra::EtFile& f) { f.nodes.clear(); });
  std::string e = read_error(ar);
  EXPECT_THAT(e, HasSubstr("ar.5.et"));
  EXPECT_THAT(e, HasSubstr("rank 5 issues 0 collectives on all ranks (no pg_name) but rank 0 issues 1: rank 0 would "
                           "wait forever in ALL_REDUCE node 0"));
}

TEST_F(ChakraBadInput, CollectiveTypeMismatch) {
  edit_rank(ar, 3, [](chakra::EtFile& f) {
    for (auto& a : *f.nodes[0].mutable_attr())
      if (a.name() == "comm_type") a.set_int64_val(ChakraProtoMsg::ALL_GATHER);
  });
  std::string e = read_error(ar);
  EXPECT_THAT(e, HasSubstr("ar.3.et: node 3"));
  EXPECT_THAT(e, HasSubstr("collective #1 on all ranks (no pg_name) is ALL_GATHER but rank 0's is ALL_REDUCE"));
}

TEST_F(ChakraBadInput, AttributeOfWrongForm) {
  edit_rank(ar, 4, [](chakra::EtFile& f) {
    for (auto& a : *f.nodes[0].mutable_attr())
      if (a.name() == "comm_size") a.set_string_val("1MB");
  });
  std::string e = read_error(ar);
  EXPECT_THAT(e, HasSubstr("ar.4.et: node 4 ('all_reduce_8npus_1MB')"));
  EXPECT_THAT(e, HasSubstr("attribute comm_size holds string_val, expected an integer"));
}

// tcsim's GEMM shape attributes hold 32-bit dimensions; a larger (or negative) one is an
// error, not a wrapped or truncated number.
TEST_F(ChakraBadInput, GemmDimensionPast32Bits) {
  edit_rank(ring, 6, [](chakra::EtFile& f) {
    auto* a = f.nodes[5].add_attr();
    a->set_name("tcsim_m");
    a->set_int64_val(int64_t{1} << 32);
  });
  std::string e = read_error(ring);
  EXPECT_THAT(e, HasSubstr("ring.6.et: node 5 ('COMP_NODE_tb0_step3')"));
  EXPECT_THAT(e, HasSubstr("attribute tcsim_m is 4294967296; a GEMM dimension is 0 (unknown) to 4294967295"));
}

// A duration or a cost that is not a finite number 0 or more would put a NaN or a negative
// time into the executor's clock: an error naming the attribute instead.
TEST_F(ChakraBadInput, NonFiniteOrNegativeCosts) {
  int made = 0;
  auto with_attr = [&](const std::string& name, double v) {
    const std::string prefix = dir / ("cost" + std::to_string(++made));
    copy_trace(kRing8, 8, prefix);
    edit_rank(prefix, 6, [&](chakra::EtFile& f) {
      auto* a = f.nodes[5].add_attr();
      a->set_name(name);
      a->set_double_val(v);
    });
    return read_error(prefix);
  };
  EXPECT_THAT(with_attr("tcsim_fixed_seconds", -1.0), HasSubstr("attribute tcsim_fixed_seconds is -1.000000; a duration is a finite number of seconds, 0 or more"));
  EXPECT_THAT(with_attr("tcsim_fixed_seconds", std::nan("")), HasSubstr("a duration is a finite number of seconds"));
  EXPECT_THAT(with_attr("tcsim_flops", std::nan("")), HasSubstr("must be finite and 0 or more"));
  const std::string e = with_attr("tcsim_hbm_bytes", -5.0);
  EXPECT_THAT(e, HasSubstr(".6.et: node 5 ('COMP_NODE_tb0_step3')"));
  EXPECT_THAT(e, HasSubstr("must be finite and 0 or more, got"));
}

TEST_F(ChakraBadInput, UnsupportedCollective) {
  for (int r = 0; r < 8; ++r)
    edit_rank(ar, r, [](chakra::EtFile& f) {
      for (auto& a : *f.nodes[0].mutable_attr())
        if (a.name() == "comm_type") a.set_int64_val(ChakraProtoMsg::GATHER);
    });
  EXPECT_THAT(read_error(ar), HasSubstr("comm_type GATHER is not supported"));
}

}  // namespace
}  // namespace tcsim::workloads
