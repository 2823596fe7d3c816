// Memory model against Korthikanti et al. (arXiv 2205.05198) and ZeRO (arXiv 1910.02054).
#include <cmath>

#include <gtest/gtest.h>

#include "core/error.hpp"
#include "core/units.hpp"
#include "workloads/memory.hpp"
#include "workloads/model.hpp"
#include "workloads/plan.hpp"

namespace tcsim::workloads {
namespace {

using namespace core::literals;

// The 530B model of Korthikanti et al. Table 3 (= Megatron SC'21 529.6B row): L = 105,
// h = 20480, a = 128, s = 2048, b = 1, t = 8, p = 35, 1F1B. With 1F1B the first stage holds
// p micro-batches of L/p layers, i.e. L layers' worth (§4.2.3), so its activations are the
// per-layer formula times L.
config::ParallelPlan korthikanti_plan() {
  config::ParallelPlan p;
  p.set_tp(8);
  p.set_pp(35);
  p.set_micro_batch(1);
  p.set_num_micro_batches(70);
  p.set_schedule("1f1b");
  p.set_materialize_attention_scores(true);  // the paper stores softmax scores (no flash attention)
  return p;
}

constexpr double s = 2048, b = 1, h = 20480, a = 128, t = 8, L = 105;

TEST(MemoryModel, ActivationsMatchKorthikantiTensorParallel) {
  const auto m = find_model("megatron-529.6b", "t");
  auto plan = korthikanti_plan();
  ASSERT_NO_THROW(validate_plan(m, plan, 280, "t"));
  const auto stage0 = estimate_stage_memory(m, plan, 280)[0];
  // Eq. 2: s·b·h·(10 + 24/t + 5·a·s/(h·t)) per layer with TP, no SP, no recompute.
  const double want = s * b * h * L * (10 + 24 / t + 5 * a * s / (h * t));
  EXPECT_NEAR(stage0.activations.value() / want, 1.0, 0.05);
  EXPECT_DOUBLE_EQ(stage0.in_flight, 35);
}

TEST(MemoryModel, ActivationsMatchKorthikantiSequenceParallelAndSelective) {
  const auto m = find_model("megatron-529.6b", "t");
  auto plan = korthikanti_plan();
  plan.set_sp(true);
  // Eq. 4: s·b·h·(34 + 5·a·s/h)/t with TP + SP.
  EXPECT_NEAR(estimate_stage_memory(m, plan, 280)[0].activations.value() / (s * b * h * L * (34 + 5 * a * s / h) / t),
              1.0, 0.05);
  // Eq. 5: 34·s·b·h/t with TP + SP + selective recompute.
  plan.set_recompute(config::ParallelPlan::SELECTIVE);
  EXPECT_NEAR(estimate_stage_memory(m, plan, 280)[0].activations.value() / (34 * s * b * h * L / t), 1.0, 0.05);
  // Full recompute stores the 2·s·b·h input of each layer (/t with SP).
  plan.set_recompute(config::ParallelPlan::FULL);
  EXPECT_NEAR(estimate_stage_memory(m, plan, 280)[0].activations.value() / (2 * s * b * h * L / t), 1.0, 0.05);
}

TEST(MemoryModel, ModelStatesFollowZero) {
  // ZeRO §3: mixed-precision Adam holds 2 + 2 + 12 bytes per parameter; stage 1 shards the 12
  // over N_d, stage 2 also the gradients, stage 3 also the weights.
  const auto m = find_model("llama3-8b", "t");
  config::ParallelPlan p;
  p.set_zero_stage(0);
  const auto z0 = estimate_memory(m, p, 8);
  const double P = count_params(m).total;
  EXPECT_NEAR(z0.params / P, 1.0, 1e-9);
  EXPECT_NEAR(z0.weights.value(), 2 * P, 1);
  EXPECT_NEAR(z0.grads.value(), 2 * P, 1);
  EXPECT_NEAR(z0.optimizer.value(), 12 * P, 1);
  p.set_zero_stage(1);
  EXPECT_NEAR(estimate_memory(m, p, 8).optimizer.value(), 12 * P / 8, 1);
  p.set_zero_stage(2);
  EXPECT_NEAR(estimate_memory(m, p, 8).grads.value(), 2 * P / 8, 1);
  p.set_zero_stage(3);
  EXPECT_NEAR(estimate_memory(m, p, 8).weights.value(), 2 * P / 8, 1);
}

TEST(MemoryModel, ExpertsShardByEp) {
  // Mixtral with EP8: each GPU holds one expert per layer, the rest replicated.
  const auto m = find_model("mixtral-8x7b", "t");
  const auto c = count_params(m);
  config::ParallelPlan p;
  p.set_ep(8);
  const auto mem = estimate_memory(m, p, 8);
  const double want = c.total - 32 * 7 * c.expert;
  EXPECT_NEAR(mem.params / want, 1.0, 1e-9);
}

TEST(MemoryModel, RejectsPlanThatDoesNotFitWithBreakdown) {
  const auto m = find_model("llama3-70b", "t");
  config::ParallelPlan p;  // 70B on 8 GPUs, pure data parallel, ZeRO-0: ~1.1 TB per GPU
  try {
    check_memory(m, p, 8, 80_GiB, "--gpu-memory");
    FAIL();
  } catch (const core::InputError& e) {
    EXPECT_EQ(e.where(), "--gpu-memory");
    EXPECT_NE(e.problem().find("optimizer"), std::string::npos);
    EXPECT_NE(e.problem().find("more than the GPU's 80.00 GiB"), std::string::npos);
  }
  // TP8, PP4, ZeRO-1, full recompute on 64 GPUs fits in 80 GiB.
  p.set_tp(8);
  p.set_pp(4);
  p.set_sp(true);
  p.set_zero_stage(1);
  p.set_recompute(config::ParallelPlan::FULL);
  EXPECT_NO_THROW(check_memory(m, p, 64, 80_GiB, "--gpu-memory"));
}

// DeepSeek-V3 (h = 7168; MLA: 128 heads, q_lora 1536, kv_lora 512, nope 128 + rope 64,
// v 128; MoE: 256 routed experts top-8 + 1 shared, expert width 2048, SwiGLU), no TP, one
// 4096-token sequence per micro-batch, flash attention, no dropout. FP8 GEMM inputs cost
// 1 + 4/128 = 1.03125 bytes per element (FP8 plus an FP32 scale per 1x128 tile).
config::ParallelPlan deepseek_plan() {
  config::ParallelPlan p;
  p.set_pp(16);
  p.set_ep(64);
  p.set_zero_stage(1);
  p.set_schedule("dualpipe");
  p.set_uneven_stages(true);
  p.set_global_batch(15360);
  p.set_seq_len(4096);
  p.set_precision("fp8");
  return p;
}

// deepseek_plan() with DeepSeek's activation savings: recompute of RMSNorm, MLA
// up-projections and the SwiGLU output, E5M6 attention output and FP8 SwiGLU input caches.
config::ParallelPlan deepseek_plan_with_savings() {
  auto p = deepseek_plan();
  p.set_recompute(config::ParallelPlan::SELECTIVE);
  p.add_recompute_modules(config::ParallelPlan::LAYERNORM);
  p.add_recompute_modules(config::ParallelPlan::MLA_UP_PROJ);
  p.add_recompute_modules(config::ParallelPlan::MOE_ACT);
  p.set_attn_out_cache_bits(12);
  p.set_moe_act_cache_bits(8);
  return p;
}

TEST(MemoryModel, DeepSeekV3LayerWithItsMemorySavings) {
  // The published recipe: recompute all RMSNorms and the MLA up-projections (§3.2.3),
  // attention output cached once in E5M6 (12 bits) and the MoE SwiGLU input in FP8, its
  // output recomputed (§3.3.3).
  const auto m = find_model("deepseek-v3", "t");
  const auto p = deepseek_plan_with_savings();
  ASSERT_NO_THROW(validate_plan(m, p, 2048, "t"));
  const auto r = resolve_plan(m, p, 2048);
  const double T = 4096;
  // MLA attention block, bytes per token:
  //   pre-attention norm input, BF16          2·7168            = 14336
  //   norm output (down-projection input)     recomputed        =     0
  //   latents c_Q, c_KV (latent norm inputs)  2·(1536 + 512)    =  4096
  //   latent norm outputs, Q, K, V            recomputed        =     0
  //   RoPE key kept to rebuild K, BF16        2·64              =   128
  //   flash log-sum-exp, FP32 per head        4·128             =   512
  //   attention output, E5M6 + tile scale     (1.5 + 4/128)·128·128 = 25088
  //                                                         total 44160
  const auto moe = layer_activation(m, r, 3);  // layers 0-2 are dense
  EXPECT_NEAR(moe.attention.value() / (T * 44160), 1.0, 1e-12);
  // MoE block, bytes per token:
  //   pre-FFN norm input, BF16                2·7168            = 14336
  //   router / shared-expert input            recomputed        =     0
  //   FP32 gating scores                      4·256             =  1024
  //   chosen experts: int32 index + FP32 weight  8·8            =    64
  //   dispatched expert inputs, FP8           8·1.03125·7168    = 59136
  //   routed SwiGLU inputs, FP8               8·1.03125·2·2048  = 33792
  //   shared-expert SwiGLU input, FP8         1.03125·2·2048    =  4224
  //   SwiGLU outputs (down-projection inputs) recomputed        =     0
  //                                                        total 112576
  EXPECT_NEAR(moe.ffn.value() / (T * 112576), 1.0, 1e-12);
  EXPECT_NEAR(layer_activation_bytes(m, r, 3).value() / (T * (44160 + 112576)), 1.0, 1e-12);
}

TEST(MemoryModel, DeepSeekV3LayerFp8WithoutRecompute) {
  // FP8 GEMMs (GEMM inputs cached in FP8), no recompute, no E5M6/FP8 activation caching.
  const auto m = find_model("deepseek-v3", "t");
  const auto r = resolve_plan(m, deepseek_plan(), 2048);
  const double T = 4096;
  const auto l = layer_activation(m, r, 3);
  // Attention, bytes per token:
  //   norm input 2·7168 = 14336; norm output FP8 1.03125·7168 = 7392; latents BF16
  //   2·2048 = 4096; latent norm outputs FP8 1.03125·2048 = 2112; Q, K, V BF16
  //   2·128·(192 + 192 + 128) = 131072; log-sum-exp 512; attention output BF16 for the
  //   attention backward 2·16384 = 32768 and FP8 for the projection 1.03125·16384 = 16896.
  EXPECT_NEAR(l.attention.value() / (T * (14336 + 7392 + 4096 + 2112 + 131072 + 512 + 32768 + 16896)), 1.0, 1e-12);
  // MoE: norm input 14336; router input BF16 14336; shared-expert input FP8 7392; gating
  //   1024 + 64; dispatched inputs 59136; routed SwiGLU inputs BF16 8·2·2·2048 = 65536 and
  //   outputs FP8 8·1.03125·2048 = 16896; shared SwiGLU input 8192 and output 2112.
  EXPECT_NEAR(l.ffn.value() / (T * (14336 + 14336 + 7392 + 1088 + 59136 + 65536 + 16896 + 8192 + 2112)), 1.0, 1e-12);
  // What the weight gradients need (held from B to W when the backward is split): GEMM
  // inputs, norm output 7392, latent norm outputs 2112, projection input 16896; router
  // 14336, shared 7392, dispatched 59136, routed down-projection inputs 16896, shared 2112
  // (126272); and GEMM output gradients, FP8 but the router's (BF16): down-projections
  // 1.03125·(2048 + 64) = 2178, up-projections 1.03125·128·(192 + 128 + 128) = 59136,
  // output projection 7392, router 2·256 = 512, 9 experts' fc1 and fc2 9·1.03125·(4096 +
  // 7168) = 104544 (173762).
  EXPECT_NEAR(l.weight_grad_operands.value() / (T * (126272 + 173762)), 1.0, 1e-12);
}

TEST(MemoryModel, DualPipeHoldsPpPlusOneChunkPassesWithTheirOwnLayers) {
  // DualPipe (DeepSeek-V3 Table 2: PP+1 activations): the reference order leaves stage s
  // holding pp - s micro-batches of its forward-copy chunk s and s + 1 of its reverse-copy
  // chunk pp-1-s at the peak. 61 layers on 16 stages: chunks 1-13 hold 4 layers, chunks 0,
  // 14, 15 hold 3 (chunk 0: the 3 dense layers; chunk 15 also the head and MTP).
  const auto m = find_model("deepseek-v3", "t");
  const auto p = deepseek_plan();
  const auto r = resolve_plan(m, p, 2048);
  const auto stages = estimate_stage_memory(m, p, 2048);
  const double moe = layer_activation_bytes(m, r, 3).value();
  for (int64_t s : {2, 7, 8, 13}) {  // both chunks are 4 MoE layers
    EXPECT_DOUBLE_EQ(stages[s].in_flight, 17);
    EXPECT_NEAR(stages[s].activations.value() / (17 * 4 * moe), 1.0, 1e-12) << s;
  }
  // Stage 1: 15 micro-batches of chunk 1 (layers 3-6) and 2 of chunk 14 (layers 55-57).
  EXPECT_NEAR(stages[1].activations.value() / ((15 * 4 + 2 * 3) * moe), 1.0, 1e-12);
}

TEST(MemoryModel, ZeroBubbleHoldsWeightGradientOperandsUntilW) {
  // ZB-H1 (Qi et al.): stage s runs W of micro-batch k - s after B of k, so at its peak it
  // holds pp - s micro-batches' activations plus, for s more, what their weight gradients
  // need (every GEMM's input and output gradient).
  const auto m = find_model("llama3-8b", "t");
  config::ParallelPlan p;
  p.set_pp(4);
  p.set_num_micro_batches(8);
  p.set_schedule("zb-h1");
  const auto r = resolve_plan(m, p, 4);
  const auto stages = estimate_stage_memory(m, p, 4);
  const auto l = layer_activation(m, r, 0);
  const double A = 8 * l.attention.value() + 8 * l.ffn.value(), W = 8 * l.weight_grad_operands.value();  // 8 layers
  EXPECT_NEAR(stages[0].activations.value() / (4 * A), 1.0, 1e-12);
  EXPECT_NEAR(stages[2].activations.value() / (2 * A + 2 * W), 1.0, 1e-12);
}

TEST(MemoryModel, RecomputeModulesAreChecked) {
  const auto m = find_model("llama3-8b", "t");
  config::ParallelPlan p;
  p.add_recompute_modules(config::ParallelPlan::LAYERNORM);
  auto problems = check_plan(m, p, 8);
  ASSERT_FALSE(problems.empty());
  EXPECT_EQ(problems.front().field, "plan.recompute_modules");  // needs recompute=selective
  p.set_recompute(config::ParallelPlan::SELECTIVE);
  EXPECT_TRUE(check_plan(m, p, 8).empty());
  p.add_recompute_modules(config::ParallelPlan::MLA_UP_PROJ);  // llama has no MLA
  problems = check_plan(m, p, 8);
  ASSERT_FALSE(problems.empty());
  EXPECT_NE(problems.front().message.find("needs MLA"), std::string::npos);
  p.clear_recompute_modules();
  p.set_attn_out_cache_bits(4);
  ASSERT_FALSE(check_plan(m, p, 8).empty());
  EXPECT_EQ(check_plan(m, p, 8).front().field, "plan.attn_out_cache_bits");
}

TEST(MemoryModel, DeepSeekV3PublishedPlanFitsH800) {
  // DeepSeek-V3 (arXiv 2412.19437 §3.2-3.3): PP16 DualPipe, EP64, ZeRO-1, no TP, FP8 on 80 GB
  // H800s. Model states: BF16 weights, FP32 gradients for accumulation and FP32 master
  // weights with BF16 Adam moments (8 bytes/param, sharded) (§3.3.3). Activations: RMSNorm
  // and MLA up-projection recompute (§3.2.3), E5M6 attention output, FP8 SwiGLU input with
  // its output recomputed (§3.3.3). One 4096-token sequence per micro-batch (tcsim's
  // default; the paper does not give it).
  const auto m = find_model("deepseek-v3", "t");
  auto p = deepseek_plan_with_savings();
  p.set_optimizer_bytes_per_param(8);
  p.set_grad_bytes_per_param(4);
  ASSERT_NO_THROW(validate_plan(m, p, 2048, "t"));
  const auto mem = estimate_memory(m, p, 2048);
  EXPECT_LT(mem.total.value(), 80e9) << format_memory(mem);
  EXPECT_DOUBLE_EQ(mem.in_flight, 17);  // Table 2: PP + 1
  // DualPipe holds two stages' weights (Table 2: 2x parameters): the 3-layer stage 15 also
  // holds the 3 layers of stage 0's reverse copy.
  EXPECT_EQ(estimate_stage_memory(m, p, 2048)[15].layers, 6);
  // Full recompute fits as well.
  p.clear_recompute_modules();
  p.set_recompute(config::ParallelPlan::FULL);
  EXPECT_LT(estimate_memory(m, p, 2048).total.value(), 80e9);
  // Without its activation savings (FP8 GEMM inputs only) the plan does not fit.
  p.set_recompute(config::ParallelPlan::NONE);
  p.set_attn_out_cache_bits(0);
  p.set_moe_act_cache_bits(0);
  EXPECT_GT(estimate_memory(m, p, 2048).total.value(), 80e9);
}

// The deepseek-v3-pretrain workload preset is exactly the plan the test above derives
// (so `tcsim run --workload deepseek-v3-pretrain` simulates what fits at 68.8 GiB).
TEST(MemoryModel, DeepSeekV3PretrainPresetIsThePublishedPlan) {
  const auto w = find_workload("deepseek-v3-pretrain", "test");
  auto want = deepseek_plan_with_savings();
  want.set_optimizer_bytes_per_param(8);
  want.set_grad_bytes_per_param(4);
  EXPECT_EQ(w.plan().SerializeAsString(), want.SerializeAsString()) << w.plan().DebugString();
  const auto m = workload_model(w, "test");
  const auto b = estimate_memory(m, w.plan(), 2048);
  EXPECT_NEAR(b.total.value() / 1073741824.0, 68.78, 0.01);
  EXPECT_NO_THROW(check_memory(m, w.plan(), 2048, core::Bytes(80e9), "test"));
}

}  // namespace
}  // namespace tcsim::workloads
