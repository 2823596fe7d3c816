// Pipeline schedules: per pipeline stage, the ordered list of (micro-batch, chunk, pass)
// that the generator expands into ops. Registered by name (the names of
// plan.hpp's pipeline_schedules()), each with a builder, a description and a citation.
//
// Vocabulary.
//  - A *chunk* is a contiguous range of layers (workloads/plan.hpp chunk_layers). A stage
//    holds `chunks_per_stage` of them: 1 (gpipe, 1f1b, zb-h1), v (interleaved-1f1b: local
//    chunk j of stage s is model chunk j·pp + s) or 2 (dualpipe: local chunk 0 is model
//    chunk s of the forward-direction copy, local chunk 1 model chunk pp-1-s of the
//    reverse-direction copy).
//  - A micro-batch travels a *path* of positions 0..positions-1 (model chunks in model
//    order); position 0 holds the embedding (and the vision encoder), the last one the
//    output head and loss. DualPipe has two paths: micro-batches [0, m/2) enter at stage 0,
//    [m/2, m) at stage pp-1.
//  - Passes: F (forward), B (input gradients only), W (weight gradients only), BW (the
//    whole backward, B then W, as schedules that do not split it run it).
//  - `overlap_next` on an F step: it and the following B/BW step of the same stage run as
//    one overlapped pair (DualPipe's F&B): their layers interleave on the compute stream so
//    that the all-to-all of one hides under the compute of the other.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace tcsim::workloads {

enum class Pass : uint8_t { F, B, W, BW };
const char* to_string(Pass p);

struct PipeStep {
  int32_t mb = 0;
  int32_t chunk = 0;  ///< local chunk index on the stage
  Pass pass = Pass::F;
  bool overlap_next = false;
};

struct ChunkPlace {
  int32_t stage = 0;
  int32_t chunk = 0;  ///< local chunk index
};

struct PipelineSchedule {
  std::string name;
  int64_t pp = 1, micro_batches = 1, chunks_per_stage = 1, positions = 1;
  bool bidirectional = false;
  std::vector<std::vector<PipeStep>> stages;  ///< [stage] -> steps in execution order

  /// Path a micro-batch takes: 0 (stage 0 -> pp-1) or, for DualPipe's second half, 1.
  [[nodiscard]] int direction(int64_t mb) const;
  /// Where position pos of path `dir` runs.
  [[nodiscard]] ChunkPlace place(int dir, int64_t pos) const;
  /// Position (= model chunk index) of a stage's local chunk, and the path it belongs to.
  [[nodiscard]] int64_t position(int64_t stage, int64_t chunk) const;
  [[nodiscard]] int chunk_direction(int64_t chunk) const { return bidirectional ? static_cast<int>(chunk) : 0; }
};

/// Relative durations of the passes, for builders that place steps by time (none of the
/// registered ones does: their orders follow the published schedules).
struct PassDurations {
  double f = 1, b = 1, w = 1;  ///< B is the input-gradient part; BW = b + w
};

struct ScheduleBuilder {
  const char* name;
  const char* description;
  const char* citation;
  std::function<PipelineSchedule(int64_t pp, int64_t micro_batches, int64_t virtual_stages, const PassDurations&)> build;
};

/// Every registered builder (one per name of plan.hpp's pipeline_schedules()).
const std::vector<ScheduleBuilder>& schedule_builders();

/// Builds schedule `name` (case-insensitive). Throws core::InputError naming the valid
/// schedules, or the micro-batch / stage constraint that is not met.
PipelineSchedule build_schedule(const std::string& name, int64_t pp, int64_t micro_batches, int64_t virtual_stages,
                                const PassDurations& d = {});

/// Result of the list simulation of a schedule: start and end time of every step.
struct StepTime {
  double start = 0, end = 0;
};
struct ScheduleTiming {
  std::vector<std::vector<StepTime>> steps;  ///< [stage][step]
  double makespan = 0;
  std::vector<double> busy;  ///< per stage
};

/// A tiny list simulator: each stage runs its steps in order, one at a time; a step starts
/// when its stage is free and its inputs are there (F: the previous position's F of the
/// micro-batch; B/BW: the next position's B/BW, or the own F at the last position; W: its
/// own B). An overlapped F&B pair starts when both inputs are there and lasts F + B. p2p
/// costs `p2p_latency`. duration(stage, step) gives each step's time.
ScheduleTiming simulate_schedule(const PipelineSchedule& s,
                                 const std::function<double(int64_t stage, const PipeStep&)>& duration,
                                 double p2p_latency = 0);

/// Checks that every (micro-batch, position) gets exactly one F and one backward (BW, or B
/// and W) on the right stage, in a valid order; throws std::logic_error otherwise.
void check_schedule(const PipelineSchedule& s);

}  // namespace tcsim::workloads
