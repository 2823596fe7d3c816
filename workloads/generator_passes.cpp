// The per-layer work of the program generator (TP/SP/CP collectives, attention, MoE,
// selective and full recompute, ZeRO-3 gathers, per-layer gradient reduction) and the
// segment of one pass of a chunk. The class: generator_impl.hpp.
#include <algorithm>
#include <string>
#include <tuple>
#include <vector>

#include "workloads/generator_impl.hpp"
#include "workloads/model.hpp"
#include "workloads/multimodal.hpp"
#include "workloads/plan.hpp"
#include "workloads/schedule.hpp"
#include "workloads/segment.hpp"

namespace tcsim::workloads::generator_detail {

// ------------------------------------------------------------------ per-layer work

Generator::MbShape Generator::shape(int64_t mb) const {
  const MicroBatchImages& im = images_[static_cast<size_t>(mb)];
  MbShape s;
  const double text = d(mbsz_) * d(seq_);
  const double fused = cross_ ? 0 : im.tokens;
  s.tokens = (text + fused) / d(cp_);
  s.seq = d(seq_) + fused / d(mbsz_);
  s.img_tokens = cross_ ? im.tokens / d(cp_) : 0;
  return s;
}

// Parameters of layer l that one rank holds outside the routed experts (reduced over the
// dp x cp ranks): attention, dense FFN and shared experts are split by tp; the norms and
// the router are replicated on every TP rank (as workloads/memory.cpp counts them).
double Generator::dense_layer_params_per_rank(int64_t l) const {
  const bool moe = is_moe_layer(m_, l);
  return (params_.attention_per_layer + (moe ? params_.shared_experts_per_layer : params_.dense_ffn_per_layer)) / d(tp_) +
         params_.norms_per_layer + (moe ? params_.router_per_layer : 0.0);
}

// Output head, MTP modules and the final norm (replicated) of one rank of the last position.
double Generator::head_params_per_rank() const {
  const double lm_head = tied_copy_ ? d(m_.vocab()) * d(m_.hidden()) : params_.lm_head;
  return (lm_head + params_.mtp) / d(tp_) + d(m_.hidden()) * (m_.linear_bias() ? 2.0 : 1.0);
}

// All routed experts of layer l on this EP rank (split by tp at the call sites).
double Generator::expert_layer_params(int64_t l) const {
  return is_moe_layer(m_, l) ? params_.expert * d(m_.moe().routed_experts() / ep_) : 0;
}

// TP collective pair around a block: before (SP all-gather) and after (all-reduce or SP
// reduce-scatter).
void Generator::tp_before(Seg& s, uint32_t lane, const std::string& n, double bytes) {
  if (sp_ && has(kTp, lane))
    s.chain(coll_op(n + " sp all-gather", CollectiveType::AllGather, kTp, lane, bytes, Stream::TpComm, CommCategory::TpAllGather));
}

void Generator::tp_after(Seg& s, uint32_t lane, const std::string& n, double bytes) {
  if (!has(kTp, lane)) return;
  if (sp_) s.chain(coll_op(n + " sp reduce-scatter", CollectiveType::ReduceScatter, kTp, lane, bytes, Stream::TpComm, CommCategory::TpReduceScatter));
  else s.chain(coll_op(n + " tp all-reduce", CollectiveType::AllReduce, kTp, lane, bytes, Stream::TpComm, CommCategory::TpAllReduce));
}

// With SP, Megatron-LM keeps only the sequence shard of a column-parallel linear's input
// and all-gathers it again in backward for the weight gradients, asynchronously beside
// the input-gradient GEMM (layers.py LinearWithGradAccumulationAndAsyncCommunication).
// overlapped: issued after the current tail with nothing waiting on it but the TP stream
// (the block's compute runs beside it); else chained (a weight-gradient-only pass).
void Generator::sp_regather(Seg& s, uint32_t lane, const std::string& n, double bytes, bool overlapped) {
  if (!sp_ || !has(kTp, lane)) return;
  Op op = coll_op(n + " sp input re-gather", CollectiveType::AllGather, kTp, lane, bytes, Stream::TpComm, CommCategory::TpAllGather);
  if (overlapped && s.last != kNone) s.add(std::move(op), {s.last});
  else s.chain(std::move(op));
}

// ZeRO-3: all-gather of a layer's parameters, prefetched one layer ahead.
void Generator::zero3_gather(Seg& s, uint32_t lane, int64_t l, const std::string& dir) {
  if (zero_ != 3) return;
  std::vector<uint32_t> deps;
  if (prefetch_gate_ != kNone) deps.push_back(prefetch_gate_);
  const std::string L = "L" + std::to_string(l) + " ";
  uint32_t last = kNone;
  if (has(kDp, lane)) {
    last = s.add(coll_op(L + "param all-gather " + dir, CollectiveType::AllGather, kDp, lane, dense_layer_params_per_rank(l) * 2,
                         Stream::DpComm, CommCategory::DpAllGather), deps);
  }
  if (expert_layer_params(l) > 0 && has(kEdp, lane)) {
    last = s.add(coll_op(L + "expert param all-gather " + dir, CollectiveType::AllGather, kEdp, lane,
                         expert_layer_params(l) / d(tp_) * 2, Stream::DpComm, CommCategory::DpAllGather), deps);
  }
  if (last != kNone) gathered_.push_back(last);
}

// Forward of layer l (also used for full recompute).
void Generator::layer_forward(Seg& s, uint32_t lane, int64_t l, const MbShape& sh, const std::string& dir, bool recompute) {
  const LayerFlops f = layer_flops(m_, l, static_cast<int64_t>(sh.seq));
  const std::string L = "L" + std::to_string(l) + " ";
  const double T = sh.tokens, h = d(m_.hidden()), act = T * h * 2;
  const double ffn_width = f.moe ? d(f.top_k * expert_hidden(m_)) : d(m_.ffn().hidden());
  tp_before(s, lane, L + "attn " + dir, act);
  s.chain(compute_op(L + "attn proj " + dir, T * f.attention_proj / d(tp_), ComputeClass::Gemm, prec_));
  attention_core(s, lane, L, T * f.attention_core_causal / d(tp_), sh, dir, 1.0, false);
  s.chain(compute_op(L + "norm/act " + dir, 0, ComputeClass::Elementwise, Precision::BF16, T * 2 * (10 * h + 3 * ffn_width) / d(tp_)));
  tp_after(s, lane, L + "attn " + dir, act);
  if (cross_ && (l + 1) % std::max<int64_t>(1, m_.vision().cross_attention_every()) == 0) {
    tp_before(s, lane, L + "xattn " + dir, act);
    s.chain(compute_op(L + "cross-attn " + dir, cross_flops(sh) / d(tp_), ComputeClass::Gemm, prec_));
    tp_after(s, lane, L + "xattn " + dir, act);
  }
  tp_before(s, lane, L + "ffn " + dir, act);
  if (!f.moe) {
    s.chain(compute_op(L + "ffn " + dir, T * f.dense_ffn / d(tp_), ComputeClass::Gemm, prec_));
  } else {
    moe_block(s, lane, l, f, sh, dir, false, 1.0);
  }
  tp_after(s, lane, L + "ffn " + dir, act);
  (void)recompute;
}

double Generator::cross_flops(const MbShape& sh) const {
  const double h = d(m_.hidden()), I = sh.img_tokens;
  // Q and output projections over text, K/V projections over image tokens, core.
  return sh.tokens * 4 * h * h + I * 4 * h * h + 4 * sh.tokens * (I * d(cp_) / d(mbsz_)) * h;
}

// Attention core (fwd k=1, bwd k=2): with CP, K/V all-gather overlapped with the local
// block; backward also reduce-scatters dK/dV.
void Generator::attention_core(Seg& s, uint32_t lane, const std::string& L, double flops, const MbShape& sh, const std::string& dir,
                             double k, bool backward) {
  if (r_.materialize_attention_scores()) {
    materialized_attention(s, L, 2 * flops, sh, dir, backward);  // flops is the causal half
    return;
  }
  if (!has(kCp, lane)) {
    s.chain(compute_op(L + "attn core " + dir, k * flops, ComputeClass::Attention, Precision::BF16));
    return;
  }
  const auto& a = m_.attention();
  double kv_dim = 0;
  if (a.kind() == config::Attention::MLA) {
    kv_dim = d(a.heads()) * d(a.qk_nope_head_dim() + a.qk_rope_head_dim() + a.v_head_dim()) / 2;
  } else {
    const int64_t kvh = a.kv_heads() > 0 ? a.kv_heads() : a.heads();
    const int64_t hd = a.head_dim() > 0 ? a.head_dim() : m_.hidden() / a.heads();
    kv_dim = d(std::max<int64_t>(1, kvh / tp_) * hd);
  }
  const double kv_bytes = d(cp_) * sh.tokens * 2 * kv_dim * 2;  // all-gather output: K and V of every CP rank
  const uint32_t before = s.last;
  const uint32_t gather = s.add(coll_op(L + "cp kv all-gather " + dir, CollectiveType::AllGather, kCp, lane, kv_bytes, Stream::CpComm,
                                        CommCategory::CpExchange),
                                before == kNone ? std::vector<uint32_t>{} : std::vector<uint32_t>{before});
  const uint32_t local = s.chain(compute_op(L + "attn core local " + dir, k * flops / d(cp_), ComputeClass::Attention, Precision::BF16));
  s.last = s.add(compute_op(L + "attn core ring " + dir, k * flops * d(cp_ - 1) / d(cp_), ComputeClass::Attention, Precision::BF16),
                 {local, gather});
  if (backward) {
    s.chain(coll_op(L + "cp dkv reduce-scatter", CollectiveType::ReduceScatter, kCp, lane, kv_bytes, Stream::CpComm,
                    CommCategory::CpExchange));
  }
}

// Attention without flash attention, as Megatron-LM did before 2022 (arXiv 2104.04473;
// megatron/model/transformer.py CoreAttention): the full QK^T as a batched GEMM writing
// every score, a fused scale-mask-softmax, dropout (its 1-byte mask kept for backward),
// and a batched GEMM with V reading the probabilities; all of it in HBM, over
// E = tokens x seq x heads/tp score elements of 2 bytes per rank. full_flops: QK^T + PV
// over the whole s^2 (the masked half is computed too). Backward: the two GEMMs' input
// and weight-side products (2x the FLOPs), dropout backward (read grad and mask, write)
// and softmax backward (read probabilities and grad, write).
void Generator::materialized_attention(Seg& s, const std::string& L, double full_flops, const MbShape& sh, const std::string& dir,
                                     bool backward) {
  const auto& a = m_.attention();
  double dqk = 0, dv = 0;
  if (a.kind() == config::Attention::MLA) {
    dqk = d(a.qk_nope_head_dim() + a.qk_rope_head_dim());
    dv = d(a.v_head_dim());
  } else {
    dqk = dv = d(a.head_dim() > 0 ? a.head_dim() : m_.hidden() / a.heads());
  }
  const double qk = full_flops * dqk / (dqk + dv), pv = full_flops - qk;
  const double E = sh.tokens * sh.seq * d(a.heads()) / d(tp_);
  const double drop = m_.dropout() ? 1.0 : 0.0;
  if (!backward) {
    s.chain(compute_op(L + "attn scores QK^T " + dir, qk, ComputeClass::Gemm, Precision::BF16, 2 * E));
    s.chain(compute_op(L + "attn softmax " + dir, 0, ComputeClass::Elementwise, Precision::BF16, 4 * E));
    if (drop > 0) s.chain(compute_op(L + "attn dropout " + dir, 0, ComputeClass::Elementwise, Precision::BF16, 5 * E));
    s.chain(compute_op(L + "attn context PV " + dir, pv, ComputeClass::Gemm, Precision::BF16, 2 * E));
    return;
  }
  s.chain(compute_op(L + "attn context PV " + dir, 2 * pv, ComputeClass::Gemm, Precision::BF16, 4 * E));
  if (drop > 0) s.chain(compute_op(L + "attn dropout " + dir, 0, ComputeClass::Elementwise, Precision::BF16, 5 * E));
  s.chain(compute_op(L + "attn softmax " + dir, 0, ComputeClass::Elementwise, Precision::BF16, 6 * E));
  s.chain(compute_op(L + "attn scores QK^T " + dir, 2 * qk, ComputeClass::Gemm, Precision::BF16, 4 * E));
}

bool Generator::recomputes(config::ParallelPlan::RecomputeModule mod) const {
  if (r_.recompute_modules().empty()) return mod == config::ParallelPlan::CORE_ATTN;  // Megatron-core's default
  return std::find(r_.recompute_modules().begin(), r_.recompute_modules().end(), mod) != r_.recompute_modules().end();
}

// Selective recompute before a layer's backward: what plan.recompute_modules drops from
// memory (workloads/memory.cpp) is rebuilt here, at its compute cost (Megatron-core
// recompute_modules; DeepSeek-V3 arXiv 2412.19437 sec 3.2.3 and 3.3.3).
void Generator::selective_recompute(Seg& s, uint32_t lane, int64_t l, const LayerFlops& f, const MbShape& sh, const std::string& L) {
  const double T = sh.tokens, h = d(m_.hidden());
  if (recomputes(config::ParallelPlan::CORE_ATTN)) {
    if (r_.materialize_attention_scores()) materialized_attention(s, L, T * f.attention_core / d(tp_), sh, "recompute", false);
    else s.chain(compute_op(L + "attn core recompute", T * f.attention_core_causal / d(tp_), ComputeClass::Attention, Precision::BF16));
  }
  // The pre-attention and pre-FFN RMSNorms: read the input, write the output (BF16).
  if (recomputes(config::ParallelPlan::LAYERNORM))
    s.chain(compute_op(L + "norm recompute", 0, ComputeClass::Elementwise, Precision::BF16, 2 * T * h * (2 + 2) / d(tp_)));
  const auto& a = m_.attention();
  if (recomputes(config::ParallelPlan::MLA_UP_PROJ) && a.kind() == config::Attention::MLA) {
    // Q and K/V up-projections from the latents (the latent norms are negligible).
    const double heads = d(a.heads());
    const double q_up = a.q_lora_rank() > 0 ? d(a.q_lora_rank()) * heads * d(a.qk_nope_head_dim() + a.qk_rope_head_dim()) : 0.0;
    const double kv_up = d(a.kv_lora_rank()) * heads * d(a.qk_nope_head_dim() + a.v_head_dim());
    s.chain(compute_op(L + "mla up-proj recompute", 2 * T * (q_up + kv_up) / d(tp_), ComputeClass::Gemm, prec_));
  }
  if (recomputes(config::ParallelPlan::MOE_ACT) && f.moe) {
    // SwiGLU of every routed copy: read gate and up (2 x 2 bytes), write the product (2).
    double load = 1;
    if (skew_ && static_cast<size_t>(l) < rank_share_.size() && !rank_share_[static_cast<size_t>(l)].empty())
      load = d(ep_) * rank_share_[static_cast<size_t>(l)][static_cast<size_t>(info_[lane].e)];
    const double elems = T * d(f.top_k) * d(expert_hidden(m_)) * load / d(tp_);
    s.chain(compute_op(L + "moe act recompute", 0, ComputeClass::Elementwise, Precision::BF16, 6 * elems));
  }
}

// Router, dispatch, experts, shared experts, combine. k: FLOP multiplier of the pass.
void Generator::moe_block(Seg& s, uint32_t lane, int64_t l, const LayerFlops& f, const MbShape& sh, const std::string& dir, bool backward,
                        double k) {
  const std::string L = "L" + std::to_string(l) + " ";
  const double T = sh.tokens / d(tp_), h = d(m_.hidden());
  // Bytes per element of the all-to-all towards the experts: FP8 in FP8 training, for the
  // forward dispatch and for the activation gradients sent back to the experts in
  // backward; the all-to-all back from the experts (combine, and the gradients of the
  // dispatched tokens) stays BF16 (DeepSeek-V3 §3.3.2, "low-precision communication").
  const double to_experts_b = prec_ == Precision::FP8 ? 1 : 2;
  const double a2a_to_experts = T * d(f.top_k) * h * to_experts_b, a2a_from_experts = T * d(f.top_k) * h * 2;
  double load = 1;  // this lane's expert work relative to balanced
  const std::vector<double>* m_first = nullptr;
  const std::vector<double>* m_second = nullptr;
  if (skew_ && static_cast<size_t>(l) < rank_share_.size() && !rank_share_[static_cast<size_t>(l)].empty()) {
    const auto& share = rank_share_[static_cast<size_t>(l)];
    load = d(ep_) * share[static_cast<size_t>(info_[lane].e)];
    // The first all-to-all goes to the experts, the second comes back from them.
    m_first = matrix(l, a2a_to_experts, true);
    m_second = matrix(l, a2a_from_experts, false);
  }
  auto a2a = [&](const std::string& n, double bytes, const std::vector<double>* mat) {
    Op op = coll_op(L + n, CollectiveType::AllToAll, kEp, lane, bytes, Stream::EpComm, CommCategory::EpAllToAll);
    op.coll.matrix = mat;
    op.coll.max_nodes = static_cast<uint32_t>(std::max<int64_t>(0, m_.moe().max_nodes_per_token()));
    s.chain(std::move(op));
  };
  s.chain(compute_op(L + "router " + dir, k * T * f.router, ComputeClass::Gemm, prec_));
  const bool ep = has(kEp, lane);
  // Forward: dispatch then combine. Backward: the gradient of combine goes first.
  if (ep) a2a(backward ? "combine bwd a2a" : "dispatch a2a", a2a_to_experts, m_first);
  const double recv_tokens_bytes = T * d(f.top_k) * h * 2 * d(tp_) * load;
  if (has(kTp, lane)) {
    s.chain(coll_op(L + "expert tp all-gather " + dir, CollectiveType::AllGather, kTp, lane, recv_tokens_bytes, Stream::TpComm,
                    CommCategory::TpAllGather));
  }
  const uint32_t e = s.chain(compute_op(L + "experts " + dir, k * sh.tokens * f.routed_experts * load / d(tp_), ComputeClass::ExpertGemm, prec_));
  const int64_t experts_per_rank = std::max<int64_t>(1, m_.moe().routed_experts() / ep_);
  s.ops[e].compute.m = static_cast<uint32_t>(std::min(4294967295.0, sh.tokens * d(f.top_k) * load / d(experts_per_rank)));
  if (has(kTp, lane)) {
    s.chain(coll_op(L + "expert tp reduce-scatter " + dir, CollectiveType::ReduceScatter, kTp, lane, recv_tokens_bytes, Stream::TpComm,
                    CommCategory::TpReduceScatter));
  }
  if (f.shared_experts > 0) s.chain(compute_op(L + "shared experts " + dir, k * sh.tokens * f.shared_experts / d(tp_), ComputeClass::Gemm, prec_));
  if (ep) a2a(backward ? "dispatch bwd a2a" : "combine a2a", a2a_from_experts, m_second);
}

// Uneven all-to-all: bytes from member i to member j = per-rank bytes x share_j
// (to_experts) or x share_i (back from the experts). Cached per (layer, bytes, direction).
const std::vector<double>* Generator::matrix(int64_t l, double bytes, bool to_experts) {
  auto key = std::make_tuple(l, bytes, to_experts);
  auto it = matrices_.find(key);
  if (it != matrices_.end()) return it->second;
  const auto& share = rank_share_[static_cast<size_t>(l)];
  const size_t n = share.size();
  std::vector<double> mat(n * n, 0.0);
  for (size_t i = 0; i < n; ++i)
    for (size_t j = 0; j < n; ++j) mat[i * n + j] = bytes * (to_experts ? share[j] : share[i]);
  const auto* kept = p_.add_matrix(std::move(mat));
  matrices_.emplace(key, kept);
  return kept;
}

// Backward of layer l: B (input grads), W (weight grads) or BW (both).
void Generator::layer_backward(Seg& s, uint32_t lane, int64_t l, const MbShape& sh, Pass pass, bool last_mb_of_chunk) {
  const LayerFlops f = layer_flops(m_, l, static_cast<int64_t>(sh.seq));
  const std::string L = "L" + std::to_string(l) + " ";
  const double T = sh.tokens, h = d(m_.hidden()), act = T * h * 2;
  const bool in = pass != Pass::W, wt = pass != Pass::B;
  const std::string dir = pass == Pass::B ? "bwd-B" : pass == Pass::W ? "bwd-W" : "bwd";
  const double kmat = (in ? 1.0 : 0.0) + (wt ? 1.0 : 0.0);  // matmul FLOP multiplier
  if (in) {
    if (r_.recompute() == config::ParallelPlan::FULL) layer_forward(s, lane, l, sh, "recompute", true);
    else if (r_.recompute() == config::ParallelPlan::SELECTIVE) selective_recompute(s, lane, l, f, sh, L);
  }
  const double ffn_width = f.moe ? d(f.top_k * expert_hidden(m_)) : d(m_.ffn().hidden());
  if (in) {
    // FFN (or MoE) input gradients with their communication.
    tp_before(s, lane, L + "ffn " + dir, act);
    if (wt && !f.moe) sp_regather(s, lane, L + "ffn", act, true);
    if (!f.moe) s.chain(compute_op(L + "ffn " + dir, kmat * T * f.dense_ffn / d(tp_), ComputeClass::Gemm, prec_));
    else moe_block(s, lane, l, f, sh, dir, true, kmat);
    tp_after(s, lane, L + "ffn " + dir, act);
    if (cross_ && (l + 1) % std::max<int64_t>(1, m_.vision().cross_attention_every()) == 0) {
      tp_before(s, lane, L + "xattn " + dir, act);
      if (wt) sp_regather(s, lane, L + "xattn", act, true);
      s.chain(compute_op(L + "cross-attn " + dir, kmat * cross_flops(sh) / d(tp_), ComputeClass::Gemm, prec_));
      tp_after(s, lane, L + "xattn " + dir, act);
    }
    tp_before(s, lane, L + "attn " + dir, act);
    if (wt) sp_regather(s, lane, L + "attn", act, true);
    s.chain(compute_op(L + "norm/act " + dir, 0, ComputeClass::Elementwise, Precision::BF16, 2 * T * 2 * (10 * h + 3 * ffn_width) / d(tp_)));
    attention_core(s, lane, L, T * f.attention_core_causal / d(tp_), sh, dir, 2.0, true);
    s.chain(compute_op(L + "attn proj " + dir, kmat * T * f.attention_proj / d(tp_), ComputeClass::Gemm, prec_));
    tp_after(s, lane, L + "attn " + dir, act);
  } else {
    // Weight gradients only: one GEMM pass over the layer's matmuls (after the SP
    // re-gathers of their inputs).
    sp_regather(s, lane, L + "attn", act, false);
    if (cross_ && (l + 1) % std::max<int64_t>(1, m_.vision().cross_attention_every()) == 0) sp_regather(s, lane, L + "xattn", act, false);
    if (!f.moe) sp_regather(s, lane, L + "ffn", act, false);
    double mat = f.attention_proj + (f.moe ? f.router + f.shared_experts : f.dense_ffn);
    s.chain(compute_op(L + "weight grads", T * mat / d(tp_), ComputeClass::Gemm, prec_));
    if (f.moe) {
      double load = 1;
      if (skew_ && !rank_share_[static_cast<size_t>(l)].empty()) load = d(ep_) * rank_share_[static_cast<size_t>(l)][static_cast<size_t>(info_[lane].e)];
      s.chain(compute_op(L + "expert weight grads", T * f.routed_experts * load / d(tp_), ComputeClass::ExpertGemm, prec_));
    }
  }
  if (wt) grad_sync(s, lane, l, last_mb_of_chunk);
}

// Gradient reduction of layer l once its weight gradients are final (every micro-batch
// with ZeRO-3).
void Generator::grad_sync(Seg& s, uint32_t lane, int64_t l, bool last_mb_of_chunk) {
  if (!(last_mb_of_chunk || zero_ == 3) || after_backward_) return;
  const std::string L = "L" + std::to_string(l) + " ";
  const bool rs = zero_ >= 1;
  const CollectiveType t = rs ? CollectiveType::ReduceScatter : CollectiveType::AllReduce;
  const CommCategory cat = rs ? CommCategory::DpReduceScatter : CommCategory::DpAllReduce;
  const std::string what = rs ? "grad reduce-scatter" : "grad all-reduce";
  const uint32_t after = s.last;
  auto deps = [&] { return after == kNone ? std::vector<uint32_t>{} : std::vector<uint32_t>{after}; };
  if (has(kDp, lane)) s.grads.push_back(s.add(coll_op(L + what, t, kDp, lane, dense_layer_params_per_rank(l) * grad_bytes_, Stream::DpComm, cat), deps()));
  if (expert_layer_params(l) > 0 && has(kEdp, lane)) {
    s.grads.push_back(s.add(coll_op(L + "expert " + what, t, kEdp, lane, expert_layer_params(l) / d(tp_) * grad_bytes_, Stream::DpComm, cat), deps()));
  }
}

// ------------------------------------------------------------------ one pass of a chunk
Seg Generator::pass_segment(uint32_t lane, const PipeStep& st, bool last_mb_of_chunk) {
  Seg s;
  s.ops.reserve(seg_hint_);
  const int64_t pos = sched_.position(info_[lane].stage, st.chunk);
  const LayerRange range = chunks_[static_cast<size_t>(pos)];
  const MbShape sh = shape(st.mb);
  const bool first = pos == 0, last = pos == sched_.positions - 1;
  const double h = d(m_.hidden());
  const MicroBatchImages& im = images_[static_cast<size_t>(st.mb)];
  prefetch_gate_ = kNone;
  gathered_.clear();
  if (st.pass == Pass::F) {
    if (first) {
      s.unit();
      s.chain(compute_op("embedding fwd", 0, ComputeClass::Elementwise, Precision::BF16, sh.tokens * h * 2));
      // Vocab-parallel embedding: partial lookups summed over TP (reduce-scattered with SP).
      tp_after(s, lane, "embedding fwd", sh.tokens * h * 2);
      if (vision_ && im.images > 0) vision(s, lane, im, 1.0, "fwd");
    }
    for (int64_t l = range.first; l < range.first + range.count; ++l) {
      s.unit();
      zero3_gather(s, lane, l, "fwd");
      const size_t before = s.ops.size();
      layer_forward(s, lane, l, sh, "fwd", false);
      add_gather_deps(s, before);
    }
    if (last) {
      s.unit();
      tp_before(s, lane, "head fwd", sh.tokens * h * 2);  // SP: the head needs the whole sequence
      s.chain(compute_op("head+loss fwd", sh.tokens * (lm_head_flops_per_token(m_) + mtp_flops_per_token(m_, seq_)) / d(tp_),
                         ComputeClass::Gemm, prec_));
      // Vocab-parallel cross-entropy (Megatron cross_entropy.py): all-reduces of the logit
      // max, the target logit and the sum of exponentials, FP32 per token.
      if (has(kTp, lane)) {
        s.chain(coll_op("loss tp all-reduce", CollectiveType::AllReduce, kTp, lane, 3 * sh.tokens * 4, Stream::TpComm,
                        CommCategory::TpAllReduce));
      }
    }
    return s;
  }
  // Backward passes run the chunk in reverse.
  const bool in = st.pass != Pass::W;
  if (last && in) {
    s.unit();
    if (st.pass == Pass::BW) sp_regather(s, lane, "head", sh.tokens * h * 2, false);
    s.chain(compute_op("head+loss bwd", (st.pass == Pass::BW ? 2.0 : 1.0) * sh.tokens *
                                            (lm_head_flops_per_token(m_) + mtp_flops_per_token(m_, seq_)) / d(tp_),
                       ComputeClass::Gemm, prec_));
    tp_after(s, lane, "head bwd", sh.tokens * h * 2);  // input gradient of the head, summed over TP
  }
  if (last && st.pass == Pass::W) {
    s.unit();
    sp_regather(s, lane, "head", sh.tokens * h * 2, false);
    s.chain(compute_op("head weight grads", sh.tokens * (lm_head_flops_per_token(m_) + mtp_flops_per_token(m_, seq_)) / d(tp_),
                       ComputeClass::Gemm, prec_));
  }
  if (last && st.pass != Pass::B) embedding_grads(s, lane, head_params_per_rank(), "head", last_mb_of_chunk);
  for (int64_t l = range.first + range.count - 1; l >= range.first; --l) {
    s.unit();
    if (in) zero3_gather(s, lane, l, "bwd");
    const size_t before = s.ops.size();
    layer_backward(s, lane, l, sh, st.pass, last_mb_of_chunk);
    add_gather_deps(s, before);
  }
  if (first) {
    s.unit();
    if (st.pass != Pass::B) tp_before(s, lane, "embedding bwd", sh.tokens * h * 2);  // SP: gradient of the reduce-scatter
    if (vision_ && im.images > 0) vision(s, lane, im, st.pass == Pass::BW ? 2.0 : 1.0, st.pass == Pass::W ? "wgrad" : "bwd");
    if (st.pass != Pass::B) embedding_grads(s, lane, (params_.embedding + (vision_ ? params_.vision : 0)) / d(tp_), "embedding", last_mb_of_chunk);
  }
  return s;
}

// The first compute op after a ZeRO-3 gather waits for it; the next gather waits for
// this layer's first compute (one layer of prefetch).
void Generator::add_gather_deps(Seg& s, size_t from) {
  if (gathered_.empty()) return;
  for (size_t i = from; i < s.ops.size(); ++i) {
    if (s.ops[i].kind == OpKind::Compute) {
      for (uint32_t g : gathered_) s.ops[i].deps.push_back(g);
      prefetch_gate_ = static_cast<uint32_t>(i);
      break;
    }
  }
  gathered_.clear();
}

void Generator::vision(Seg& s, uint32_t lane, const MicroBatchImages& im, double k, const std::string& dir) {
  const auto& v = m_.vision();
  s.chain(compute_op("vision encoder " + dir, k * im.encoder_flops / d(tp_ * cp_), ComputeClass::Gemm, prec_));
  if (has(kTp, lane) && dir != "wgrad") {
    // The encoder's per-layer TP all-reduces, as one collective of their total size.
    const double bytes = 2 * d(v.layers()) * im.patches / d(cp_) * d(v.hidden()) * 2;
    s.chain(coll_op("vision tp all-reduce " + dir, CollectiveType::AllReduce, kTp, lane, bytes, Stream::TpComm, CommCategory::TpAllReduce));
  }
}

// params: what one rank holds (already split by tp).
void Generator::embedding_grads(Seg& s, uint32_t lane, double params, const std::string& what, bool last_mb) {
  if (!last_mb || params <= 0 || !has(kDp, lane) || after_backward_) return;
  const bool rs = zero_ >= 1;
  s.grads.push_back(s.add(coll_op(what + (rs ? " grad reduce-scatter" : " grad all-reduce"),
                                 rs ? CollectiveType::ReduceScatter : CollectiveType::AllReduce, kDp, lane,
                                 params * grad_bytes_, Stream::DpComm,
                                 rs ? CommCategory::DpReduceScatter : CommCategory::DpAllReduce),
                         s.last == kNone ? std::vector<uint32_t>{} : std::vector<uint32_t>{s.last}));
}

}  // namespace tcsim::workloads::generator_detail
