// Parsing and printing of quantities with units: "400GBps", "200Gbps", "1.5us",
// "989TFLOPS", "80GiB", "700W". Decimal prefixes are powers of 1000 (GB = 1e9 bytes),
// binary ones powers of 1024 (GiB = 2^30 bytes); bits ("Gbps", "Gb/s") are divided by 8.
// A bare number where a unit is required, or an unknown unit, throws InputError naming
// the token and the accepted units.
#pragma once

#include <string>
#include <string_view>

#include "core/units.hpp"

namespace tcsim::core {

Bytes parse_bytes(std::string_view text, const std::string& where);
Seconds parse_seconds(std::string_view text, const std::string& where);
BytesPerSecond parse_bandwidth(std::string_view text, const std::string& where);
FlopsPerSecond parse_flops_rate(std::string_view text, const std::string& where);
Flops parse_flops(std::string_view text, const std::string& where);
Watts parse_watts(std::string_view text, const std::string& where);
Joules parse_joules(std::string_view text, const std::string& where);

/// A plain count with an optional SI suffix: "14.8T" tokens, "4096", "2K", "1.5M", "3B".
double parse_count(std::string_view text, const std::string& where);
/// A plain number without unit ("0.8", "1e-3"); a unit suffix is an error.
double parse_number(std::string_view text, const std::string& where);
/// A non-negative integer ("64"); anything else is an error.
long long parse_integer(std::string_view text, const std::string& where);

/// Canonical spellings used in generated files and reports (round-trip through parse_*):
/// "450GBps", "1.5us", "989TFLOPS", "80GiB" style with up to 6 significant digits.
std::string format_bytes(Bytes v);
std::string format_seconds(Seconds v);
std::string format_bandwidth(BytesPerSecond v);
std::string format_flops_rate(FlopsPerSecond v);
std::string format_watts(Watts v);
/// Shortest decimal text that parses back to exactly the same double.
std::string format_number(double v);

}  // namespace tcsim::core
