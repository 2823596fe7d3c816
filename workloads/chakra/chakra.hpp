// Chakra execution traces (MLCommons ET, as used by ASTRA-sim): read a set of per-rank
// .et files into a workloads::Program, write a Program as .et files, and summarise a trace
// for `tcsim trace show`.
//
// File layout (Chakra's protolib convention): `<prefix>.<rank>.et` for ranks 0..N-1, each a
// sequence of records `varint32 length | serialized message`, the first a GlobalMetadata and
// the rest Nodes; a file may be gzip-compressed (magic 1f 8b). Process-group membership comes
// from `<prefix>.comm_groups.json` when present (ASTRA-sim's --comm-group-configuration
// format: {"<pg_name>": [ranks...]}); otherwise a pg_name's group is the set of ranks whose
// files use it, and a collective without pg_name spans all ranks.
//
// Node mapping (see README.md for the table and the deviations from ASTRA-sim):
//   COMP_NODE                  -> Compute (fixed duration from duration_micros, else num_ops
//                                 FLOP and tensor_size HBM bytes for the cost model)
//   COMM_COLL_NODE (GPU)       -> Collective (comm_type, comm_size, pg_name)
//   COMM_SEND/RECV_NODE (GPU)  -> Send/Recv (comm_dst/comm_src, comm_size, comm_tag)
//   COMM_* with is_cpu_op=true -> Compute with its duration (the CPU-side launch, as ASTRA-sim)
//   MEM_LOAD/STORE_NODE        -> Memory (tensor_size bytes)
//   METADATA/INVALID/STORAGE/BATCH/CHECKPOINT -> skipped, dependencies through them kept
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "workloads/program.hpp"

namespace tcsim::workloads {

/// Reads `<prefix>.0.et`, `<prefix>.1.et`, ... (as many consecutive files as exist) into an
/// unfolded program (lane i = rank i). Throws core::InputError naming the file, the node id
/// and the problem for malformed records, non-Chakra data, unknown node types, missing data
/// dependencies, cycles, and collectives or sends/receives that cannot match (deadlock).
Program read_chakra(const std::string& prefix);

/// Writes one `<prefix>.<rank>.et` per physical rank (a lane standing for several ranks is
/// unfolded replica-wise) plus `<prefix>.comm_groups.json`. Follows Chakra's feeder
/// conventions: GlobalMetadata first (schema "1.0.2-chakra.0.0.4"), node ids unique per file,
/// data_deps, comm_type/comm_size/pg_name/comm_src/comm_dst/comm_tag attributes, is_cpu_op
/// false. tcsim-only facts (stream, category, compute class, ...) travel as extra `tcsim_*`
/// attributes that other tools ignore. Throws core::InputError if a file cannot be written
/// or the program cannot be unfolded (a peer lane with a different replica count).
void write_chakra(const Program& program, const std::string& prefix);

/// What `tcsim trace show` prints.
struct ChakraSummary {
  struct Rank {
    std::string file;
    size_t nodes = 0;
    std::map<std::string, size_t> by_type;  ///< NodeType name -> count
    double critical_path_us = 0;             ///< longest dependency chain, sum of duration_micros
    size_t critical_path_nodes = 0;          ///< nodes on that chain
  };
  struct Collective {
    size_t count = 0;
    double bytes = 0;  ///< sum of comm_size over every rank's nodes
  };
  std::string prefix;
  std::string schema;  ///< GlobalMetadata "schema" attribute or version of rank 0
  std::vector<Rank> ranks;
  std::map<std::string, Collective> collectives;  ///< comm_type name ("ALL_REDUCE", "SEND", "RECV") ->
  std::map<std::string, std::vector<int>> process_groups;  ///< pg_name -> ranks
  double critical_path_us = 0;  ///< max over ranks (per-rank chains; cross-rank waits not modelled)
  /// Dependency and matching problems, one line each: "file: node N: problem". `fatal`
  /// are those that make read_chakra throw; the rest are tolerated (e.g. a ctrl_dep on a
  /// node the converter dropped).
  std::vector<std::string> fatal;
  std::vector<std::string> warnings;
};

/// Loads a trace and reports on it without throwing for dependency problems (they are
/// listed instead). Still throws core::InputError for files that cannot be read at all.
ChakraSummary summarize_chakra(const std::string& prefix);

/// JSON text of a summary (stable key order).
std::string to_json(const ChakraSummary& s);

}  // namespace tcsim::workloads
