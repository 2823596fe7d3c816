// Plan enumeration: every plan of a model on N GPUs that passes check_plan and fits in the
// GPU's memory, in a deterministic order, so that a search can evaluate them later.
#pragma once

#include <cstdint>
#include <vector>

#include "core/units.hpp"
#include "workloads/memory.hpp"
#include "workloads/model.pb.h"

namespace tcsim::workloads {

struct EnumerateOptions {
  int64_t gpus = 0;
  core::Bytes gpu_memory;
  int64_t max_tp = 8;   ///< TP beyond one 8-GPU node is rarely useful
  int64_t max_cp = 1;   ///< context-parallel sizes tried: powers of two up to this
  std::vector<int64_t> zero_stages = {1};
  std::vector<config::ParallelPlan::Recompute> recompute = {config::ParallelPlan::NONE,
                                                           config::ParallelPlan::SELECTIVE,
                                                           config::ParallelPlan::FULL};
  /// Fixed fields of every plan (schedule, micro_batch, global_batch, precision, order,
  /// optimizer_bytes_per_param, ...). global_batch 0 means 4 sequences per GPU.
  config::ParallelPlan base;
};

struct PlanCandidate {
  config::ParallelPlan plan;  ///< resolved
  MemoryBreakdown memory;     ///< the stage with the most memory
};

/// Loops tp (divisors of heads, <= max_tp), cp, pp (<= layers; uneven_stages set when pp does
/// not divide the layers), ep (divisors of gcd(dp, experts)), ZeRO stage and recompute.
std::vector<PlanCandidate> enumerate_plans(const config::ModelSpec& m, const EnumerateOptions& opt);

}  // namespace tcsim::workloads
