// Communication volume of one training step, counted by hand (issue 4).
//
// Small plans on 8 GPUs, generated unfolded (one lane per rank). For every rank the bytes
// it issues are summed per CommCategory and compared with totals derived in the comments
// from the model's dimensions alone. Conventions (workloads/program.hpp): a collective
// counts its per-rank buffer as nccl-tests does (all-gather: the output; reduce-scatter:
// the input; all-reduce: the buffer; all-to-all: everything one rank sends, its own slice
// included); a Send counts its bytes, a Recv none (they belong to the send). Every count is
// an integer below 2^53, so the comparison is exact.
//
// What the step communicates follows Megatron-LM (Narayanan et al. arXiv 2104.04473;
// sequence parallelism: Korthikanti et al. arXiv 2205.05198 §4.2.2), ZeRO-1 (Rajbhandari
// et al. arXiv 1910.02054) and DeepSeek-V3's EP (arXiv 2412.19437 §3.2.2, §3.3.2).
#include <array>
#include <string>

#include <gtest/gtest.h>

#include "workloads/generator.hpp"
#include "workloads/model.hpp"
#include "workloads/plan.hpp"

namespace tcsim::workloads {
namespace {

using Volume = std::array<double, kCommCategoryCount>;

// Bytes the rank of lane `lane` issues per category in one step; receives carry none.
Volume volume_of(const Program& p, size_t lane) {
  Volume v{};
  for (const auto& op : p.lanes[lane].ops) {
    if (op.kind == OpKind::Collective) v[static_cast<size_t>(op.category)] += op.coll.bytes;
    if (op.kind == OpKind::Send) v[static_cast<size_t>(op.category)] += op.p2p.bytes;
    if (op.kind == OpKind::Recv) {
      EXPECT_EQ(op.p2p.bytes, 0.0) << p.labels[op.label];
    }
  }
  return v;
}

void expect_volume(const Volume& got, const Volume& want, const std::string& what) {
  for (int c = 0; c < kCommCategoryCount; ++c) {
    EXPECT_EQ(got[static_cast<size_t>(c)], want[static_cast<size_t>(c)]) << what << ": " << to_string(static_cast<CommCategory>(c));
  }
}

void set(Volume& v, CommCategory c, double bytes) { v[static_cast<size_t>(c)] = bytes; }

// A GPT-like model with round numbers: hidden 1024, 16 heads of 64 (plain MHA), a plain
// (non-gated) FFN of 4096, vocabulary 32,000 (untied), no biases, sequence 2048.
config::ModelSpec small_model() {
  config::ModelSpec m;
  m.set_name("comm-volume");
  m.set_layers(4);
  m.set_hidden(1024);
  m.set_vocab(32000);
  m.set_seq_len(2048);
  m.mutable_attention()->set_kind(config::Attention::GQA);
  m.mutable_attention()->set_heads(16);
  m.mutable_ffn()->set_hidden(4096);
  m.mutable_ffn()->set_gated(false);
  return m;
}

config::Workload small_workload(const config::ModelSpec& m, int64_t tp, int64_t pp, int64_t ep, bool sp) {
  config::Workload w;
  w.set_name("comm-volume");
  *w.mutable_model() = m;
  auto* p = w.mutable_plan();
  p->set_tp(tp);
  p->set_pp(pp);
  p->set_ep(ep);
  p->set_sp(sp);
  p->set_zero_stage(1);
  p->set_micro_batch(1);
  p->set_num_micro_batches(4);
  p->set_precision("bf16");
  p->set_schedule("1f1b");
  w.set_seed(1);
  return w;
}

// Parameters of the model, by hand (model.hpp conventions): h = 1024, f = 4096, V = 32000.
constexpr double kH = 1024, kF = 4096, kV = 32000, kSeq = 2048;
constexpr double kAttention = 4 * kH * kH;  // Q, K, V, O: 4,194,304
constexpr double kDenseFfn = 2 * kH * kF;   // up + down: 8,388,608
constexpr double kNorms = 2 * kH;           // two RMSNorm weights per layer: 2,048
constexpr double kEmbedding = kV * kH;      // 32,768,000 (the untied head has as many)
constexpr double kFinalNorm = kH;           // 1,024

TEST(CommVolume, DenseTp2Pp2Dp2WithSequenceParallelAndZero1MatchesHandCount) {
  // TP2 (SP) x PP2 x DP2 on 8 GPUs, 1F1B, m = 4 micro-batches of b = 1 sequence, ZeRO-1.
  // Stage 0 holds layers 0-1 and the embedding, stage 1 layers 2-3, the final norm and the
  // head. A = s·b·h·2 = 2048·1024·2 = 4,194,304 bytes: one micro-batch's activations.
  const double A = kSeq * kH * 2, m = 4, layers_per_stage = 2;
  //
  // TP with SP (Korthikanti §4.2.2), per layer and micro-batch:
  //   forward: g = all-gather of A before attention and before the FFN, ḡ = reduce-scatter
  //   of A after each: 2 AG + 2 RS;
  //   backward: the transposes, ḡ' = all-gather and g' = reduce-scatter: 2 AG + 2 RS, plus
  //   Megatron's re-gather of the sequence-sharded input of the column-parallel linears
  //   (QKV, FC1) for their weight gradients: 2 AG.
  //   => 6 AG + 4 RS of A.
  // Stage 0, per micro-batch: the vocab-parallel embedding's output is reduce-scattered
  //   (forward) and its gradient all-gathered (backward): +1 AG, +1 RS.
  // Stage 1, per micro-batch: the head's input all-gathered (forward), its gradient
  //   reduce-scattered and its input re-gathered (backward): +2 AG, +1 RS; the
  //   vocab-parallel cross-entropy all-reduces max, target logit and sum of exponentials,
  //   FP32 per token: 3·s·b·4 = 24,576 bytes.
  //   stage 0: AG = m(2·6 + 1)A = 52A = 218,103,808   RS = m(2·4 + 1)A = 36A = 150,994,944
  //   stage 1: AG = m(2·6 + 2)A = 56A = 234,881,024   RS = 36A          AR = 4·24,576 = 98,304
  //
  // PP (1F1B): stage 0 sends each micro-batch's activations, stage 1 its input gradient,
  //   s·b·h·2 / tp bytes each with SP (each TP rank sends its sequence shard):
  //   m·A/2 = 8,388,608 per rank.
  //
  // DP, ZeRO-1 over the dp = 2 ranks of each (tp, pp) position: reduce-scatter of the FP32
  //   gradients of what the rank holds, then all-gather of the BF16 parameters (output =
  //   everything the rank holds). A TP rank holds attention and FFN / 2 and the norms whole:
  //   per layer 4h²/2 + 2hf/2 + 2h = 2,097,152 + 4,194,304 + 2,048 = 6,293,504;
  //   stage 0: 2 layers + embedding V·h/2: 12,587,008 + 16,384,000 = 28,971,008;
  //   stage 1: 2 layers + head V·h/2 + final norm h: 28,972,032.
  //   RS = 4 B x params: 115,884,032 and 115,888,128; AG = 2 B x params: 57,942,016 and
  //   57,944,064.
  Program p = generate(small_workload(small_model(), 2, 2, 1, true), 8, GeneratorOptions{false});
  ASSERT_EQ(p.lanes.size(), 8u);
  auto resolved = resolve_plan(small_model(), small_workload(small_model(), 2, 2, 1, true).plan(), 8);
  RankLayout layout(resolved);
  const double per_layer = kAttention / 2 + kDenseFfn / 2 + kNorms;
  EXPECT_EQ(per_layer, 6293504.0);
  for (size_t r = 0; r < p.lanes.size(); ++r) {
    ASSERT_EQ(p.lanes[r].ranks, std::vector<int>{static_cast<int>(r)});
    const bool first = layout.coord(static_cast<int64_t>(r)).pp == 0;
    const double params = layers_per_stage * per_layer + (first ? kEmbedding / 2 : kEmbedding / 2 + kFinalNorm);
    Volume want{};
    set(want, CommCategory::TpAllGather, m * (layers_per_stage * 6 + (first ? 1 : 2)) * A);
    set(want, CommCategory::TpReduceScatter, m * (layers_per_stage * 4 + 1) * A);
    set(want, CommCategory::TpAllReduce, first ? 0 : m * 3 * kSeq * 4);
    set(want, CommCategory::PpP2P, m * A / 2);
    set(want, CommCategory::DpReduceScatter, 4 * params);
    set(want, CommCategory::DpAllGather, 2 * params);
    expect_volume(volume_of(p, r), want, "rank " + std::to_string(r));
  }
  // The literal totals of the comment, for rank 0 (stage 0) and the last rank (stage 1).
  const Volume v0 = volume_of(p, 0), v7 = volume_of(p, 7);
  EXPECT_EQ(v0[static_cast<size_t>(CommCategory::TpAllGather)], 218103808.0);
  EXPECT_EQ(v7[static_cast<size_t>(CommCategory::TpAllGather)], 234881024.0);
  EXPECT_EQ(v7[static_cast<size_t>(CommCategory::TpReduceScatter)], 150994944.0);
  EXPECT_EQ(v7[static_cast<size_t>(CommCategory::TpAllReduce)], 98304.0);
  EXPECT_EQ(v0[static_cast<size_t>(CommCategory::PpP2P)], 8388608.0);
  EXPECT_EQ(v0[static_cast<size_t>(CommCategory::DpReduceScatter)], 115884032.0);
  EXPECT_EQ(v7[static_cast<size_t>(CommCategory::DpReduceScatter)], 115888128.0);
  EXPECT_EQ(v7[static_cast<size_t>(CommCategory::DpAllGather)], 57944064.0);
}

TEST(CommVolume, DenseTp2WithoutSequenceParallelAllReducesInstead) {
  // Same model, TP2 x DP4 on 8 GPUs (no pipeline: every rank has embedding and head),
  // without SP. Per layer and micro-batch: f (identity) / g (all-reduce of A) around each
  // block forward, the transposes backward: 2 AR forward + 2 AR backward. Embedding: output
  // all-reduced forward (its gradient needs none); head: input gradient all-reduced
  // backward; cross-entropy 3·s·b·4. Per rank: AR = m(4·4 + 2)A + m·24,576
  //   = 4·18·4,194,304 + 98,304 = 302,088,192; no AG, RS.
  const double A = kSeq * kH * 2, m = 4;
  Program p = generate(small_workload(small_model(), 2, 1, 1, false), 8, GeneratorOptions{false});
  for (size_t r = 0; r < p.lanes.size(); ++r) {
    const Volume v = volume_of(p, r);
    EXPECT_EQ(v[static_cast<size_t>(CommCategory::TpAllReduce)], m * (4 * 4 + 2) * A + m * 3 * kSeq * 4);
    EXPECT_EQ(v[static_cast<size_t>(CommCategory::TpAllReduce)], 302088192.0);
    EXPECT_EQ(v[static_cast<size_t>(CommCategory::TpAllGather)], 0.0);
    EXPECT_EQ(v[static_cast<size_t>(CommCategory::TpReduceScatter)], 0.0);
  }
}

// The MoE variant: layer 0 dense, layers 1-3 MoE with 8 routed experts of width 512 (top-2)
// and one shared expert of the same width.
config::ModelSpec small_moe() {
  config::ModelSpec m = small_model();
  auto* e = m.mutable_moe();
  e->set_routed_experts(8);
  e->set_shared_experts(1);
  e->set_top_k(2);
  e->set_expert_hidden(512);
  e->set_first_k_dense(1);
  return m;
}

TEST(CommVolume, MoeEp4Dp8WithZero1MatchesHandCount) {
  // EP4 inside DP8 on 8 GPUs (tp = pp = 1), 1F1B, m = 4 micro-batches, ZeRO-1, BF16.
  // T = s·b = 2048 tokens per micro-batch per rank, top-k = 2.
  //
  // EP: per MoE layer and micro-batch, every rank sends T·k·h·2 = 8,388,608 bytes in each of
  //   four all-to-alls: dispatch and combine forward, combine's gradient (towards the
  //   experts) and dispatch's gradient (back) backward. 3 MoE layers x 4 micro-batches x
  //   4 x 8,388,608 = 402,653,184 per rank.
  //
  // DP, ZeRO-1 (no TP, so every parameter a rank holds is its own):
  //   dense part, reduced over all 8 ranks:
  //     layer 0: 4h² + 2hf + 2h = 4,194,304 + 8,388,608 + 2,048 = 12,584,960;
  //     layers 1-3: 4h² + shared 2h·512 + router h·8 + 2h = 4,194,304 + 1,048,576 + 8,192
  //       + 2,048 = 5,253,120 each;
  //     embedding + head 2·V·h = 65,536,000; final norm 1,024;
  //     total 12,584,960 + 3·5,253,120 + 65,536,000 + 1,024 = 93,881,344;
  //   experts, reduced over the dp/ep = 2 ranks holding the same ones: 8/4 = 2 experts of
  //     2h·512 = 1,048,576 per MoE layer: 3·2·1,048,576 = 6,291,456.
  //   RS = 4 B x 100,172,800 = 400,691,200; AG = 2 B x 100,172,800 = 200,345,600.
  const double T = kSeq, k = 2, m = 4, moe_layers = 3;
  Program p = generate(small_workload(small_moe(), 1, 1, 4, false), 8, GeneratorOptions{false});
  ASSERT_EQ(p.lanes.size(), 8u);
  const double dense = (kAttention + kDenseFfn + kNorms) + moe_layers * (kAttention + 2 * kH * 512 + kH * 8 + kNorms) +
                       2 * kEmbedding + kFinalNorm;
  const double experts = moe_layers * 2 * (2 * kH * 512);
  EXPECT_EQ(dense, 93881344.0);
  EXPECT_EQ(experts, 6291456.0);
  Volume want{};
  set(want, CommCategory::EpAllToAll, moe_layers * m * 4 * T * k * kH * 2);
  set(want, CommCategory::DpReduceScatter, 4 * (dense + experts));
  set(want, CommCategory::DpAllGather, 2 * (dense + experts));
  EXPECT_EQ(want[static_cast<size_t>(CommCategory::EpAllToAll)], 402653184.0);
  EXPECT_EQ(want[static_cast<size_t>(CommCategory::DpReduceScatter)], 400691200.0);
  for (size_t r = 0; r < p.lanes.size(); ++r) expect_volume(volume_of(p, r), want, "rank " + std::to_string(r));
}

TEST(CommVolume, Fp8SendsTokensToTheExpertsInOneByteAndBringsThemBackInTwo) {
  // DeepSeek-V3 §3.3.2: FP8 for the activations dispatched to the experts and for the
  // activation gradients sent to the experts in backward; the combine (forward and
  // backward) stays BF16. Per MoE layer and micro-batch: T·k·h x (1 + 2 + 1 + 2) bytes =
  // 4,194,304 x 6; x 3 layers x 4 micro-batches = 301,989,888 per rank.
  const double T = kSeq, k = 2, m = 4, moe_layers = 3;
  auto w = small_workload(small_moe(), 1, 1, 4, false);
  w.mutable_plan()->set_precision("fp8");
  Program p = generate(w, 8, GeneratorOptions{false});
  const Volume v = volume_of(p, 0);
  EXPECT_EQ(v[static_cast<size_t>(CommCategory::EpAllToAll)], moe_layers * m * T * k * kH * (1 + 2 + 1 + 2));
  EXPECT_EQ(v[static_cast<size_t>(CommCategory::EpAllToAll)], 301989888.0);
  int towards = 0, back = 0;
  for (const auto& op : p.lanes[0].ops) {
    if (op.kind != OpKind::Collective || op.coll.type != CollectiveType::AllToAll) continue;
    const std::string& name = p.labels[op.label];
    const bool to_experts = name.find("dispatch a2a") != std::string::npos || name.find("combine bwd a2a") != std::string::npos;
    EXPECT_EQ(op.coll.bytes, T * k * kH * (to_experts ? 1 : 2)) << name;
    (to_experts ? towards : back)++;
  }
  EXPECT_EQ(towards, 3 * 4 * 2);
  EXPECT_EQ(back, 3 * 4 * 2);
}

}  // namespace
}  // namespace tcsim::workloads
