// Program generation: a workload (model + plan) on a number of GPUs becomes one op DAG
// per lane (see program.hpp). Hardware-independent: FLOPs from the model's layer
// counts (model.hpp), bytes from tokens, hidden size and precision, groups from the plan.
//
// What one step contains (plan with data and expert parallelism; TP = PP = 1 for now):
//   for each micro-batch: for each layer: forward (attention projections, attention core,
//   and either the dense FFN or router -> dispatch all-to-all -> routed + shared experts
//   -> combine all-to-all), then the LM head (+ MTP modules) and the backward pass in
//   reverse (2x the matmul FLOPs; the all-to-alls again, combine first);
//   in the last micro-batch each layer's gradients are all-reduced as soon as its
//   backward is done (one bucket per layer, overlapping the rest of the backward, as
//   Megatron's overlap_grad_reduce does): dense parameters over the data-parallel group,
//   expert parameters over the ranks holding the same experts; then the optimizer step.
//
// Folding: with uniform routing every rank of such a plan runs the same program, so by
// default the program has one lane standing for all ranks (sim.fold=false gives one lane
// per rank; both give the same step time).
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

/// Builds the program of one training step of workload w on `gpus` GPUs. The plan must
/// already be valid for that many GPUs; unsupported plan features are InputErrors.
Program generate(const config::Workload& w, int gpus, const GeneratorOptions& options = {});

}  // namespace tcsim::workloads
