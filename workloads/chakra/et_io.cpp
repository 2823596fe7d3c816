#include "workloads/chakra/et_io.hpp"

#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <zlib.h>

#include "core/error.hpp"

namespace tcsim::workloads::chakra {

using core::InputError;

namespace {

std::string inflate_gzip(const std::string& in, const std::string& path) {
  z_stream zs;
  std::memset(&zs, 0, sizeof zs);
  // 15 + 32: zlib or gzip header detected automatically.
  if (inflateInit2(&zs, 15 + 32) != Z_OK) throw InputError(path, "cannot initialise zlib");
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  zs.avail_in = static_cast<uInt>(in.size());
  std::string out;
  char buf[1 << 16];
  for (;;) {
    zs.next_out = reinterpret_cast<Bytef*>(buf);
    zs.avail_out = sizeof buf;
    int rc = inflate(&zs, Z_NO_FLUSH);
    out.append(buf, sizeof buf - zs.avail_out);
    if (rc == Z_STREAM_END) {
      if (zs.avail_in == 0) break;
      inflateReset(&zs);  // concatenated gzip members
      continue;
    }
    if (rc == Z_BUF_ERROR && zs.avail_in == 0) {
      inflateEnd(&zs);
      throw InputError(path, "gzip data ends early (truncated file?) after " + std::to_string(out.size()) +
                                 " uncompressed bytes");
    }
    if (rc != Z_OK) {
      std::string msg = zs.msg ? zs.msg : "error " + std::to_string(rc);
      inflateEnd(&zs);
      throw InputError(path, "corrupt gzip data: " + msg);
    }
  }
  inflateEnd(&zs);
  return out;
}

std::string record_where(const std::string& path, size_t index, size_t offset) {
  return path + ": record " + std::to_string(index) + " at byte " + std::to_string(offset);
}

/// Unknown fields mean the bytes were not written with Chakra's schema (another message
/// type, or a known field number with the wrong wire type).
bool has_unknown_fields(const google::protobuf::Message& m) {
  const auto* refl = m.GetReflection();
  if (!refl->GetUnknownFields(m).empty()) return true;
  std::vector<const google::protobuf::FieldDescriptor*> fields;
  refl->ListFields(m, &fields);
  for (const auto* f : fields) {
    if (f->cpp_type() != google::protobuf::FieldDescriptor::CPPTYPE_MESSAGE) continue;
    if (f->is_repeated()) {
      for (int i = 0; i < refl->FieldSize(m, f); ++i)
        if (has_unknown_fields(refl->GetRepeatedMessage(m, f, i))) return true;
    } else if (has_unknown_fields(refl->GetMessage(m, f))) {
      return true;
    }
  }
  return false;
}

/// Newer Chakra schemas add Node.storage (field 11) for STORAGE_NODE; tolerate exactly that.
bool only_storage_unknown(const ChakraProtoMsg::Node& n) {
  const auto& unk = n.GetReflection()->GetUnknownFields(n);
  for (int i = 0; i < unk.field_count(); ++i)
    if (unk.field(i).number() != 11) return false;
  ChakraProtoMsg::Node copy = n;
  copy.GetReflection()->MutableUnknownFields(&copy)->Clear();
  return !has_unknown_fields(copy);
}

}  // namespace

std::string read_file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(path, "cannot open file");
  std::ostringstream ss;
  ss << in.rdbuf();
  std::string data = ss.str();
  if (data.size() >= 2 && static_cast<unsigned char>(data[0]) == 0x1f && static_cast<unsigned char>(data[1]) == 0x8b)
    return inflate_gzip(data, path);
  return data;
}

std::vector<std::string> split_records(const std::string& data, const std::string& path) {
  std::vector<std::string> records;
  size_t pos = 0;
  while (pos < data.size()) {
    size_t start = pos;
    uint64_t len = 0;
    int shift = 0;
    for (;;) {
      if (pos >= data.size())
        throw InputError(record_where(path, records.size(), start), "truncated length prefix at end of file");
      auto b = static_cast<unsigned char>(data[pos++]);
      len |= static_cast<uint64_t>(b & 0x7f) << shift;
      if (!(b & 0x80)) break;
      shift += 7;
      if (shift >= 35)
        throw InputError(record_where(path, records.size(), start),
                         "malformed length prefix (more than 5 varint bytes): not a Chakra .et file");
    }
    if (len > data.size() - pos)
      throw InputError(record_where(path, records.size(), start),
                       "record length " + std::to_string(len) + " runs past the end of the file (" +
                           std::to_string(data.size() - pos) + " bytes left): truncated file?");
    records.emplace_back(data.substr(pos, len));
    pos += len;
  }
  return records;
}

std::string join_records(const std::vector<std::string>& records) {
  std::string out;
  for (const auto& r : records) {
    uint64_t len = r.size();
    do {
      auto b = static_cast<unsigned char>(len & 0x7f);
      len >>= 7;
      if (len) b |= 0x80;
      out.push_back(static_cast<char>(b));
    } while (len);
    out += r;
  }
  return out;
}

EtFile read_et_file(const std::string& path) {
  EtFile f;
  f.path = path;
  std::string data = read_file_bytes(path);
  std::vector<std::string> records = split_records(data, path);
  if (records.empty()) throw InputError(path, "empty file: a Chakra .et file starts with a GlobalMetadata record");
  if (!f.meta.ParseFromString(records[0]) || has_unknown_fields(f.meta))
    throw InputError(path + ": record 0",
                     "not a Chakra GlobalMetadata record (fields outside ChakraProtoMsg.GlobalMetadata): "
                     "not a Chakra .et file, or one without the metadata record of schema 0.0.4+");
  f.nodes.resize(records.size() - 1);
  for (size_t i = 1; i < records.size(); ++i) {
    auto& n = f.nodes[i - 1];
    if (!n.ParseFromString(records[i]))
      throw InputError(path + ": record " + std::to_string(i), "not a Chakra Node (protobuf parse failed)");
    if (has_unknown_fields(n) && !only_storage_unknown(n))
      throw InputError(path + ": record " + std::to_string(i) + " (node " + std::to_string(n.id()) + ")",
                       "not a Chakra Node: it has fields outside ChakraProtoMsg.Node (another protobuf, or "
                       "a different schema)");
  }
  return f;
}

std::string rank_path(const std::string& prefix, int rank) { return prefix + "." + std::to_string(rank) + ".et"; }

std::vector<EtFile> read_et_files(const std::string& prefix) {
  std::vector<EtFile> files;
  if (!std::filesystem::exists(rank_path(prefix, 0)))
    throw InputError(prefix, "no Chakra trace: " + rank_path(prefix, 0) +
                                 " does not exist (expected <prefix>.<rank>.et for ranks 0..N-1)");
  for (int r = 0; std::filesystem::exists(rank_path(prefix, r)); ++r) files.push_back(read_et_file(rank_path(prefix, r)));
  return files;
}

void write_file_bytes(const std::string& path, const std::string& bytes) {
  auto parent = std::filesystem::path(path).parent_path();
  std::error_code ec;
  if (!parent.empty()) std::filesystem::create_directories(parent, ec);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) throw InputError(path, "cannot open for writing");
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) throw InputError(path, "write failed");
}

void write_et_file(const std::string& path, const ChakraProtoMsg::GlobalMetadata& meta,
                   const std::vector<ChakraProtoMsg::Node>& nodes) {
  std::vector<std::string> records;
  records.reserve(nodes.size() + 1);
  records.push_back(meta.SerializeAsString());
  for (const auto& n : nodes) records.push_back(n.SerializeAsString());
  write_file_bytes(path, join_records(records));
}

}  // namespace tcsim::workloads::chakra
