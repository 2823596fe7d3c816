// A long step's time from three short ones. A pipeline step of M micro-batches is a
// warm-up, M - c repetitions of the same steady-state period, and a cool-down with the
// gradient reduction: for M past the warm-up its time is affine in M. Plan search
// (sim/search.hpp) ranks thousands of plans, and the cost of each is its micro-batch
// count: DeepSeek-V3 on 2,048 GPUs with dp = 8 has 1,920 micro-batches per pipeline.
//
// estimate_step simulates M1, M1 + g and M1 + 2g micro-batches (M1 = the pipeline depth
// plus one, at least the schedule's minimum (2 x pp for dualpipe), rounded up to its
// granularity g: pp for interleaved-1f1b, 2 for dualpipe, else 1), and when the two slopes agree (relative difference at most
// `slope_tolerance`) extrapolates the third along its slope to M. Otherwise, or when the
// three runs would not save at least half the micro-batches, it simulates the full step.
// Measured (analytical, DeepSeek-V3 on 2,048 H800): 1f1b/interleaved plans are affine to
// the last digit; DualPipe with EP's routed all-to-alls varies by ~0.1% per micro-batch.
#pragma once

#include <array>
#include <cstdint>
#include <functional>

#include "workloads/model.pb.h"

namespace tcsim::sim {

struct StepEstimate {
  double step_time_s = 0;
  int64_t micro_batches = 0;  ///< per pipeline in the full step
  /// The micro-batch counts simulated to extrapolate from (all zero: the full step ran).
  std::array<int64_t, 3> simulated{};
  [[nodiscard]] bool extrapolated() const { return simulated[0] > 0; }
};

struct SteadyStateOptions {
  double slope_tolerance = 1e-3;  ///< relative difference allowed between the two slopes
  bool enabled = true;            ///< false: always simulate the full step
};

/// The step time of w on gpus GPUs. step_of(workload) simulates a workload (w with another
/// micro-batch count, or w itself) and returns its step time. w's plan must pass the plan
/// checks (workloads/plan.hpp). A shorter step that step_of refuses with an InputError
/// falls back to the full step; the full step's InputErrors pass through.
StepEstimate estimate_step(const workloads::config::Workload& w, int gpus,
                           const std::function<double(const workloads::config::Workload&)>& step_of,
                           const SteadyStateOptions& options = {});

}  // namespace tcsim::sim
