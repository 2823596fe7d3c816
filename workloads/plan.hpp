// Training plans: defaults, validation and the rank layout of a config::ParallelPlan.
//
// Parallel dimensions (Megatron-LM conventions, Narayanan et al. arXiv 2104.04473):
//   world = tp · cp · pp · dp.
// Expert parallelism is carved out of data parallelism: an EP group is `ep` consecutive
// data-parallel ranks (same tp, cp, pp coordinates), so ep must divide dp; expert weights
// are also split by tp (expert tensor parallelism = tp, Megatron's default). Expert
// gradients are reduced over the dp/ep "expert data-parallel" (EDP) ranks.
//
// Rank order (`plan.order`, innermost first, default "tp-cp-ep-dp-pp"): consecutive ranks
// differ first in the innermost dimension, so "tp-..." keeps a TP group inside a node.
// 'ep', when written, must sit immediately before 'dp' (EP groups are consecutive dp ranks).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "workloads/model.pb.h"

namespace tcsim::workloads {

/// A pipeline schedule's requirements, registered by name.
struct ScheduleInfo {
  const char* name;
  const char* description;
  const char* citation;
  bool interleaved = false;    ///< uses virtual_stages >= 2 (chunks per rank)
  bool bidirectional = false;  ///< DualPipe: two model copies per rank, pp even
};
/// gpipe, 1f1b, interleaved-1f1b, zb-h1, dualpipe.
const std::vector<ScheduleInfo>& pipeline_schedules();
/// nullptr when unknown (case-insensitive).
const ScheduleInfo* find_schedule(const std::string& name);
/// Fewest micro-batches per pipeline per step the schedule needs with pp stages
/// (1 when pp == 1). gpipe 1; 1f1b, zb-h1, interleaved-1f1b pp; dualpipe 2·pp.
int64_t min_micro_batches(const std::string& schedule, int64_t pp);

/// One reason a plan cannot run. field is the --set key ("plan.ep", "gpus", "model.layers").
struct PlanProblem {
  std::string field;
  std::string message;  ///< the value and what would be valid
};

/// The plan with every default filled in: tp/pp/ep/cp/virtual_stages/micro_batch 0 -> 1,
/// seq_len 0 -> the model's, dp 0 -> gpus / (tp·cp·pp) (when it divides), precision
/// "bf16", schedule "1f1b", order "tp-cp-ep-dp-pp", optimizer_bytes_per_param 0 -> 12,
/// global_batch from num_micro_batches (or the reverse); with neither, num_micro_batches =
/// 1 without pipelining, else max(4·pp, the schedule's minimum). Never throws.
config::ParallelPlan resolve_plan(const config::ModelSpec& m, const config::ParallelPlan& plan, int64_t gpus);

/// Every problem of the plan on `gpus` GPUs (empty when it can run; memory not checked).
std::vector<PlanProblem> check_plan(const config::ModelSpec& m, const config::ParallelPlan& plan, int64_t gpus);

/// Throws core::InputError for the first problem of check_plan: where "<where>: plan.ep"
/// (or "--set plan.ep" when where is "--set"), what = value and what would be valid.
void validate_plan(const config::ModelSpec& m, const config::ParallelPlan& plan, int64_t gpus,
                   const std::string& where);

/// Positive divisors of n, as "1, 2, 4, 8" (for error messages).
std::string divisors_text(int64_t n);
std::vector<int64_t> divisors(int64_t n);

// --- helpers on a resolved plan --------------------------------------------------------

/// Micro-batches per pipeline per step: global_batch / (micro_batch · dp).
int64_t micro_batches(const config::ParallelPlan& resolved);
/// Tokens per micro-batch per rank: micro_batch · seq_len / cp.
int64_t tokens_per_micro_batch(const config::ParallelPlan& resolved);

/// A contiguous range of transformer layers.
struct LayerRange {
  int64_t first = 0;
  int64_t count = 0;
};
/// Layers of each model chunk, pp · virtual_stages of them, in model order. Chunk c lives
/// on pipeline stage c % pp (Megatron interleaving: stage s holds chunks s, s+pp, ...).
/// Uneven splits give the extra layers to chunks 1, 2, ... (chunk 0 holds the embedding,
/// the last chunk the output head).
std::vector<LayerRange> chunk_layers(const config::ModelSpec& m, const config::ParallelPlan& resolved);
/// Transformer layers held by pipeline stage s (all its chunks; DualPipe: both copies).
int64_t stage_layer_count(const config::ModelSpec& m, const config::ParallelPlan& resolved, int64_t stage);

/// Micro-batches whose activations stage s holds at its peak, in units of "one
/// micro-batch through all of the stage's layers" (for one model copy). gpipe: m;
/// 1f1b and zb-h1: min(m, pp - s); interleaved-1f1b (v chunks): Megatron's warm-up
/// ((pp - s - 1)·2 + (v - 1)·pp + 1 chunk passes) / v; dualpipe: pp + 1 (DeepSeek-V3 Table 2).
double in_flight_micro_batches(const config::ParallelPlan& resolved, int64_t stage);

/// Coordinates of a rank along each parallel dimension.
struct RankCoord {
  int64_t tp = 0, cp = 0, dp = 0, pp = 0;
  int64_t ep = 0;   ///< index inside its EP group: dp % ep
  int64_t edp = 0;  ///< index inside its expert-data-parallel group: dp / ep
};

enum class ParallelDim { TP, CP, DP, PP, EP, EDP };
const char* to_string(ParallelDim d);

/// Maps ranks to coordinates and back, and lists the groups of each dimension.
class RankLayout {
public:
  /// resolved: a plan that passed check_plan.
  explicit RankLayout(const config::ParallelPlan& resolved);

  [[nodiscard]] int64_t world() const { return world_; }
  [[nodiscard]] RankCoord coord(int64_t rank) const;
  [[nodiscard]] int64_t rank(const RankCoord& c) const;  ///< uses tp, cp, dp, pp
  /// All groups along d (each ordered by the index along d), sorted by their first rank.
  [[nodiscard]] std::vector<std::vector<int>> groups(ParallelDim d) const;
  /// The group along d that contains rank.
  [[nodiscard]] std::vector<int> group_of(ParallelDim d, int64_t rank) const;

  /// The groups a program's communicators are made of, in the generator's order.
  enum class CommGroups { TP, CP, EP, DPxCP, EDPxCP, Embedding };
  /// Every group of kind g in the order of its key, the coordinates it does not vary (TP:
  /// cp, dp, pp; CP: tp, dp, pp; EP: tp, cp, edp, pp; DPxCP: tp, pp; EDPxCP: tp, pp, ep;
  /// Embedding: tp, cp, dp, holding stages first_stage and last_stage), each group's ranks
  /// ascending. DPxCP and EDPxCP span CP too (gradients are reduced over both).
  [[nodiscard]] std::vector<std::vector<int>> comm_groups(CommGroups g, int64_t first_stage, int64_t last_stage) const;

private:
  int64_t tp_, cp_, dp_, pp_, ep_, world_;
  int64_t stride_tp_ = 1, stride_cp_ = 1, stride_dp_ = 1, stride_pp_ = 1;
};

}  // namespace tcsim::workloads
