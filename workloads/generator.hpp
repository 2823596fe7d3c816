// Program generation: a workload (model + plan) on a number of GPUs becomes one op DAG
// per lane (see program.hpp). Hardware-independent: FLOPs from the model's layer counts
// (model.hpp), bytes from tokens, hidden size and precision, groups from the plan's
// RankLayout (plan.hpp).
//
// What one step contains. The pipeline schedule (schedule.hpp) gives each stage an ordered
// list of (micro-batch, chunk, F|B|W|BW); each becomes, per layer of the chunk:
//  - attention: [SP all-gather] QKV/out projections, [CP all-gather of K/V, overlapped with
//    the local block] attention core, [TP all-reduce | SP reduce-scatter];
//  - FFN: [SP all-gather] dense FFN [TP all-reduce | SP reduce-scatter], or router ->
//    dispatch all-to-all (EP) -> [TP all-gather] routed experts [TP reduce-scatter] ->
//    shared experts -> combine all-to-all; backward in reverse with 2x the matmul FLOPs
//    (B: input gradients, W: weight gradients when the schedule splits them), each TP
//    collective replaced by its transpose (all-gather <-> reduce-scatter), and with SP one
//    more all-gather per attention / dense FFN block where its weight gradients are
//    computed (Megatron re-gathers the sequence-sharded input of its column-parallel
//    linears, beside the input-gradient GEMM); MoE blocks get no re-gather;
//  - FP8: the all-to-all towards the experts (dispatch; combine's gradient in backward) in
//    FP8, the one back from them in BF16 (DeepSeek-V3 §3.3.2);
//  - position 0 of a path adds the embedding and the vision encoder (once per micro-batch,
//    its FLOPs from the images the micro-batch holds), the last position the LM head, MTP
//    modules and loss. With TP the vocab-parallel embedding's output is all-reduced
//    (reduce-scattered with SP; all-gathered gradient in backward), the head's input
//    all-gathered with SP (its gradient all-reduced, or reduce-scattered with SP, plus the
//    SP re-gather), and the vocab-parallel cross-entropy all-reduces 3 FP32 values per
//    token (MTP heads add none of these); activations (forward) and their gradients
//    (backward) move between stages as Send/Recv of tokens x hidden x 2 bytes (/tp with
//    sequence parallelism);
//  - recompute: FULL reruns each layer's forward (with its TP collectives) before its
//    backward, SELECTIVE reruns the attention core;
//  - data parallel: after a chunk's last weight gradients, per layer (bucket) an
//    all-reduce (ZeRO-0) or reduce-scatter (ZeRO-1/2) of FP32 gradients over the dp x cp
//    ranks (expert gradients over the expert-data-parallel x cp ranks) of what one rank
//    holds (attention, FFN, shared and routed experts, embedding and head split by tp;
//    norms, the final one included, and the router replicated, as workloads/memory.cpp
//    counts them), then the optimizer, then (ZeRO-1/2) the parameter all-gather; ZeRO-3
//    (FSDP) all-gathers each layer's parameters before its forward and backward
//    (prefetching one layer ahead) and reduce-scatters its gradients every micro-batch.
//
// Conventions: expert tensor parallelism = tp (plan.hpp): with tp > 1 each rank dispatches
// its 1/tp of the tokens, the expert's TP group all-gathers the tokens it received and
// reduce-scatters the result. Context parallelism exchanges K/V as an all-gather over the CP
// group (the ring algorithm is exactly cp-1 steps of the local K/V to the next rank) and
// reduce-scatters dK/dV in backward. Embedding/head gradient ties between the first and
// last stage are not modelled.
//
// Folding: one lane per group of ranks with identical programs: per pipeline stage with
// uniform routing, per (stage, EP index) with routing skew. The ranks of stage lanes are
// ordered alike (by the non-pipeline coordinates), so index k of stage s and index k of
// stage s+1 are pipeline neighbours and a Send between the lanes moves every replica pair.
// Communicators are per set of lanes their groups span (e.g. one "tp" per stage), so a
// collective never waits for lanes it does not involve. fold=false gives one lane per rank
// with the same step time.
#pragma once

#include "workloads/model.pb.h"
#include "workloads/program.hpp"

namespace tcsim::workloads {

struct GeneratorOptions {
  bool fold = true;
  /// Bytes per gradient element in the data-parallel reduction (FP32 main gradients, the
  /// Megatron default for BF16 training).
  double grad_bytes = 4;
};

/// Builds the program of one training step of workload w on `gpus` GPUs. Plan problems
/// (plan.hpp check_plan) and bad data distributions are InputErrors.
Program generate(const config::Workload& w, int gpus, const GeneratorOptions& options = {});

/// The step's tokens and model FLOPs (the program's tokens_per_step and
/// model_flops_per_step) without generating the program: for a step whose time is
/// estimated from shorter ones (sim/steady_state.hpp). Same InputErrors as generate().
struct StepTotals {
  double tokens = 0;
  double model_flops = 0;
};
StepTotals step_totals(const config::Workload& w, int gpus);

}  // namespace tcsim::workloads
