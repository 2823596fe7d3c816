// Per-GPU memory of a training plan: weights, gradients, optimizer states (ZeRO), stored
// activations at the peak of the pipeline schedule, recompute workspace and communication
// buffers. Hardware independent: the GPU's memory is passed in as a Bytes value.
//
// Activations follow Korthikanti et al., "Reducing Activation Recomputation in Large
// Transformer Models" (arXiv 2205.05198, §4): per layer and micro-batch of b sequences of
// s tokens, 16-bit activations, a heads, t-way tensor parallelism:
//   no parallelism        s·b·h·(34 + 5·a·s/h)
//   TP                    s·b·h·(10 + 24/t + 5·a·s/(h·t))
//   TP + SP               s·b·h·(34 + 5·a·s/h)/t
//   TP + SP + selective   34·s·b·h/t
//   full recompute        2·s·b·h (per layer input; /t with SP)
// derived tensor by tensor (memory.cpp) so that GQA/MLA attention, gated FFNs and MoE
// layers fit the same accounting. The 5·a·s/h term (softmax scores 2, dropout mask 1,
// dropout output 2) is stored only with plan.materialize_attention_scores; by default
// attention is flash attention, which keeps Q, K, V, its output and the log-sum-exp.
// Dropout masks (1 byte per element) are stored only when model.dropout is set.
//
// Storage formats (plan.precision=fp8, DeepSeek-V3 arXiv 2412.19437 §3.3): a GEMM input
// kept for the weight gradient is cached in FP8 with one FP32 scale per 1x128 tile
// (1 + 4/128 bytes); norm inputs, the attention core (Q, K, V, log-sum-exp), the router
// and the output head stay BF16/FP32. The attention output serves the attention backward
// (BF16) and the output projection (FP8 copy) unless plan.attn_out_cache_bits caches one
// copy for both (DeepSeek-V3: 12, E5M6). plan.moe_act_cache_bits caches the experts'
// SwiGLU input (DeepSeek-V3: 8). The routing weights multiply the SwiGLU output
// (Megatron-core), so expert outputs are not stored for the combine.
//
// Selective recompute (plan.recompute=selective) rebuilds plan.recompute_modules in the
// backward (Megatron-core's names; default core_attn): core_attn (materialized scores, or
// flash's log-sum-exp), layernorm (the pre-attention/pre-FFN norm outputs), mla_up_proj
// (latent norms, up-projections: Q, K, V), moe_act (the experts' SwiGLU output).
// DeepSeek-V3 §3.2.3 recomputes all RMSNorms and MLA up-projections, §3.3.3 caches the
// MoE SwiGLU input in FP8 and recomputes its output: layernorm, mla_up_proj, moe_act with
// moe_act_cache_bits=8. The largest layer's recomputed tensors are the workspace.
//
// Pipeline peak: the schedule's own step order (workloads/schedule.hpp) is walked per
// stage: F adds one micro-batch's activations of that chunk, BW frees them, a split backward
// (zero-bubble B/W) keeps from B to W what the weight gradients need, every GEMM's input
// and output gradient. DualPipe
// stage s holds chunk s of one copy and chunk pp-1-s of the other: at its peak pp-s and s+1
// micro-batches of them (pp+1 in all, Table 2), each with its own layer count.
//
// Model states follow ZeRO (Rajbhandari et al., arXiv 1910.02054): 2 bytes of weights and
// plan.grad_bytes_per_param (default 2; 4 for FP32 gradient accumulation) of gradients per
// parameter plus K = plan.optimizer_bytes_per_param (default 12: FP32 master, Adam m and v)
// sharded over the data-parallel group from stage 1 (optimizer), 2 (+ gradients),
// 3 (+ weights). Dense parameters shard over dp·cp ranks, expert parameters over their
// dp/ep·cp expert-data-parallel ranks.
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
  double in_flight = 0;            ///< most forward chunk passes held at once (forward done, B not yet),
                                   ///< per chunk of one model copy on the stage (1f1b stage s: pp - s;
                                   ///< dualpipe: pp + 1, both copies; interleaved-1f1b: passes / v)
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

/// The same, split by block (full recompute: the layer input, all in `attention`).
struct LayerActivation {
  core::Bytes attention;           ///< pre-attention norm input through the attention output
  core::Bytes ffn;                 ///< pre-FFN norm input through the FFN / MoE block
  core::Bytes weight_grad_operands;  ///< what the weight gradients need: GEMM inputs (recomputed ones
                                     ///< too) and output gradients, held from B to W
};
LayerActivation layer_activation(const config::ModelSpec& m, const config::ParallelPlan& resolved, int64_t layer);

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
