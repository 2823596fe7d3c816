#include "sim/cost_model.hpp"

#include <algorithm>

namespace tcsim::sim {
using workloads::ComputeClass;
using workloads::Precision;

CostModel::CostModel(const topology::GpuSpec& spec, const FamilyCalibration& calibration)
    : spec_(spec), cal_(calibration) {}

double CostModel::peak(Precision p) const {
  if (p == Precision::FP8 && spec_.fp8_flops.value() > 0) return spec_.fp8_flops.value();
  if (p == Precision::FP32) return spec_.bf16_flops.value() / 2;  // TF32 tensor cores: half the BF16 rate
  return spec_.bf16_flops.value();
}

double CostModel::sm_contention_factor() const {
  if (spec_.sm_count <= 0 || cal_.comm_sms <= 0 || cal_.comm_sms >= spec_.sm_count) return 1.0;
  return static_cast<double>(spec_.sm_count) / static_cast<double>(spec_.sm_count - cal_.comm_sms);
}

double CostModel::seconds(const workloads::ComputeOp& op) const {
  if (op.cls == ComputeClass::Fixed || op.fixed_seconds >= 0) return std::max(0.0, op.fixed_seconds);
  double compute_s = 0;
  if (op.flops > 0) {
    double eff = 1.0;
    double pk = peak(op.precision);
    switch (op.cls) {
      case ComputeClass::Gemm: eff = cal_.gemm.at(op.flops); break;
      case ComputeClass::ExpertGemm: eff = cal_.expert_gemm.at(op.flops); break;
      case ComputeClass::Attention:
        eff = cal_.attention_efficiency;
        pk = peak(Precision::BF16);  // attention runs in BF16 even in FP8 training
        break;
      case ComputeClass::Elementwise: eff = cal_.hbm_efficiency; pk = peak(Precision::BF16); break;
      case ComputeClass::Fixed: break;
    }
    if (op.precision == Precision::FP8 && (op.cls == ComputeClass::Gemm || op.cls == ComputeClass::ExpertGemm) &&
        spec_.fp8_flops.value() > 0) {
      eff *= cal_.fp8_gemm_derate;
    }
    compute_s = op.flops / (pk * eff);
  }
  double memory_s = op.hbm_bytes > 0 ? op.hbm_bytes / (spec_.hbm_bw.value() * cal_.hbm_efficiency) : 0.0;
  if (compute_s == 0 && memory_s == 0) return 0.0;
  return std::max(compute_s, memory_s) + cal_.launch_overhead_s;
}

}  // namespace tcsim::sim
