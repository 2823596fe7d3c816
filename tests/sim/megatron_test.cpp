// End-to-end development check (issue 5 item 5): Megatron-LM SC'21 weak-scaling rows on a
// Selene-like A100 platform (Narayanan et al., arXiv 2104.04473 Table 1; plans from
// NVIDIA/Megatron-LM examples/sc21/run_table_1.sh). Full table and analysis: docs/VALIDATION.md.
//
// One row of Table 1 is within the +-15% target (1T, +14.3%) and is held there by
// MegatronSc21.* below. The other nine are 15-24% FASTER than published, a uniform error
// across TP 1-8, PP 1-64 and DP 6-32 that points at the PROVISIONAL A100 compute curves
// (docs/VALIDATION.md gives the table and the analysis); for them the tests do NOT check the
// published figures but pin the CURRENT predictions of four rows at +-3%, so that a change to
// the compute model, the collectives or the schedules shows up here and the table in
// docs/VALIDATION.md is re-run (experiments/megatron_sc21.py). When another row comes within +-15% with the
// one A100 calibration (platforms/calibration.textproto, measured by microbenchmarks, never
// tuned to this table), move it to a test that asserts the published figure at +-15%.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "sim/simulate.hpp"

using namespace tcsim;

namespace {

struct Row {
  const char* preset;
  int layers, hidden, tp, pp, gpus, global_batch, micro_batch;
  double published_tflops;  // arXiv 2104.04473 Table 1, achieved TFLOPS per GPU
  double pinned_tflops;     // this simulator's prediction when the pin was set (not validated)
  int virtual_stages = 0;   // interleaved 1F1B chunks per rank (run_table_1.sh); 0: plain 1F1B
  // run_table_1.sh's --DDP-impl: "local" (39B and up) reduces the whole gradient buffer after
  // the backward (plan.grad_reduce=after_backward); "torch" overlaps it with the backward.
  bool local_ddp = false;
};

// Megatron's FLOP count per iteration with full activation recomputation (arXiv 2104.04473
// sec 5.1 / appendix): F = 96 B s l h^2 (1 + s/(6h) + V/(16 l h)), s = 2048, V = 51,200.
double megatron_flops(const Row& r) {
  const double B = r.global_batch, s = 2048, V = 51200, l = r.layers, h = r.hidden;
  return 96 * B * s * l * h * h * (1 + s / (6 * h) + V / (16 * l * h));
}

double predicted_tflops_per_gpu(const Row& r, const std::vector<std::string>& extra = {}) {
  sim::RunRequest req;
  req.gpu = "A100";
  req.nodes = r.gpus / 8;
  req.gpus_per_node = 8;
  // Selene-like fabric: the selene-a100-3072 preset (`tcsim topo presets`), at this row's size.
  req.fabric = "multi-plane-fat-tree";
  req.workload = r.preset;
  req.sets = {"fabric.radix=40",
              "plan.tp=" + std::to_string(r.tp),
              "plan.pp=" + std::to_string(r.pp),
              "plan.global_batch=" + std::to_string(r.global_batch),
              "plan.micro_batch=" + std::to_string(r.micro_batch),
              "plan.recompute=full",
              // Megatron-LM in 2021 ran no flash attention: the s^2 scores went through HBM
              // (softmax, dropout), which the default (flash) attention does not charge.
              "plan.materialize_attention_scores=true",
              // CONFIG.sh: --fp16 without --accumulate-allreduce-grads-in-fp32, so the
              // data-parallel gradient buffers are FP16.
              "plan.grad_bytes_per_param=2"};
  if (r.local_ddp) req.sets.push_back("plan.grad_reduce=after_backward");
  if (r.virtual_stages > 0) {
    req.sets.push_back("plan.schedule=interleaved-1f1b");
    req.sets.push_back("plan.virtual_stages=" + std::to_string(r.virtual_stages));
  }
  req.sets.insert(req.sets.end(), extra.begin(), extra.end());
  const auto res = sim::simulate_in_child(req);
  EXPECT_GT(res.step_time_s, 0.0);
  return megatron_flops(r) / res.step_time_s / r.gpus / 1e12;
}

// Regression pin, NOT validation: +-3% around the current prediction.
void expect_pinned(const Row& r) {
  const double got = predicted_tflops_per_gpu(r);
  EXPECT_NEAR(got, r.pinned_tflops, 0.03 * r.pinned_tflops)
      << r.preset << ": prediction moved; re-run docs/VALIDATION.md (published " << r.published_tflops
      << " TFLOPS/GPU)";
}

}  // namespace

// 1.7B, TP1 PP1, 32 GPUs, batch 512, micro-batch 16: published 137 TFLOPS/GPU (Table 1).
// Predicted about 166.7 (+21.7%): pure data parallelism, so this row isolates the compute model.
TEST(MegatronSc21NotYetValidated, Row1p7BPinned) {
  expect_pinned({"megatron-1.7b", 24, 2304, 1, 1, 32, 512, 16, 137, 166.7});
}

// 7.5B, TP4 PP1, 128 GPUs, batch 512, micro-batch 16: published 142 TFLOPS/GPU (Table 1).
// Predicted about 171.7 (+20.9%): adds blocking TP all-reduces over NVLink.
TEST(MegatronSc21NotYetValidated, Row7p5BPinned) {
  expect_pinned({"megatron-7.5b", 36, 4096, 4, 1, 128, 512, 16, 142, 171.7});
}

// 39.1B, TP8 PP2, 512 GPUs, batch 1536, micro-batch 4, 1F1B, local DDP: published 138
// TFLOPS/GPU (Table 1). Predicted about 159.1 (+15.3%): adds the pipeline (scatter/gather
// sends across nodes, bubble) and the exposed gradient all-reduce.
TEST(MegatronSc21NotYetValidated, Row39p1BPinned) {
  expect_pinned({"megatron-39.1b", 48, 8192, 8, 2, 512, 1536, 4, 138, 159.1, 0, true});
}

// 529.6B: TP8 PP35, 2,520 GPUs, batch 2520, micro-batch 1, interleaved 1F1B with 3 chunks
// per rank (1 layer per virtual stage, run_table_1.sh), local DDP. Published 163; predicted
// about 197.1 (+20.9%). Takes about 10 s.
TEST(MegatronSc21NotYetValidated, Row529p6BPinned) {
  expect_pinned({"megatron-529.6b", 105, 20480, 8, 35, 2520, 2520, 1, 163, 197.1, 3, true});
}

// Validated row: within +-15% of the published TFLOPS/GPU (arXiv 2104.04473 Table 1).
// 1T: TP8 PP64, 3,072 GPUs, batch 3072, micro-batch 1, 1F1B, local DDP. Published 163;
// predicted 186.3 (+14.3%) on 2026-11-30. Takes about 10 s.
TEST(MegatronSc21, Row1TWithinFifteenPercentOfPublished) {
  const Row r{"megatron-1t", 128, 25600, 8, 64, 3072, 3072, 1, 163, 186.3, 0, true};
  EXPECT_NEAR(predicted_tflops_per_gpu(r), r.published_tflops, 0.15 * r.published_tflops);
}

// Issue 6 item 4: the analytical fidelity within 5% of the default (flow) on the Megatron
// rows. Measured 2026-11-30 over all ten rows: between 0.0% and +0.8% in TFLOPS/GPU.
TEST(MegatronSc21Analytical, WithinFivePercentOfFlow) {
  for (const Row& r : {Row{"megatron-7.5b", 36, 4096, 4, 1, 128, 512, 16, 142, 194.8},
                       Row{"megatron-39.1b", 48, 8192, 8, 2, 512, 1536, 4, 138, 159.1, 0, true}}) {
    const double flow = predicted_tflops_per_gpu(r);
    const double analytical = predicted_tflops_per_gpu(r, {"sim.fidelity=analytical"});
    EXPECT_NEAR(analytical, flow, 0.05 * flow) << r.preset;
  }
}
