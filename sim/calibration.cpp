#include "sim/calibration.hpp"

#include <cmath>
#include <mutex>
#include <string_view>

#include "core/error.hpp"
#include "core/proto_util.hpp"
#include "sim/calibration.pb.h"

namespace tcsim::embedded {
extern const std::string_view calibration_textproto;
}

namespace tcsim::sim {
namespace {

const config::CalibrationTable& table() {
  static config::CalibrationTable t;
  static std::once_flag once;
  std::call_once(once, [] {
    core::parse_textproto(std::string(embedded::calibration_textproto), "platforms/calibration.textproto", t);
  });
  return t;
}

Curve to_curve(const google::protobuf::RepeatedPtrField<config::CurvePoint>& pts) {
  Curve c;
  for (const auto& p : pts) {
    c.x.push_back(p.x());
    c.eff.push_back(p.efficiency());
  }
  return c;
}

}  // namespace

double Curve::at(double v) const {
  if (x.empty()) return 1.0;
  if (v <= x.front()) return eff.front();
  if (v >= x.back()) return eff.back();
  for (size_t i = 1; i < x.size(); ++i) {
    if (v <= x[i]) {
      double t = (std::log10(v) - std::log10(x[i - 1])) / (std::log10(x[i]) - std::log10(x[i - 1]));
      return eff[i - 1] + t * (eff[i] - eff[i - 1]);
    }
  }
  return eff.back();
}

std::vector<std::string> calibrated_families() {
  std::vector<std::string> out;
  for (const auto& f : table().family()) out.push_back(f.family());
  return out;
}

FamilyCalibration calibration_for(const std::string& family) {
  const config::FamilyCalibration* found = nullptr;
  for (const auto& f : table().family()) {
    if (f.family() == family) found = &f;
  }
  std::string borrowed;
  if (found == nullptr) {
    for (const auto& f : table().family()) {
      if (f.family() == "hopper") found = &f;
    }
    borrowed = "hopper";
  }
  if (found == nullptr) throw core::InputError("calibration", "no calibration for GPU family '" + family + "'");
  const auto& f = *found;
  FamilyCalibration c;
  c.family = family;
  c.borrowed_from = borrowed;
  c.nvlink_efficiency = f.nvlink_efficiency().value();
  c.nvls_efficiency = f.nvls_efficiency().value();
  c.nic_efficiency = f.nic_efficiency().value();
  c.fabric_efficiency = f.fabric_efficiency().value();
  c.gemm = to_curve(f.gemm());
  c.expert_gemm = to_curve(f.expert_gemm());
  c.attention_efficiency = f.attention_efficiency().value();
  c.hbm_efficiency = f.hbm_efficiency().value();
  c.launch_overhead_s = f.launch_overhead_us().value() * 1e-6;
  c.comm_sms = static_cast<int>(f.comm_sms().value());
  c.fp8_gemm_derate = f.fp8_gemm_derate().value();
  return c;
}

}  // namespace tcsim::sim
