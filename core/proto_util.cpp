#include "core/proto_util.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

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

// The first double or float field holding NaN or an infinity, as a dotted path ("" if
// none): textproto and JSON both accept "nan" and "inf", which no quantity here means and
// which range checks written as `x < 0` let through.
std::string non_finite_field(const pb::Message& msg, const std::string& prefix) {
  const auto* refl = msg.GetReflection();
  std::vector<const pb::FieldDescriptor*> fields;
  refl->ListFields(msg, &fields);
  for (const auto* f : fields) {
    const std::string path = prefix + f->name();
    const bool real = f->cpp_type() == pb::FieldDescriptor::CPPTYPE_DOUBLE || f->cpp_type() == pb::FieldDescriptor::CPPTYPE_FLOAT;
    auto value = [&](int i) {
      if (f->cpp_type() == pb::FieldDescriptor::CPPTYPE_DOUBLE) return i < 0 ? refl->GetDouble(msg, f) : refl->GetRepeatedDouble(msg, f, i);
      return static_cast<double>(i < 0 ? refl->GetFloat(msg, f) : refl->GetRepeatedFloat(msg, f, i));
    };
    if (real && !f->is_repeated() && !std::isfinite(value(-1))) return path;
    if (real && f->is_repeated()) {
      for (int i = 0; i < refl->FieldSize(msg, f); ++i)
        if (!std::isfinite(value(i))) return path + "[" + std::to_string(i) + "]";
    }
    if (f->cpp_type() != pb::FieldDescriptor::CPPTYPE_MESSAGE) continue;
    if (!f->is_repeated()) {
      if (auto inner = non_finite_field(refl->GetMessage(msg, f), path + "."); !inner.empty()) return inner;
      continue;
    }
    for (int i = 0; i < refl->FieldSize(msg, f); ++i)
      if (auto inner = non_finite_field(refl->GetRepeatedMessage(msg, f, i), path + "[" + std::to_string(i) + "]."); !inner.empty()) return inner;
  }
  return "";
}

void check_finite(const pb::Message& msg, const std::string& name) {
  if (const std::string bad = non_finite_field(msg, ""); !bad.empty()) {
    throw InputError(name, bad + " is not a finite number (nan and inf are not values of any field)");
  }
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
  check_finite(msg, name);
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
    check_finite(msg, path);
    return;
  }
  parse_textproto(text, path, msg);
}

namespace {

std::string trim(const std::string& s) {
  auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  auto e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

std::string enum_names(const pb::EnumDescriptor* e) {
  std::string names;
  for (int i = 0; i < e->value_count(); ++i) names += (i ? ", " : "") + lower(e->value(i)->name());
  return names;
}

/// An example list of this field's element type, for error messages.
std::string example_list(const pb::FieldDescriptor* f) {
  switch (f->cpp_type()) {
    case pb::FieldDescriptor::CPPTYPE_DOUBLE:
    case pb::FieldDescriptor::CPPTYPE_FLOAT: return "[0.5,0.25,0.25]";
    case pb::FieldDescriptor::CPPTYPE_BOOL: return "[true,false]";
    case pb::FieldDescriptor::CPPTYPE_STRING: return "[a,b]";
    case pb::FieldDescriptor::CPPTYPE_ENUM: {
      const auto* e = f->enum_type();
      std::string out = "[" + lower(e->value(0)->name());
      if (e->value_count() > 1) out += "," + lower(e->value(1)->name());
      return out + "]";
    }
    default: return "[1,2,3]";
  }
}

/// Parses text as one value of field f (scalar or element of a repeated field) and sets it
/// (scalar) or appends it (repeated). Quantities and enums are read the same way in both.
void put_value(pb::Message* msg, const pb::FieldDescriptor* f, const std::string& text, const std::string& where) {
  const pb::Reflection* r = msg->GetReflection();
  const bool rep = f->is_repeated();
  switch (f->cpp_type()) {
    case pb::FieldDescriptor::CPPTYPE_INT32:
    case pb::FieldDescriptor::CPPTYPE_INT64:
    case pb::FieldDescriptor::CPPTYPE_UINT32:
    case pb::FieldDescriptor::CPPTYPE_UINT64: {
      double v = parse_count(text, where);
      if (!(std::fabs(v) < 9.2e18)) throw InputError(where, "'" + text + "' is out of range for a whole number");
      if (v != static_cast<double>(static_cast<long long>(v))) throw InputError(where, "expected a whole number, got '" + text + "'");
      auto iv = static_cast<long long>(v);
      const auto t = f->cpp_type();
      const bool is32 = t == pb::FieldDescriptor::CPPTYPE_INT32 || t == pb::FieldDescriptor::CPPTYPE_UINT32;
      if ((t == pb::FieldDescriptor::CPPTYPE_UINT32 || t == pb::FieldDescriptor::CPPTYPE_UINT64) && iv < 0)
        throw InputError(where, "expected a non-negative number, got '" + text + "'");
      if (is32 && (iv > 4294967295LL || (t == pb::FieldDescriptor::CPPTYPE_INT32 && (iv < INT32_MIN || iv > INT32_MAX))))
        throw InputError(where, "'" + text + "' is out of range for a 32-bit number");
      if (t == pb::FieldDescriptor::CPPTYPE_INT32) rep ? r->AddInt32(msg, f, static_cast<int32_t>(iv)) : r->SetInt32(msg, f, static_cast<int32_t>(iv));
      else if (t == pb::FieldDescriptor::CPPTYPE_INT64) rep ? r->AddInt64(msg, f, iv) : r->SetInt64(msg, f, iv);
      else if (t == pb::FieldDescriptor::CPPTYPE_UINT32) rep ? r->AddUInt32(msg, f, static_cast<uint32_t>(iv)) : r->SetUInt32(msg, f, static_cast<uint32_t>(iv));
      else rep ? r->AddUInt64(msg, f, static_cast<uint64_t>(iv)) : r->SetUInt64(msg, f, static_cast<uint64_t>(iv));
      return;
    }
    case pb::FieldDescriptor::CPPTYPE_DOUBLE: {
      double v = parse_number(text, where);
      rep ? r->AddDouble(msg, f, v) : r->SetDouble(msg, f, v);
      return;
    }
    case pb::FieldDescriptor::CPPTYPE_FLOAT: {
      auto v = static_cast<float>(parse_number(text, where));
      rep ? r->AddFloat(msg, f, v) : r->SetFloat(msg, f, v);
      return;
    }
    case pb::FieldDescriptor::CPPTYPE_BOOL: {
      std::string l = lower(text);
      bool v = false;
      if (l == "true" || l == "1" || l == "yes" || l == "on") v = true;
      else if (l == "false" || l == "0" || l == "no" || l == "off") v = false;
      else throw InputError(where, "expected true or false, got '" + text + "'");
      rep ? r->AddBool(msg, f, v) : r->SetBool(msg, f, v);
      return;
    }
    case pb::FieldDescriptor::CPPTYPE_STRING: rep ? r->AddString(msg, f, text) : r->SetString(msg, f, text); return;
    case pb::FieldDescriptor::CPPTYPE_ENUM: {
      const pb::EnumDescriptor* e = f->enum_type();
      for (int i = 0; i < e->value_count(); ++i) {
        if (lower(e->value(i)->name()) == lower(text)) {
          rep ? r->AddEnum(msg, f, e->value(i)) : r->SetEnum(msg, f, e->value(i));
          return;
        }
      }
      throw InputError(where, "unknown value '" + text + "'; valid: " + enum_names(e));
    }
    case pb::FieldDescriptor::CPPTYPE_MESSAGE: break;  // handled by the caller
  }
}

/// Splits "[a, b ,c]" into {"a","b","c"} (trimmed); "[]" gives {}. An element may be
/// double-quoted to hold commas or brackets (string fields). Throws InputError on anything
/// that is not such a list.
std::vector<std::string> split_list(const std::string& raw, const pb::FieldDescriptor* f, const std::string& where) {
  const std::string hint = "expected a list like " + example_list(f) + " ([] clears it)";
  std::string s = trim(raw);
  if (s.size() < 2 || s.front() != '[' || s.back() != ']') {
    throw InputError(where, "'" + raw + "' is not a complete list: " + hint);
  }
  std::string body = s.substr(1, s.size() - 2);
  std::vector<std::string> out;
  if (trim(body).empty()) return out;
  std::string cur;
  bool quoted = false;
  auto finish = [&] {
    std::string e = trim(cur);
    const std::size_t i = out.size();
    const std::string elem = "element [" + std::to_string(i) + "]";
    if (e.empty()) throw InputError(where, elem + " is empty (a stray comma?); " + hint);
    if (e.size() >= 2 && e.front() == '"' && e.back() == '"') {
      e = e.substr(1, e.size() - 2);
    } else if (e.find_first_of("[]\"") != std::string::npos) {
      throw InputError(where, elem + " '" + e + "': lists cannot be nested and quotes must enclose a whole element; " + hint);
    }
    out.push_back(e);
    cur.clear();
  };
  for (char c : body) {
    if (c == '"') quoted = !quoted;
    if (c == ',' && !quoted) finish();
    else cur += c;
  }
  if (quoted) throw InputError(where, "unclosed '\"' in '" + raw + "'; " + hint);
  finish();
  return out;
}

bool looks_like_list(const std::string& text) {
  std::string t = trim(text);
  return !t.empty() && t.front() == '[';
}

}  // namespace

void set_field_by_path(pb::Message& msg, const std::string& path, const std::string& text, const std::string& where) {
  pb::Message* cur = &msg;
  std::string rest = path;
  while (true) {
    auto dot = rest.find('.');
    std::string name = rest.substr(0, dot);
    const pb::Descriptor* d = cur->GetDescriptor();
    if (auto br = name.find('['); br != std::string::npos) {
      const pb::FieldDescriptor* lf = d->FindFieldByName(name.substr(0, br));
      if (lf != nullptr && lf->is_repeated() && lf->cpp_type() != pb::FieldDescriptor::CPPTYPE_MESSAGE) {
        throw InputError(where, "'" + name + "': list elements cannot be set one by one; set the whole list, e.g. " +
                                    lf->name() + "=" + example_list(lf));
      }
      if (lf != nullptr && lf->is_repeated()) {
        throw InputError(where, "'" + name + "': '" + lf->name() + "' is a list of " + lf->message_type()->name() +
                                    " sections, which --set cannot change; give it in a config file instead");
      }
      throw InputError(where, "'" + name + "': indexing with [] only exists for lists, and sets the whole list (" +
                                  "key=[1,2,3]); fields here: " + field_names(d));
    }
    const pb::FieldDescriptor* f = d->FindFieldByName(name);
    if (f == nullptr) {
      throw InputError(where, "no field '" + name + "' in " + d->name() + "; fields: " + field_names(d));
    }
    if (f->is_repeated() && f->cpp_type() == pb::FieldDescriptor::CPPTYPE_MESSAGE) {
      throw InputError(where, "'" + name + "' is a list of " + f->message_type()->name() +
                                  " sections, which --set cannot change; give it in a config file instead");
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
    if (f->cpp_type() == pb::FieldDescriptor::CPPTYPE_MESSAGE) {
      throw InputError(where, "'" + name + "' is a section; set one of its fields: " + field_names(f->message_type()));
    }
    if (f->is_repeated()) {
      if (!looks_like_list(text)) {
        const std::string t = trim(text);
        throw InputError(where, "'" + name + "' is a list (repeated field), got the single value '" + text +
                                    "'; write it in brackets: " + (t.empty() ? example_list(f) : "[" + t + "]") +
                                    " (several values: " + example_list(f) + ", none: [])");
      }
      // Parse every element into a scratch message first: a bad element leaves msg unchanged.
      std::unique_ptr<pb::Message> scratch(cur->New());
      const auto elems = split_list(text, f, where);
      for (std::size_t i = 0; i < elems.size(); ++i) {
        try {
          put_value(scratch.get(), f, elems[i], where);
        } catch (const InputError& e) {
          throw InputError(where, "element [" + std::to_string(i) + "] of the list: " + e.problem() +
                                      "; a valid list looks like " + example_list(f));
        }
      }
      r->SwapFields(cur, scratch.get(), {f});
      return;
    }
    if (f->cpp_type() != pb::FieldDescriptor::CPPTYPE_STRING && looks_like_list(text)) {
      const auto t = f->cpp_type();
      const std::string one = t == pb::FieldDescriptor::CPPTYPE_ENUM ? lower(f->enum_type()->value(0)->name())
                              : t == pb::FieldDescriptor::CPPTYPE_BOOL ? "true"
                              : t == pb::FieldDescriptor::CPPTYPE_DOUBLE || t == pb::FieldDescriptor::CPPTYPE_FLOAT ? "0.5"
                                                                                                                    : "4";
      throw InputError(where, "'" + name + "' is a single value, not a list (not a repeated field), got '" + text +
                                  "'; drop the brackets and give one value, e.g. " + one);
    }
    put_value(cur, f, text, where);
    return;
  }
}

std::vector<std::string> settable_paths(const pb::Descriptor* desc) {
  std::vector<std::string> out;
  for (int i = 0; i < desc->field_count(); ++i) {
    const auto* f = desc->field(i);
    const bool message = f->cpp_type() == pb::FieldDescriptor::CPPTYPE_MESSAGE;
    if (f->is_repeated() && message) continue;  // lists of sections need a config file
    if (message) {
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
