// Shared by the reader and the summary: attribute access, node classification, the per-rank
// dependency graph, and the cross-rank matching checks (collectives per process group,
// sends against receives).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "workloads/chakra/et_io.hpp"
#include "workloads/program.hpp"

namespace tcsim::workloads::chakra {

/// Attribute by name (first match), or nullptr.
const ChakraProtoMsg::AttributeProto* find_attr(const ChakraProtoMsg::Node& n, const std::string& name);
/// Integer value in any of the integer forms traces use (int32/int64/uint32/uint64/sint/fixed,
/// bool, or a double holding an integer). Throws core::InputError(where, ...) for other forms.
std::optional<int64_t> int_attr(const ChakraProtoMsg::Node& n, const std::string& name, const std::string& where);
std::optional<double> double_attr(const ChakraProtoMsg::Node& n, const std::string& name, const std::string& where);
/// String value; an integer value is accepted and printed in decimal (pg_name "3" or 3).
std::optional<std::string> string_attr(const ChakraProtoMsg::Node& n, const std::string& name, const std::string& where);
bool bool_attr(const ChakraProtoMsg::Node& n, const std::string& name, const std::string& where, bool dflt);

/// What a node becomes in a Program.
enum class NodeKind { Compute, Collective, Send, Recv, Memory, Skip };
/// Throws core::InputError(where, ...) for a node type outside Chakra's NodeType enum.
NodeKind classify(const ChakraProtoMsg::Node& n, const std::string& where);

/// "<path>: node <id> ('<name>')"
std::string node_where(const EtFile& f, const ChakraProtoMsg::Node& n);

struct Problem {
  bool fatal = true;
  std::string where;
  std::string what;
};

/// A rank's nodes in dependency order.
struct RankGraph {
  std::vector<uint32_t> order;               ///< node indices, topological (dependencies first)
  std::vector<std::vector<uint32_t>> preds;  ///< per node: indices of its resolved dependencies
  bool cyclic = false;
};

/// Resolves data and control dependencies and orders the nodes (ties broken by file order).
/// Problems: duplicate node ids and a data dependency on a missing node (fatal); a control
/// dependency on a missing node (ignored with a warning: PyTorch-converted traces keep
/// ctrl_deps on parent ops they dropped); control dependencies that close a cycle (the file
/// is then ordered by data_deps only, as Chakra's ETFeeder does, with a warning: PyTorch
/// traces use ctrl_deps for op nesting); a cycle of data dependencies (fatal; `order` then
/// holds the acyclic part).
RankGraph build_graph(const EtFile& f, std::vector<Problem>& problems);

/// One communication node after classification, in dependency order.
struct CommNode {
  uint32_t node = 0;   ///< index into EtFile::nodes
  NodeKind kind = NodeKind::Collective;
  int comm_type = 0;   ///< Chakra CollectiveCommType (collectives)
  std::string pg;      ///< pg_name ("" = all ranks)
  int peer = -1;       ///< send: destination rank; recv: source rank
  int64_t tag = 0;
  int64_t bytes = 0;
};

/// Everything the reader and the summary need from a trace.
struct Analysis {
  std::vector<EtFile> files;
  std::vector<RankGraph> graphs;
  std::vector<std::vector<CommNode>> comm;        ///< per rank, dependency order
  std::map<std::string, std::vector<int>> groups;  ///< pg_name -> ranks ("" -> all)
  std::vector<Problem> problems;
};

/// Loads `<prefix>.<rank>.et` and `<prefix>.comm_groups.json` (if present), builds graphs
/// and checks matching. Throws only for unreadable files and node-level format errors
/// (unknown node type, malformed attribute); dependency and matching problems are listed.
Analysis analyze(const std::string& prefix);

/// Chakra CollectiveCommType name ("ALL_REDUCE", ...) or "comm_type N".
std::string comm_type_name(int t);

}  // namespace tcsim::workloads::chakra
