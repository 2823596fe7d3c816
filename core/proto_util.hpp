// Helpers for protobuf-described configuration: textproto parsing with file:line errors
// and unknown fields rejected, and setting any field by a dotted path from a string
// (the mechanism behind `--set model.moe.top_k=4`).
#pragma once

#include <string>
#include <vector>

#include <google/protobuf/message.h>

namespace tcsim::core {

/// Parses textproto into msg; errors become InputError("<name>:<line>:<col>", ...). A
/// double or float field holding nan or inf (which textproto and JSON accept) is an
/// InputError naming the field's path.
void parse_textproto(const std::string& text, const std::string& name, google::protobuf::Message& msg);
/// Reads a file and parses it as textproto (or JSON when it starts with '{').
void load_config_file(const std::string& path, google::protobuf::Message& msg);

/// Sets the field at dotted path (e.g. "moe.top_k") from text. Scalars parse from text
/// (integers take count suffixes: "2K"), enums accept their value names (case-insensitive).
/// A repeated scalar field takes a bracketed list, each element parsed as a scalar of that
/// field: "[0.5, 0.25,0.25]" replaces the list, "[]" clears it; an element may be
/// double-quoted ("[\"a,b\",c]") to hold commas. Lists of messages cannot be set (use a
/// config file), nor single elements ("x[0]"). A scalar for a list field, a list for a
/// non-string scalar field, a bad element (named with its index) or an unknown path throw
/// InputError naming `where` and what would be valid; a list with a bad element leaves the
/// field as it was.
void set_field_by_path(google::protobuf::Message& msg, const std::string& path, const std::string& text,
                       const std::string& where);

/// Every path set_field_by_path accepts for a message type: scalar and repeated-scalar
/// fields, e.g. {"layers", "moe.top_k", "routing.histogram", ...}.
std::vector<std::string> settable_paths(const google::protobuf::Descriptor* desc);

/// Compact single-line JSON of a message (deterministic field order).
std::string to_json(const google::protobuf::Message& msg);

}  // namespace tcsim::core
