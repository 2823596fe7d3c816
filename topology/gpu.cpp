#include "topology/gpu.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <fstream>
#include <functional>
#include <mutex>
#include <sstream>

#include "core/error.hpp"
#include "core/proto_util.hpp"
#include "core/quantity.hpp"
#include "topology/hardware.pb.h"

namespace tcsim::embedded {
extern const std::string_view gpu_catalog_textproto;
}

namespace tcsim::topology {
namespace {

using core::InputError;

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

std::string trim(std::string s) {
  auto b = s.find_first_not_of(" \t");
  auto e = s.find_last_not_of(" \t");
  return b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
}

// "814mm2" / "814mm^2"; the unit is required.
double parse_area(const std::string& text, const std::string& where) {
  std::string t = trim(text);
  for (const char* unit : {"mm2", "mm^2"}) {
    std::string u = unit;
    if (t.size() > u.size() && t.compare(t.size() - u.size(), u.size(), u) == 0) {
      double v = core::parse_number(t.substr(0, t.size() - u.size()), where);
      if (v < 0) throw InputError(where, "die area '" + text + "' must not be negative");
      return v;
    }
  }
  throw InputError(where, "'" + text + "' is not an area; write it in square millimetres, e.g. 814mm2");
}

// "2USD/h" / "2.5USD/h"; the unit is required.
double parse_price(const std::string& text, const std::string& where) {
  std::string t = trim(text);
  const std::string u = "USD/h";
  if (t.size() > u.size() && t.compare(t.size() - u.size(), u.size(), u) == 0) {
    double v = core::parse_number(t.substr(0, t.size() - u.size()), where);
    if (v < 0) throw InputError(where, "price '" + text + "' must not be negative");
    return v;
  }
  throw InputError(where, "'" + text + "' is not a price; write US dollars per GPU-hour, e.g. 2USD/h");
}

int parse_int_field(const std::string& text, const std::string& where, int min) {
  long long v = core::parse_integer(text, where);
  if (v < min || v > 1000000) {
    throw InputError(where, "'" + text + "' must be a whole number from " + std::to_string(min) + " to 1000000");
  }
  return static_cast<int>(v);
}

bool parse_bool(const std::string& text, const std::string& where) {
  std::string l = lower(trim(text));
  if (l == "true" || l == "1" || l == "yes") return true;
  if (l == "false" || l == "0" || l == "no") return false;
  throw InputError(where, "'" + text + "' is not a boolean; use true or false");
}

const std::vector<std::string> kFamilies = {"ampere", "hopper", "blackwell", "cdna3", "ascend"};

std::string parse_family(const std::string& text, const std::string& where) {
  std::string l = lower(trim(text));
  if (std::find(kFamilies.begin(), kFamilies.end(), l) == kFamilies.end()) {
    throw InputError(where, "unknown GPU family '" + text + "'; known: ampere, hopper, blackwell, cdna3, ascend");
  }
  return l;
}

// Shortest decimal mantissa in the given unit: 989e12 -> "989TFLOPS".
std::string with_unit(double v, double factor, const char* unit) {
  return core::format_number(v / factor) + unit;
}

std::string fmt_flops(core::FlopsPerSecond v) { return with_unit(v.value(), 1e12, "TFLOPS"); }
std::string fmt_bytes(core::Bytes v) { return with_unit(v.value(), 1e9, "GB"); }
std::string fmt_bw(core::BytesPerSecond v) {
  if (v.value() >= 1e12) return with_unit(v.value(), 1e12, "TBps");
  if (v.value() >= 1e9 || v.value() == 0) return with_unit(v.value(), 1e9, "GBps");
  return with_unit(v.value(), 1e6, "MBps");
}

core::FlopsPerSecond positive_flops(const std::string& t, const std::string& w, bool allow_zero) {
  auto v = core::parse_flops_rate(t, w);
  if (v.value() < 0 || (!allow_zero && v.value() == 0)) {
    throw InputError(w, "'" + t + "' must be " + (allow_zero ? "zero or positive" : "positive") + ", e.g. 989TFLOPS");
  }
  return v;
}
core::BytesPerSecond positive_bw(const std::string& t, const std::string& w) {
  auto v = core::parse_bandwidth(t, w);
  if (!(v.value() > 0)) throw InputError(w, "'" + t + "' must be a positive bandwidth, e.g. 400GBps or 400Gbps");
  return v;
}

struct FieldImpl {
  GpuField info;
  std::function<std::string(const GpuSpec&)> get;
  std::function<void(GpuSpec&, const std::string&, const std::string&)> set;
};

const std::vector<FieldImpl>& fields() {
  static const std::vector<FieldImpl> table = {
      {{"gpu.name", "catalog name of the GPU (or of a variant)", "text", true},
       [](const GpuSpec& s) { return s.name; },
       [](GpuSpec& s, const std::string& t, const std::string& w) {
         if (trim(t).empty()) throw InputError(w, "the GPU name must not be empty");
         s.name = trim(t);
       }},
      {{"gpu.family", "calibration family: ampere, hopper, blackwell, cdna3, ascend", "text", true},
       [](const GpuSpec& s) { return s.family; },
       [](GpuSpec& s, const std::string& t, const std::string& w) { s.family = parse_family(t, w); }},
      {{"gpu.bf16_flops", "dense BF16 peak", "FLOP/s", true},
       [](const GpuSpec& s) { return fmt_flops(s.bf16_flops); },
       [](GpuSpec& s, const std::string& t, const std::string& w) { s.bf16_flops = positive_flops(t, w, false); }},
      {{"gpu.fp8_flops", "dense FP8 peak (0TFLOPS = no FP8)", "FLOP/s", false},
       [](const GpuSpec& s) { return fmt_flops(s.fp8_flops); },
       [](GpuSpec& s, const std::string& t, const std::string& w) { s.fp8_flops = positive_flops(t, w, true); }},
      {{"gpu.hbm", "HBM capacity", "bytes", true},
       [](const GpuSpec& s) { return fmt_bytes(s.hbm); },
       [](GpuSpec& s, const std::string& t, const std::string& w) {
         s.hbm = core::parse_bytes(t, w);
         if (!(s.hbm.value() > 0)) throw InputError(w, "'" + t + "' must be a positive size, e.g. 80GB");
       }},
      {{"gpu.hbm_bw", "HBM bandwidth", "bytes/s", true},
       [](const GpuSpec& s) { return fmt_bw(s.hbm_bw); },
       [](GpuSpec& s, const std::string& t, const std::string& w) { s.hbm_bw = positive_bw(t, w); }},
      {{"gpu.nvlink_bw", "scale-up (NVLink) bandwidth per GPU per direction, line rate", "bytes/s", true},
       [](const GpuSpec& s) { return fmt_bw(s.nvlink_bw); },
       [](GpuSpec& s, const std::string& t, const std::string& w) { s.nvlink_bw = positive_bw(t, w); }},
      {{"gpu.nvlink_links", "scale-up links per GPU", "count", false},
       [](const GpuSpec& s) { return std::to_string(s.nvlink_links); },
       [](GpuSpec& s, const std::string& t, const std::string& w) { s.nvlink_links = parse_int_field(t, w, 0); }},
      {{"gpu.scaleup_domain", "GPUs in one scale-up (NVLink) domain", "count", false},
       [](const GpuSpec& s) { return std::to_string(s.scaleup_domain); },
       [](GpuSpec& s, const std::string& t, const std::string& w) { s.scaleup_domain = parse_int_field(t, w, 1); }},
      {{"gpu.nic_bw", "scale-out NIC bandwidth per GPU per direction (400Gbps = 50GBps)", "bytes/s", true},
       [](const GpuSpec& s) { return fmt_bw(s.nic_bw); },
       [](GpuSpec& s, const std::string& t, const std::string& w) { s.nic_bw = positive_bw(t, w); }},
      {{"gpu.tdp", "board power (TDP)", "W", true},
       [](const GpuSpec& s) { return core::format_number(s.tdp.value()) + "W"; },
       [](GpuSpec& s, const std::string& t, const std::string& w) {
         s.tdp = core::parse_watts(t, w);
         if (!(s.tdp.value() > 0)) throw InputError(w, "'" + t + "' must be a positive power, e.g. 700W");
       }},
      {{"gpu.die_area_mm2", "compute die area (for export-rule performance density)", "mm2", false},
       [](const GpuSpec& s) { return core::format_number(s.die_area_mm2) + "mm2"; },
       [](GpuSpec& s, const std::string& t, const std::string& w) { s.die_area_mm2 = parse_area(t, w); }},
      {{"gpu.price_per_hour_usd", "rental price per GPU-hour (0USD/h = not published)", "USD/h", false},
       [](const GpuSpec& s) { return core::format_number(s.price_per_hour_usd) + "USD/h"; },
       [](GpuSpec& s, const std::string& t, const std::string& w) { s.price_per_hour_usd = parse_price(t, w); }},
      {{"gpu.sm_count", "streaming multiprocessors (compute units)", "count", false},
       [](const GpuSpec& s) { return std::to_string(s.sm_count); },
       [](GpuSpec& s, const std::string& t, const std::string& w) { s.sm_count = parse_int_field(t, w, 0); }},
      {{"gpu.nvls", "NVSwitch in-network reduction (NVLink SHARP)", "bool", false},
       [](const GpuSpec& s) { return std::string(s.nvls ? "true" : "false"); },
       [](GpuSpec& s, const std::string& t, const std::string& w) { s.nvls = parse_bool(t, w); }},
  };
  return table;
}

const FieldImpl* find_field(const std::string& key) {
  for (const auto& f : fields()) {
    if (f.info.key == key) return &f;
  }
  return nullptr;
}

std::string keys_list() {
  std::string out;
  for (const auto& k : gpu_keys()) out += (out.empty() ? "" : ", ") + k;
  return out;
}

// The Figure of a catalog entry for field key "gpu.X" (X is the proto field name).
const pb::Figure* figure_of(const pb::GpuEntry& e, const std::string& field) {
  const auto* d = e.GetDescriptor()->FindFieldByName(field);
  if (d == nullptr || d->message_type() == nullptr) return nullptr;
  if (!e.GetReflection()->HasField(e, d)) return nullptr;
  return static_cast<const pb::Figure*>(&e.GetReflection()->GetMessage(e, d));
}

GpuSpec from_entry(const pb::GpuEntry& e, const std::string& file) {
  std::string where = file + ": gpu " + (e.name().empty() ? "(unnamed)" : e.name());
  GpuSpec s;
  s.nvlink_links = 0;
  s.scaleup_domain = 8;
  fields()[0].set(s, e.name(), where + ": name");
  s.description = e.description();
  if (e.family().empty()) throw InputError(where, "family missing; one of ampere, hopper, blackwell, cdna3, ascend");
  s.family = parse_family(e.family(), where + ": family");
  for (const auto& f : fields()) {
    std::string field = f.info.key.substr(4);
    if (field == "name" || field == "family") continue;
    const pb::Figure* fig = figure_of(e, field);
    if (fig == nullptr || fig->value().empty()) {
      if (f.info.required) throw InputError(where, "field " + field + " missing; it is required (" + f.info.description + ")");
      continue;
    }
    f.set(s, fig->value(), where + ": " + field);
    if (fig->source().empty()) throw InputError(where + ": " + field, "every figure needs a source line");
    s.sources[f.info.key] = fig->source();
    if (fig->uncertain()) s.uncertain.push_back(f.info.key);
  }
  return s;
}

std::vector<GpuSpec>& mutable_catalog() {
  static std::vector<GpuSpec> catalog = parse_gpu_catalog(std::string(embedded::gpu_catalog_textproto),
                                                          "platforms/gpus.textproto");
  return catalog;
}

}  // namespace

core::FlopsPerSecond GpuSpec::peak(const std::string& precision) const {
  std::string p = lower(precision);
  if (p == "fp8" && fp8_flops.value() > 0) return fp8_flops;
  return bf16_flops;
}

const std::vector<GpuField>& gpu_fields() {
  static const std::vector<GpuField> out = [] {
    std::vector<GpuField> v;
    for (const auto& f : fields()) v.push_back(f.info);
    return v;
  }();
  return out;
}

const std::vector<std::string>& gpu_keys() {
  static const std::vector<std::string> out = [] {
    std::vector<std::string> v;
    for (const auto& f : fields()) v.push_back(f.info.key);
    return v;
  }();
  return out;
}

std::vector<GpuSpec> parse_gpu_catalog(const std::string& text, const std::string& name) {
  pb::GpuCatalog msg;
  core::parse_textproto(text, name, msg);
  std::vector<GpuSpec> out;
  for (const auto& e : msg.gpu()) {
    GpuSpec s = from_entry(e, name);
    for (const auto& o : out) {
      if (lower(o.name) == lower(s.name)) throw InputError(name + ": gpu " + s.name, "duplicate name in the catalog");
    }
    out.push_back(std::move(s));
  }
  return out;
}

const std::vector<GpuSpec>& gpu_catalog() { return mutable_catalog(); }

void load_gpu_catalog_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(path, "cannot open GPU catalog file (does it exist and is it readable?)");
  std::stringstream ss;
  ss << in.rdbuf();
  auto extra = parse_gpu_catalog(ss.str(), path);
  auto& cat = mutable_catalog();
  for (auto& s : extra) {
    auto it = std::find_if(cat.begin(), cat.end(), [&](const GpuSpec& o) { return lower(o.name) == lower(s.name); });
    if (it != cat.end()) *it = std::move(s);
    else cat.push_back(std::move(s));
  }
}

GpuSpec find_gpu(const std::string& name, const std::string& where) {
  for (const auto& s : gpu_catalog()) {
    if (lower(s.name) == lower(name)) return s;
  }
  std::string known;
  for (const auto& s : gpu_catalog()) known += (known.empty() ? "" : ", ") + s.name;
  throw InputError(where, "unknown GPU '" + name + "'; known: " + known + " (tcsim hw list)");
}

void apply_gpu_overrides(GpuSpec& spec, core::Overrides& overrides) {
  for (const auto& key : overrides.keys_with_prefix("gpu.")) {
    const FieldImpl* f = find_field(key);
    if (f == nullptr) {
      throw InputError(overrides.where(key), "unknown GPU field; valid keys: " + keys_list());
    }
    std::string value = *overrides.take(key);
    f->set(spec, value, overrides.where(key) + "=" + value);
    spec.sources[key] = "override " + overrides.where(key) + "=" + value;
    spec.uncertain.erase(std::remove(spec.uncertain.begin(), spec.uncertain.end(), key), spec.uncertain.end());
  }
}

std::map<std::string, std::string> to_properties(const GpuSpec& spec) {
  std::map<std::string, std::string> out;
  for (const auto& f : fields()) out[f.info.key] = f.get(spec);
  return out;
}

GpuSpec from_properties(const std::map<std::string, std::string>& props, const std::string& where) {
  GpuSpec s;
  s.nvlink_links = 0;
  s.scaleup_domain = 8;
  for (const auto& f : fields()) {
    auto it = props.find(f.info.key);
    if (it == props.end()) {
      if (f.info.required) {
        throw InputError(where, "property " + f.info.key + " missing (" + f.info.description +
                                    "); add <prop id=\"" + f.info.key + "\" value=\"...\"/> with a unit");
      }
      continue;
    }
    f.set(s, it->second, where + ": property " + f.info.key);
    s.sources[f.info.key] = "platform property";
  }
  return s;
}

std::string to_catalog_entry(const GpuSpec& spec) {
  auto quote = [](const std::string& s) {
    std::string out = "\"";
    for (char c : s) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    return out + "\"";
  };
  std::ostringstream o;
  o << "gpu {\n  name: " << quote(spec.name) << "\n";
  o << "  description: " << quote(spec.description) << "\n";
  o << "  family: " << quote(spec.family) << "\n";
  for (const auto& f : fields()) {
    std::string field = f.info.key.substr(4);
    if (field == "name" || field == "family") continue;
    auto src = spec.sources.find(f.info.key);
    bool unc = std::find(spec.uncertain.begin(), spec.uncertain.end(), f.info.key) != spec.uncertain.end();
    o << "  " << field << " { value: " << quote(f.get(spec))
      << " source: " << quote(src == spec.sources.end() ? "unspecified" : src->second)
      << (unc ? " uncertain: true" : "") << " }\n";
  }
  o << "}\n";
  return o.str();
}

core::BytesPerSecond interconnect_bidirectional(const GpuSpec& spec) { return spec.nvlink_bw * 2.0; }

}  // namespace tcsim::topology
