// Record-level I/O of Chakra .et files: varint32-length-prefixed protobuf records, the
// first a GlobalMetadata and the rest Nodes, optionally gzip-compressed. Used by the reader,
// the writer, `tcsim trace show` and the tests (which corrupt real files record by record).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "workloads/chakra/et_def.pb.h"

namespace tcsim::workloads::chakra {

/// One parsed .et file.
struct EtFile {
  std::string path;
  ChakraProtoMsg::GlobalMetadata meta;
  std::vector<ChakraProtoMsg::Node> nodes;
};

/// The bytes of a file, inflated when it starts with the gzip magic 1f 8b.
/// Throws core::InputError(path, ...) when it cannot be read or inflated.
std::string read_file_bytes(const std::string& path);

/// Splits data into records. Throws core::InputError("<path>: record K at byte B", ...) for a
/// truncated or malformed length prefix and a length that runs past the end of the data.
std::vector<std::string> split_records(const std::string& data, const std::string& path);

/// Joins records with their varint32 length prefixes.
std::string join_records(const std::vector<std::string>& records);

/// Reads and parses one file. Throws core::InputError naming the file and the record (and
/// the node id once known) when a record is not a Chakra message: a protobuf parse failure,
/// or fields Chakra's schema does not have (another protobuf, or the wrong wire types).
EtFile read_et_file(const std::string& path);

/// `<prefix>.<rank>.et`
std::string rank_path(const std::string& prefix, int rank);

/// Reads `<prefix>.0.et`, `<prefix>.1.et`, ... while they exist. Throws core::InputError when
/// `<prefix>.0.et` does not exist.
std::vector<EtFile> read_et_files(const std::string& prefix);

/// Writes a file (plain, not compressed). Throws core::InputError when it cannot be written.
void write_et_file(const std::string& path, const ChakraProtoMsg::GlobalMetadata& meta,
                   const std::vector<ChakraProtoMsg::Node>& nodes);

/// Writes bytes to a file; throws core::InputError on failure.
void write_file_bytes(const std::string& path, const std::string& bytes);

}  // namespace tcsim::workloads::chakra
