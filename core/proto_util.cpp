#include "core/proto_util.hpp"

#include <algorithm>
#include <cctype>
#include <fstream>
#include <sstream>

#include <google/protobuf/descriptor.h>
#include <google/protobuf/io/tokenizer.h>
#include <google/protobuf/text_format.h>
#include <google/protobuf/util/json_util.h>

#include "core/error.hpp"
#include "core/quantity.hpp"

namespace tcsim::core {
namespace pb = google::protobuf;

namespace {

class Collector : public pb::io::ErrorCollector {
public:
  explicit Collector(std::string name) : name_(std::move(name)) {}
  void AddError(int line, pb::io::ColumnNumber column, const std::string& message) override {
    if (!first_.empty()) return;
    first_ = message;
    where_ = name_ + ":" + std::to_string(line + 1) + ":" + std::to_string(column + 1);
  }
  void AddWarning(int, pb::io::ColumnNumber, const std::string&) override {}
  [[nodiscard]] bool failed() const { return !first_.empty(); }
  [[nodiscard]] InputError error() const { return InputError(where_, first_); }

private:
  std::string name_, first_, where_;
};

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

std::string field_names(const pb::Descriptor* d) {
  std::string out;
  for (int i = 0; i < d->field_count(); ++i) out += (i ? ", " : "") + d->field(i)->name();
  return out;
}

}  // namespace

void parse_textproto(const std::string& text, const std::string& name, pb::Message& msg) {
  pb::TextFormat::Parser parser;
  Collector collector(name);
  parser.RecordErrorsTo(&collector);
  if (!parser.ParseFromString(text, &msg)) {
    if (collector.failed()) throw collector.error();
    throw InputError(name, "not a valid " + msg.GetDescriptor()->name() + " textproto");
  }
}

void load_config_file(const std::string& path, pb::Message& msg) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(path, "cannot open file (does it exist and is it readable?)");
  std::stringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  auto first = text.find_first_not_of(" \t\r\n");
  if (first != std::string::npos && text[first] == '{') {
    pb::util::JsonParseOptions opts;
    opts.ignore_unknown_fields = false;
    auto status = pb::util::JsonStringToMessage(text, &msg, opts);
    if (!status.ok()) throw InputError(path, "invalid JSON " + msg.GetDescriptor()->name() + ": " + std::string(status.message()));
    return;
  }
  parse_textproto(text, path, msg);
}

void set_field_by_path(pb::Message& msg, const std::string& path, const std::string& text, const std::string& where) {
  pb::Message* cur = &msg;
  std::string rest = path;
  while (true) {
    auto dot = rest.find('.');
    std::string name = rest.substr(0, dot);
    const pb::Descriptor* d = cur->GetDescriptor();
    const pb::FieldDescriptor* f = d->FindFieldByName(name);
    if (f == nullptr || f->is_repeated()) {
      throw InputError(where, "no field '" + name + "' in " + d->name() + "; fields: " + field_names(d));
    }
    const pb::Reflection* r = cur->GetReflection();
    if (dot != std::string::npos) {
      if (f->cpp_type() != pb::FieldDescriptor::CPPTYPE_MESSAGE) {
        throw InputError(where, "'" + name + "' is a value, not a section; remove what follows it");
      }
      cur = r->MutableMessage(cur, f);
      rest = rest.substr(dot + 1);
      continue;
    }
    switch (f->cpp_type()) {
      case pb::FieldDescriptor::CPPTYPE_INT32:
      case pb::FieldDescriptor::CPPTYPE_INT64:
      case pb::FieldDescriptor::CPPTYPE_UINT32:
      case pb::FieldDescriptor::CPPTYPE_UINT64: {
        double v = parse_count(text, where);
        if (v != static_cast<double>(static_cast<long long>(v))) throw InputError(where, "expected a whole number, got '" + text + "'");
        auto iv = static_cast<long long>(v);
        if (f->cpp_type() == pb::FieldDescriptor::CPPTYPE_INT32) r->SetInt32(cur, f, static_cast<int32_t>(iv));
        else if (f->cpp_type() == pb::FieldDescriptor::CPPTYPE_INT64) r->SetInt64(cur, f, iv);
        else {
          if (iv < 0) throw InputError(where, "expected a non-negative number, got '" + text + "'");
          if (f->cpp_type() == pb::FieldDescriptor::CPPTYPE_UINT32) r->SetUInt32(cur, f, static_cast<uint32_t>(iv));
          else r->SetUInt64(cur, f, static_cast<uint64_t>(iv));
        }
        break;
      }
      case pb::FieldDescriptor::CPPTYPE_DOUBLE: r->SetDouble(cur, f, parse_number(text, where)); break;
      case pb::FieldDescriptor::CPPTYPE_FLOAT: r->SetFloat(cur, f, static_cast<float>(parse_number(text, where))); break;
      case pb::FieldDescriptor::CPPTYPE_BOOL: {
        std::string l = lower(text);
        if (l == "true" || l == "1" || l == "yes" || l == "on") r->SetBool(cur, f, true);
        else if (l == "false" || l == "0" || l == "no" || l == "off") r->SetBool(cur, f, false);
        else throw InputError(where, "expected true or false, got '" + text + "'");
        break;
      }
      case pb::FieldDescriptor::CPPTYPE_STRING: r->SetString(cur, f, text); break;
      case pb::FieldDescriptor::CPPTYPE_ENUM: {
        const pb::EnumDescriptor* e = f->enum_type();
        std::string names;
        for (int i = 0; i < e->value_count(); ++i) {
          if (lower(e->value(i)->name()) == lower(text)) {
            r->SetEnum(cur, f, e->value(i));
            return;
          }
          names += (i ? ", " : "") + lower(e->value(i)->name());
        }
        throw InputError(where, "unknown value '" + text + "'; valid: " + names);
      }
      case pb::FieldDescriptor::CPPTYPE_MESSAGE:
        throw InputError(where, "'" + name + "' is a section; set one of its fields: " + field_names(f->message_type()));
    }
    return;
  }
}

std::vector<std::string> settable_paths(const pb::Descriptor* desc) {
  std::vector<std::string> out;
  for (int i = 0; i < desc->field_count(); ++i) {
    const auto* f = desc->field(i);
    if (f->is_repeated()) continue;
    if (f->cpp_type() == pb::FieldDescriptor::CPPTYPE_MESSAGE) {
      for (const auto& sub : settable_paths(f->message_type())) out.push_back(f->name() + "." + sub);
    } else {
      out.push_back(f->name());
    }
  }
  return out;
}

std::string to_json(const pb::Message& msg) {
  std::string out;
  pb::util::JsonPrintOptions opts;
  opts.preserve_proto_field_names = true;
  (void)pb::util::MessageToJsonString(msg, &out, opts);
  return out;
}

}  // namespace tcsim::core
