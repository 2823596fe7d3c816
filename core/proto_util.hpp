// Helpers for protobuf-described configuration: textproto parsing with file:line errors
// and unknown fields rejected, and setting any field by a dotted path from a string
// (the mechanism behind `--set model.moe.top_k=4`).
#pragma once

#include <string>
#include <vector>

#include <google/protobuf/message.h>

namespace tcsim::core {

/// Parses textproto into msg; errors become InputError("<name>:<line>:<col>", ...).
void parse_textproto(const std::string& text, const std::string& name, google::protobuf::Message& msg);
/// Reads a file and parses it as textproto (or JSON when it starts with '{').
void load_config_file(const std::string& path, google::protobuf::Message& msg);

/// Sets the field at dotted path (e.g. "moe.top_k") from text. Scalars parse from text,
/// enums accept their value names (case-insensitive). Throws InputError naming `where`,
/// the path and the valid field names when the path does not exist.
void set_field_by_path(google::protobuf::Message& msg, const std::string& path, const std::string& text,
                       const std::string& where);

/// Every settable scalar path of a message type, e.g. {"layers", "moe.top_k", ...}.
std::vector<std::string> settable_paths(const google::protobuf::Descriptor* desc);

/// Compact single-line JSON of a message (deterministic field order).
std::string to_json(const google::protobuf::Message& msg);

}  // namespace tcsim::core
