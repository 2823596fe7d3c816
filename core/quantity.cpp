#include "core/quantity.hpp"

#include <array>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include "core/error.hpp"

namespace tcsim::core {
namespace {

struct Unit {
  std::string_view name;
  double factor;  // multiply the number by this to get SI base units
};

// Accepted spellings, longest first where one is a suffix of another is irrelevant: we
// match the whole unit token exactly.
const std::vector<Unit> kBytes = {
    {"B", 1},        {"kB", 1e3},     {"KB", 1e3},     {"MB", 1e6},     {"GB", 1e9},
    {"TB", 1e12},    {"PB", 1e15},    {"KiB", 1024.0}, {"MiB", 1048576.0},
    {"GiB", 1073741824.0}, {"TiB", 1099511627776.0}, {"PiB", 1125899906842624.0}};

const std::vector<Unit> kSeconds = {{"s", 1},     {"ms", 1e-3}, {"us", 1e-6}, {"\xC2\xB5s", 1e-6},
                                    {"ns", 1e-9}, {"ps", 1e-12}, {"min", 60}, {"h", 3600},
                                    {"d", 86400}};

const std::vector<Unit> kBandwidth = {
    {"Bps", 1},      {"kBps", 1e3},   {"KBps", 1e3},   {"MBps", 1e6},    {"GBps", 1e9},
    {"TBps", 1e12},  {"B/s", 1},      {"kB/s", 1e3},   {"KB/s", 1e3},    {"MB/s", 1e6},
    {"GB/s", 1e9},   {"TB/s", 1e12},  {"KiBps", 1024.0}, {"MiBps", 1048576.0},
    {"GiBps", 1073741824.0}, {"bps", 0.125}, {"kbps", 125}, {"Kbps", 125}, {"Mbps", 1.25e5},
    {"Gbps", 1.25e8}, {"Tbps", 1.25e11}, {"b/s", 0.125}, {"kb/s", 125}, {"Kb/s", 125},
    {"Mb/s", 1.25e5}, {"Gb/s", 1.25e8}, {"Tb/s", 1.25e11}};

const std::vector<Unit> kFlopsRate = {
    {"FLOPS", 1},       {"KFLOPS", 1e3},  {"MFLOPS", 1e6},  {"GFLOPS", 1e9}, {"TFLOPS", 1e12},
    {"PFLOPS", 1e15},   {"EFLOPS", 1e18}, {"f", 1},         {"kf", 1e3},     {"Mf", 1e6},
    {"Gf", 1e9},        {"Tf", 1e12},     {"Pf", 1e15},     {"Ef", 1e18}};

const std::vector<Unit> kFlops = {{"FLOP", 1},     {"KFLOP", 1e3},  {"MFLOP", 1e6},
                                  {"GFLOP", 1e9},  {"TFLOP", 1e12}, {"PFLOP", 1e15},
                                  {"EFLOP", 1e18}, {"ZFLOP", 1e21}};

const std::vector<Unit> kWatts = {{"W", 1}, {"kW", 1e3}, {"MW", 1e6}, {"GW", 1e9}};

const std::vector<Unit> kJoules = {{"J", 1},       {"kJ", 1e3},   {"MJ", 1e6},
                                   {"GJ", 1e9},    {"Wh", 3600},  {"kWh", 3.6e6},
                                   {"MWh", 3.6e9}, {"GWh", 3.6e12}};

const std::vector<Unit> kCount = {{"", 1}, {"K", 1e3}, {"M", 1e6}, {"B", 1e9}, {"G", 1e9},
                                  {"T", 1e12}, {"P", 1e15}};

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::string list_units(const std::vector<Unit>& units) {
  std::string out;
  for (const auto& u : units) {
    if (u.name.empty()) continue;
    if (!out.empty()) out += ", ";
    out += u.name;
  }
  return out;
}

// Splits "400GBps" into 400 and "GBps". Throws when there is no number.
std::pair<double, std::string_view> split_number(std::string_view text, const std::string& where,
                                                 std::string_view what) {
  std::string_view s = trim(text);
  // std::from_chars for double is available in GCC 12.
  double value = 0;
  const char* begin = s.data();
  const char* end = s.data() + s.size();
  if (!s.empty() && s.front() == '+') ++begin;
  auto [ptr, ec] = std::from_chars(begin, end, value);
  if (ec != std::errc() || ptr == begin) {
    throw InputError(where, "expected " + std::string(what) + ", got '" + std::string(text) + "'");
  }
  if (!std::isfinite(value)) {
    throw InputError(where, "'" + std::string(text) + "' is not a finite number");
  }
  return {value, trim(std::string_view(ptr, static_cast<size_t>(end - ptr)))};
}

double parse_with(std::string_view text, const std::string& where, const std::vector<Unit>& units,
                  std::string_view what) {
  auto [value, unit] = split_number(text, where, std::string(what) + " with a unit (" + list_units(units) + ")");
  if (unit.empty()) {
    throw InputError(where, "'" + std::string(text) + "' has no unit; " + std::string(what) +
                                " needs one of: " + list_units(units));
  }
  for (const auto& u : units) {
    if (u.name == unit) return value * u.factor;
  }
  throw InputError(where, "unknown unit '" + std::string(unit) + "' in '" + std::string(text) +
                              "' for " + std::string(what) + "; accepted units: " + list_units(units));
}

std::string format_with(double v, const std::vector<std::pair<double, const char*>>& scales) {
  for (const auto& [factor, name] : scales) {
    if (std::fabs(v) >= factor || factor == scales.back().first) {
      char buf[64];
      std::snprintf(buf, sizeof buf, "%.6g%s", v / factor, name);
      return buf;
    }
  }
  return format_number(v);
}

}  // namespace

Bytes parse_bytes(std::string_view t, const std::string& w) { return Bytes(parse_with(t, w, kBytes, "a size")); }
Seconds parse_seconds(std::string_view t, const std::string& w) { return Seconds(parse_with(t, w, kSeconds, "a time")); }
BytesPerSecond parse_bandwidth(std::string_view t, const std::string& w) {
  return BytesPerSecond(parse_with(t, w, kBandwidth, "a bandwidth"));
}
FlopsPerSecond parse_flops_rate(std::string_view t, const std::string& w) {
  return FlopsPerSecond(parse_with(t, w, kFlopsRate, "a compute rate"));
}
Flops parse_flops(std::string_view t, const std::string& w) { return Flops(parse_with(t, w, kFlops, "an amount of FLOP")); }
Watts parse_watts(std::string_view t, const std::string& w) { return Watts(parse_with(t, w, kWatts, "a power")); }
Joules parse_joules(std::string_view t, const std::string& w) { return Joules(parse_with(t, w, kJoules, "an energy")); }

double parse_count(std::string_view text, const std::string& where) {
  auto [value, unit] = split_number(text, where, "a count such as 4096, 2K, 1.5M or 14.8T");
  for (const auto& u : kCount) {
    if (u.name == unit) return value * u.factor;
  }
  throw InputError(where, "unknown suffix '" + std::string(unit) + "' in '" + std::string(text) +
                              "'; a count takes none or one of: K, M, B (=G), T, P");
}

double parse_number(std::string_view text, const std::string& where) {
  auto [value, unit] = split_number(text, where, "a number");
  if (!unit.empty()) {
    throw InputError(where, "'" + std::string(text) + "' should be a plain number without unit");
  }
  return value;
}

long long parse_integer(std::string_view text, const std::string& where) {
  std::string_view s = trim(text);
  long long value = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (ec != std::errc() || ptr != s.data() + s.size() || s.empty() || value < 0) {
    throw InputError(where, "expected a non-negative integer, got '" + std::string(text) + "'");
  }
  return value;
}

std::string format_number(double v) {
  char buf[64];
  for (int precision = 6; precision <= 17; ++precision) {
    std::snprintf(buf, sizeof buf, "%.*g", precision, v);
    if (std::strtod(buf, nullptr) == v) break;
  }
  return buf;
}

std::string format_bytes(Bytes v) {
  return format_with(v.value(), {{1073741824.0 * 1024, "TiB"}, {1073741824.0, "GiB"}, {1048576.0, "MiB"}, {1024.0, "KiB"}, {1, "B"}});
}
std::string format_seconds(Seconds v) {
  return format_with(v.value(), {{1, "s"}, {1e-3, "ms"}, {1e-6, "us"}, {1e-9, "ns"}});
}
std::string format_bandwidth(BytesPerSecond v) {
  return format_with(v.value(), {{1e12, "TBps"}, {1e9, "GBps"}, {1e6, "MBps"}, {1e3, "KBps"}, {1, "Bps"}});
}
std::string format_flops_rate(FlopsPerSecond v) {
  return format_with(v.value(), {{1e15, "PFLOPS"}, {1e12, "TFLOPS"}, {1e9, "GFLOPS"}, {1, "FLOPS"}});
}
std::string format_watts(Watts v) { return format_with(v.value(), {{1e6, "MW"}, {1e3, "kW"}, {1, "W"}}); }

}  // namespace tcsim::core
