// Per-family calibration (platforms/calibration.textproto, embedded in the binary).
#pragma once

#include <string>
#include <vector>

namespace tcsim::sim {

struct Curve {
  std::vector<double> x, eff;  ///< ascending x
  /// Efficiency at x, interpolated linearly in log10(x), clamped at both ends.
  [[nodiscard]] double at(double x_value) const;
};

struct FamilyCalibration {
  std::string family;
  double nvlink_efficiency = 1;
  double nvls_efficiency = 0;
  double nic_efficiency = 1;
  double fabric_efficiency = 1;
  Curve gemm, expert_gemm;
  double attention_efficiency = 1;
  double hbm_efficiency = 1;
  double launch_overhead_s = 0;
  int comm_sms = 0;
  double fp8_gemm_derate = 1;
  std::string borrowed_from;  ///< non-empty when this family has no table of its own
};

/// The calibration of a family; families without their own table borrow the closest
/// measured one (blackwell -> hopper, others -> hopper) and say so in borrowed_from.
FamilyCalibration calibration_for(const std::string& family);
/// Families with a table of their own.
std::vector<std::string> calibrated_families();

}  // namespace tcsim::sim
