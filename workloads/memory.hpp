// Per-GPU memory of a training plan: weights, gradients, optimizer states (ZeRO), stored
// activations per pipeline schedule, recompute workspace and communication buffers.
// Hardware independent: the GPU's memory is passed in as a Bytes value.
//
// Activations follow Korthikanti et al., "Reducing Activation Recomputation in Large
// Transformer Models" (arXiv 2205.05198, §4): per layer and micro-batch of b sequences of
// s tokens, 16-bit activations, a heads, t-way tensor parallelism:
//   no parallelism        s·b·h·(34 + 5·a·s/h)
//   TP                    s·b·h·(10 + 24/t + 5·a·s/(h·t))
//   TP + SP               s·b·h·(34 + 5·a·s/h)/t
//   TP + SP + selective   34·s·b·h/t
//   full recompute        2·s·b·h (per layer input; /t with SP)
// derived term by term so that GQA/MLA attention, gated FFNs and MoE layers fit the same
// accounting (see memory.cpp). The 5·a·s/h term (softmax scores 2, dropout mask 1,
// dropout output 2) is stored only with plan.materialize_attention_scores; by default
// attention is flash attention, which keeps only the output and the log-sum-exp.
// Dropout masks (1 byte per element) are stored only when model.dropout is set.
//
// Model states follow ZeRO (Rajbhandari et al., arXiv 1910.02054): 2 bytes of weights and
// 2 of gradients per parameter plus K = plan.optimizer_bytes_per_param (default 12: FP32
// master, Adam m and v) sharded over the data-parallel group from stage 1 (optimizer),
// 2 (+ gradients), 3 (+ weights). Dense parameters shard over dp·cp ranks, expert
// parameters over their dp/ep·cp expert-data-parallel ranks.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/units.hpp"
#include "workloads/model.pb.h"

namespace tcsim::workloads {

struct MemoryBreakdown {
  int64_t stage = 0;               ///< the pipeline stage reported (the one with most memory)
  int64_t layers = 0;              ///< transformer layers that stage's GPUs hold
  double params = 0;               ///< parameters one GPU holds before ZeRO sharding
  double in_flight = 0;            ///< micro-batches whose activations are held at the peak
  core::Bytes weights, grads, optimizer;
  core::Bytes activations;         ///< stored activations at the peak of the schedule
  core::Bytes workspace;           ///< full recompute: live activations of the layer being recomputed
  core::Bytes comm_buffers;        ///< TP/EP/PP/ZeRO-3 buffers (estimates, see memory.cpp)
  core::Bytes total;
  core::Bytes activation_per_layer;  ///< one micro-batch through one (average) layer of the stage
};

/// Activation bytes one rank stores for one micro-batch through transformer layer `layer`,
/// without recompute applied when `ignore_recompute` is true. plan must be resolved.
core::Bytes layer_activation_bytes(const config::ModelSpec& m, const config::ParallelPlan& resolved, int64_t layer,
                                   bool ignore_recompute = false);

/// Memory of every pipeline stage (index = stage) for a plan that passed check_plan.
std::vector<MemoryBreakdown> estimate_stage_memory(const config::ModelSpec& m, const config::ParallelPlan& plan,
                                                   int64_t gpus);
/// The stage with the largest total.
MemoryBreakdown estimate_memory(const config::ModelSpec& m, const config::ParallelPlan& plan, int64_t gpus);

/// Multi-line human-readable breakdown ("weights 12.3 GiB ...").
std::string format_memory(const MemoryBreakdown& b);

/// Throws InputError(where, breakdown) when the plan needs more than gpu_memory per GPU.
void check_memory(const config::ModelSpec& m, const config::ParallelPlan& plan, int64_t gpus,
                  core::Bytes gpu_memory, const std::string& where);

}  // namespace tcsim::workloads
