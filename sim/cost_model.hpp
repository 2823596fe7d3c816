// Compute cost model: a roofline per GPU times calibrated efficiency curves.
//   time = max(FLOP / (peak(precision) x efficiency(class, size)),
//              HBM bytes / (HBM bandwidth x hbm efficiency)) + launch overhead
// Peak and HBM bandwidth come from the GPU spec; efficiencies from the family's table in
// platforms/calibration.textproto. No workload-specific factors.
#pragma once

#include "sim/calibration.hpp"
#include "topology/gpu.hpp"
#include "workloads/program.hpp"

namespace tcsim::sim {

class CostModel {
public:
  CostModel(const topology::GpuSpec& spec, const FamilyCalibration& calibration);
  /// Seconds one rank needs for op on an otherwise idle GPU with all SMs.
  [[nodiscard]] double seconds(const workloads::ComputeOp& op) const;
  /// Peak FLOP/s for a precision (FP8 falls back to BF16 without FP8 units).
  [[nodiscard]] double peak(workloads::Precision p) const;
  /// Factor (>= 1) by which compute slows while a communication kernel holds SMs.
  [[nodiscard]] double sm_contention_factor() const;

private:
  topology::GpuSpec spec_;
  FamilyCalibration cal_;
};

}  // namespace tcsim::sim
