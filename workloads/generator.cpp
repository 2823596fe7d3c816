#include "workloads/generator.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <string>
#include <tuple>
#include <unordered_map>

#include "core/error.hpp"
#include "core/prefault.hpp"
#include "workloads/model.hpp"
#include "workloads/multimodal.hpp"
#include "workloads/plan.hpp"
#include "workloads/routing.hpp"
#include "workloads/schedule.hpp"
#include "workloads/segment.hpp"

namespace tcsim::workloads {
namespace {

using core::InputError;
using segment::kGlobal;
using segment::kNone;
using segment::Seg;

double d(int64_t v) { return static_cast<double>(v); }

Precision precision_of(const std::string& p, const std::string& where) {
  if (p.empty() || p == "bf16") return Precision::BF16;
  if (p == "fp8") return Precision::FP8;
  if (p == "fp16") return Precision::FP16;
  throw InputError(where, "unknown precision '" + p + "'; valid: bf16, fp8, fp16");
}


struct LaneInfo {
  int64_t stage = 0;
  int64_t e = 0;  // EP index (only meaningful with routing skew)
  std::vector<int> ranks;
};

// kEmb: the first and the last pipeline stage, whose tied word embeddings sum gradients.
// In the order of RankLayout::CommGroups.
enum Dim { kTp, kCp, kEp, kDp, kEdp, kEmb, kDims };

// Tokens and model FLOPs of one step (the numerators of tokens/s and MFU): text tokens of
// the global batch, image tokens too where they enter the decoder's sequence (not with
// cross-attention), and the vision encoder's training FLOPs, once per data-parallel replica.
StepTotals totals_of(const config::ModelSpec& m, const config::ParallelPlan& r, const std::vector<MicroBatchImages>& images) {
  double image_tokens = 0, encoder = 0;
  for (const auto& im : images) image_tokens += im.tokens, encoder += im.encoder_flops;
  const bool cross = m.has_vision() && m.vision().layers() > 0 && m.vision().fusion() == config::VisionEncoder::CROSS_ATTENTION;
  const auto dp = static_cast<double>(r.dp());
  StepTotals t;
  t.tokens = static_cast<double>(r.global_batch()) * static_cast<double>(r.seq_len());
  t.model_flops = train_flops_per_token(m, r.seq_len()) * (t.tokens + (cross ? 0 : image_tokens * dp)) + 3 * encoder * dp;
  return t;
}

class Generator {
public:
  Generator(const config::Workload& w, int gpus, const GeneratorOptions& o) : w_(w), gpus_(gpus), opt_(o) {}

  Program run() {
    const std::string where = "workload " + w_.name();
    m_ = workload_model(w_, where);
    validate_plan(m_, w_.plan(), gpus_, "--set");
    r_ = resolve_plan(m_, w_.plan(), gpus_);
    tp_ = r_.tp(), cp_ = r_.cp(), pp_ = r_.pp(), dp_ = r_.dp(), ep_ = r_.ep(), v_ = r_.virtual_stages();
    moe_ = m_.has_moe() && m_.moe().routed_experts() > 0;
    if (!moe_) ep_ = 1;
    prec_ = precision_of(r_.precision(), "--set plan.precision");
    seq_ = r_.seq_len();
    mbsz_ = r_.micro_batch();
    mbs_ = micro_batches(r_);
    zero_ = r_.zero_stage();
    after_backward_ = r_.grad_reduce() == config::ParallelPlan::AFTER_BACKWARD;
    grad_bytes_ = r_.grad_bytes_per_param() > 0 ? r_.grad_bytes_per_param() : opt_.grad_bytes;
    sp_ = r_.sp() && tp_ > 1;
    scatter_gather_ = tp_ > 1 && !sp_ && pp_ > 1 && !r_.pp_full_tensor_sends();
    skew_ = moe_ && ep_ > 1 && !routing_is_uniform(m_);
    vision_ = m_.has_vision() && m_.vision().layers() > 0;
    cross_ = vision_ && m_.vision().fusion() == config::VisionEncoder::CROSS_ATTENTION;
    params_ = count_params(m_);
    chunks_ = chunk_layers(m_, r_);

    sched_ = build_schedule(r_.schedule(), pp_, mbs_, v_, PassDurations{1, 1, 1});
    for (int64_t s = 0; s < pp_; ++s)
      for (int64_t c = 0; c < sched_.chunks_per_stage; ++c) {
        if (sched_.position(s, c) == 0) first_stage_ = s;
        if (sched_.position(s, c) == sched_.positions - 1) last_stage_ = s;
      }
    // Megatron keeps a copy of tied word embeddings on the last stage for the output head
    // when it is not the first (DualPipe's first rank holds both ends).
    tied_copy_ = m_.tied_embeddings() && first_stage_ != last_stage_;
    timing_ = simulate_schedule(sched_, [](int64_t, const PipeStep& s) { return s.pass == Pass::BW ? 2.0 : 1.0; });
    images_ = sample_images(m_, mbs_, mbsz_, w_.seed());
    if (skew_) {
      for (const auto& share : expert_loads(m_, w_.seed())) rank_share_.push_back(share.empty() ? std::vector<double>{} : rank_loads(share, ep_));
    }

    layout_ = std::make_unique<RankLayout>(r_);
    p_.world_size = gpus_;
    p_.precision = prec_;
    if (m_.has_moe() && m_.moe().top_k() > 0) {
      p_.moe_top_k = static_cast<int>(m_.moe().top_k());
      p_.moe_max_nodes = static_cast<int>(std::max<int64_t>(0, m_.moe().max_nodes_per_token()));
    }
    const StepTotals totals = totals_of(m_, r_, images_);
    p_.tokens_per_step = totals.tokens;
    p_.model_flops_per_step = totals.model_flops;
    make_lanes();
    make_comms();
    for (uint32_t l = 0; l < p_.lanes.size(); ++l) {
      build_lane(l);
      ops_hint_ = std::max(ops_hint_, p_.lanes[l].ops.size());
    }
    validate(p_, where);
    return std::move(p_);
  }

private:
  // ------------------------------------------------------------------ lanes and groups
  void make_lanes() {
    const int64_t lanes_per_stage = skew_ ? ep_ : 1;
    auto ordered = [&](int64_t stage, int64_t e) {
      std::vector<int> ranks;
      for (int64_t dp = 0; dp < dp_; ++dp)
        for (int64_t cp = 0; cp < cp_; ++cp)
          for (int64_t tp = 0; tp < tp_; ++tp) {
            if (skew_ && dp % ep_ != e) continue;
            RankCoord c;
            c.tp = tp, c.cp = cp, c.dp = dp, c.pp = stage;
            ranks.push_back(static_cast<int>(layout_->rank(c)));
          }
      return ranks;
    };
    if (opt_.fold) {
      for (int64_t s = 0; s < pp_; ++s)
        for (int64_t e = 0; e < lanes_per_stage; ++e) info_.push_back({s, e, ordered(s, e)});
    } else {
      for (int r = 0; r < gpus_; ++r) {
        RankCoord c = layout_->coord(r);
        info_.push_back({c.pp, skew_ ? c.ep : 0, {r}});
      }
    }
    lane_of_rank_.assign(static_cast<size_t>(gpus_), 0);
    for (uint32_t l = 0; l < info_.size(); ++l) {
      p_.lanes.push_back(Lane{info_[l].ranks, {}});
      for (int r : info_[l].ranks) lane_of_rank_[static_cast<size_t>(r)] = l;
    }
  }

  // The lane that holds stage `stage`'s counterpart of lane l's first rank.
  uint32_t peer(uint32_t l, int64_t stage) const {
    RankCoord c = layout_->coord(info_[l].ranks.front());
    c.pp = stage;
    return lane_of_rank_[static_cast<size_t>(layout_->rank(c))];
  }

  void make_comms() {
    static const char* names[kDims] = {"tp", "cp", "ep", "dp", "expert_dp", "embedding"};
    const int64_t sizes[kDims] = {tp_, cp_, ep_, dp_ * cp_, dp_ / ep_ * cp_, tied_copy_ ? 2 : 1};
    // One communicator per (dimension, set of lanes its groups touch).
    std::map<std::pair<int, std::vector<uint32_t>>, uint32_t> index;
    for (auto& lane_comm : comm_of_) lane_comm.assign(info_.size(), kNone);
    for (int dim = 0; dim < kDims; ++dim) {
      if (sizes[dim] <= 1) continue;
      for (auto& g : layout_->comm_groups(static_cast<RankLayout::CommGroups>(dim), first_stage_, last_stage_)) {
        std::set<uint32_t> ls;
        for (int r : g) ls.insert(lane_of_rank_[static_cast<size_t>(r)]);
        std::vector<uint32_t> lanes(ls.begin(), ls.end());
        auto [it, fresh] = index.emplace(std::make_pair(dim, lanes), static_cast<uint32_t>(p_.comms.size()));
        if (fresh) {
          const auto& li = info_[lanes.front()];
          std::string name = std::string(names[dim]) + (pp_ > 1 ? ".s" + std::to_string(li.stage) : "");
          if (skew_ && lanes.size() == 1 && opt_.fold) name += ".e" + std::to_string(li.e);
          p_.comms.push_back(Communicator{name, {}});
        }
        p_.comms[it->second].groups.push_back(std::move(g));
        for (uint32_t l : lanes) {
          uint32_t& c = comm_of_[dim][l];
          if (c != kNone && c != it->second) throw std::logic_error("generator: a lane's groups span different lane sets");
          c = it->second;
        }
      }
    }
  }

  // ------------------------------------------------------------------ op helpers
  uint32_t label(const std::string& s) {
    // try_emplace looks the name up first; emplace built a node (a copy of the name) for
    // every op and freed it again when the name was known, as it nearly always is.
    auto [it, fresh] = labels_.try_emplace(s, static_cast<uint32_t>(p_.labels.size()));
    if (fresh) p_.labels.push_back(s);
    return it->second;
  }
  Op compute_op(const std::string& name, double flops, ComputeClass cls, Precision prec, double hbm = 0) {
    Op op;
    op.kind = OpKind::Compute;
    op.stream = Stream::Compute;
    op.compute.flops = flops;
    op.compute.hbm_bytes = hbm;
    op.compute.cls = cls;
    op.compute.precision = prec;
    op.label = label(name);
    return op;
  }
  Op coll_op(const std::string& name, CollectiveType t, Dim dim, uint32_t lane, double bytes, Stream st, CommCategory cat) {
    Op op;
    op.kind = OpKind::Collective;
    op.stream = st;
    op.category = cat;
    op.coll.type = t;
    op.coll.comm = comm_of_[dim][lane];
    op.coll.bytes = bytes;
    op.label = label(name);
    return op;
  }
  bool has(Dim dim, uint32_t lane) const { return comm_of_[dim][lane] != kNone; }

  // ------------------------------------------------------------------ per-layer work
  struct MbShape {
    double tokens = 0;      // per rank (after CP split)
    double seq = 0;         // sequence length seen by attention
    double img_tokens = 0;  // per rank, for cross-attention and p2p
  };
  MbShape shape(int64_t mb) const {
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
  double dense_layer_params_per_rank(int64_t l) const {
    const bool moe = is_moe_layer(m_, l);
    return (params_.attention_per_layer + (moe ? params_.shared_experts_per_layer : params_.dense_ffn_per_layer)) / d(tp_) +
           params_.norms_per_layer + (moe ? params_.router_per_layer : 0.0);
  }
  // Output head, MTP modules and the final norm (replicated) of one rank of the last position.
  double head_params_per_rank() const {
    const double lm_head = tied_copy_ ? d(m_.vocab()) * d(m_.hidden()) : params_.lm_head;
    return (lm_head + params_.mtp) / d(tp_) + d(m_.hidden()) * (m_.linear_bias() ? 2.0 : 1.0);
  }
  // All routed experts of layer l on this EP rank (split by tp at the call sites).
  double expert_layer_params(int64_t l) const {
    return is_moe_layer(m_, l) ? params_.expert * d(m_.moe().routed_experts() / ep_) : 0;
  }

  // TP collective pair around a block: before (SP all-gather) and after (all-reduce or SP
  // reduce-scatter).
  void tp_before(Seg& s, uint32_t lane, const std::string& n, double bytes) {
    if (sp_ && has(kTp, lane))
      s.chain(coll_op(n + " sp all-gather", CollectiveType::AllGather, kTp, lane, bytes, Stream::TpComm, CommCategory::TpAllGather));
  }
  void tp_after(Seg& s, uint32_t lane, const std::string& n, double bytes) {
    if (!has(kTp, lane)) return;
    if (sp_) s.chain(coll_op(n + " sp reduce-scatter", CollectiveType::ReduceScatter, kTp, lane, bytes, Stream::TpComm, CommCategory::TpReduceScatter));
    else s.chain(coll_op(n + " tp all-reduce", CollectiveType::AllReduce, kTp, lane, bytes, Stream::TpComm, CommCategory::TpAllReduce));
  }
  // With SP, Megatron-LM keeps only the sequence shard of a column-parallel linear's input
  // and all-gathers it again in backward for the weight gradients, asynchronously beside
  // the input-gradient GEMM (layers.py LinearWithGradAccumulationAndAsyncCommunication).
  // overlapped: issued after the current tail with nothing waiting on it but the TP stream
  // (the block's compute runs beside it); else chained (a weight-gradient-only pass).
  void sp_regather(Seg& s, uint32_t lane, const std::string& n, double bytes, bool overlapped) {
    if (!sp_ || !has(kTp, lane)) return;
    Op op = coll_op(n + " sp input re-gather", CollectiveType::AllGather, kTp, lane, bytes, Stream::TpComm, CommCategory::TpAllGather);
    if (overlapped && s.last != kNone) s.add(std::move(op), {s.last});
    else s.chain(std::move(op));
  }

  // ZeRO-3: all-gather of a layer's parameters, prefetched one layer ahead.
  void zero3_gather(Seg& s, uint32_t lane, int64_t l, const std::string& dir) {
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
  void layer_forward(Seg& s, uint32_t lane, int64_t l, const MbShape& sh, const std::string& dir, bool recompute) {
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

  double cross_flops(const MbShape& sh) const {
    const double h = d(m_.hidden()), I = sh.img_tokens;
    // Q and output projections over text, K/V projections over image tokens, core.
    return sh.tokens * 4 * h * h + I * 4 * h * h + 4 * sh.tokens * (I * d(cp_) / d(mbsz_)) * h;
  }

  // Attention core (fwd k=1, bwd k=2): with CP, K/V all-gather overlapped with the local
  // block; backward also reduce-scatters dK/dV.
  void attention_core(Seg& s, uint32_t lane, const std::string& L, double flops, const MbShape& sh, const std::string& dir,
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
  void materialized_attention(Seg& s, const std::string& L, double full_flops, const MbShape& sh, const std::string& dir,
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

  bool recomputes(config::ParallelPlan::RecomputeModule mod) const {
    if (r_.recompute_modules().empty()) return mod == config::ParallelPlan::CORE_ATTN;  // Megatron-core's default
    return std::find(r_.recompute_modules().begin(), r_.recompute_modules().end(), mod) != r_.recompute_modules().end();
  }

  // Selective recompute before a layer's backward: what plan.recompute_modules drops from
  // memory (workloads/memory.cpp) is rebuilt here, at its compute cost (Megatron-core
  // recompute_modules; DeepSeek-V3 arXiv 2412.19437 sec 3.2.3 and 3.3.3).
  void selective_recompute(Seg& s, uint32_t lane, int64_t l, const LayerFlops& f, const MbShape& sh, const std::string& L) {
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
  void moe_block(Seg& s, uint32_t lane, int64_t l, const LayerFlops& f, const MbShape& sh, const std::string& dir, bool backward,
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
    s.ops[e].compute.m = static_cast<uint64_t>(sh.tokens * d(f.top_k) * load / d(experts_per_rank));
    if (has(kTp, lane)) {
      s.chain(coll_op(L + "expert tp reduce-scatter " + dir, CollectiveType::ReduceScatter, kTp, lane, recv_tokens_bytes, Stream::TpComm,
                      CommCategory::TpReduceScatter));
    }
    if (f.shared_experts > 0) s.chain(compute_op(L + "shared experts " + dir, k * sh.tokens * f.shared_experts / d(tp_), ComputeClass::Gemm, prec_));
    if (ep) a2a(backward ? "dispatch bwd a2a" : "combine a2a", a2a_from_experts, m_second);
  }

  // Uneven all-to-all: bytes from member i to member j = per-rank bytes x share_j
  // (to_experts) or x share_i (back from the experts). Cached per (layer, bytes, direction).
  const std::vector<double>* matrix(int64_t l, double bytes, bool to_experts) {
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
  void layer_backward(Seg& s, uint32_t lane, int64_t l, const MbShape& sh, Pass pass, bool last_mb_of_chunk) {
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
  void grad_sync(Seg& s, uint32_t lane, int64_t l, bool last_mb_of_chunk) {
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
  // What a pass's segment depends on besides its lane: pass, chunk, last micro-batch of the
  // chunk, and the micro-batch's images (images, patches, tokens, encoder FLOP).
  using SegKey = std::tuple<int, int64_t, bool, int64_t, double, double, double>;
  Seg pass_segment(uint32_t lane, const PipeStep& st, bool last_mb_of_chunk) {
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
  void add_gather_deps(Seg& s, size_t from) {
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

  void vision(Seg& s, uint32_t lane, const MicroBatchImages& im, double k, const std::string& dir) {
    const auto& v = m_.vision();
    s.chain(compute_op("vision encoder " + dir, k * im.encoder_flops / d(tp_ * cp_), ComputeClass::Gemm, prec_));
    if (has(kTp, lane) && dir != "wgrad") {
      // The encoder's per-layer TP all-reduces, as one collective of their total size.
      const double bytes = 2 * d(v.layers()) * im.patches / d(cp_) * d(v.hidden()) * 2;
      s.chain(coll_op("vision tp all-reduce " + dir, CollectiveType::AllReduce, kTp, lane, bytes, Stream::TpComm, CommCategory::TpAllReduce));
    }
  }

  // params: what one rank holds (already split by tp).
  void embedding_grads(Seg& s, uint32_t lane, double params, const std::string& what, bool last_mb) {
    if (!last_mb || params <= 0 || !has(kDp, lane) || after_backward_) return;
    const bool rs = zero_ >= 1;
    s.grads.push_back(s.add(coll_op(what + (rs ? " grad reduce-scatter" : " grad all-reduce"),
                                   rs ? CollectiveType::ReduceScatter : CollectiveType::AllReduce, kDp, lane,
                                   params * grad_bytes_, Stream::DpComm,
                                   rs ? CommCategory::DpReduceScatter : CommCategory::DpAllReduce),
                           s.last == kNone ? std::vector<uint32_t>{} : std::vector<uint32_t>{s.last}));
  }

  // ------------------------------------------------------------------ p2p
  Op p2p_op(OpKind kind, uint32_t peer_lane, double bytes, uint32_t tag, const std::string& name) {
    Op op;
    op.kind = kind;
    op.stream = Stream::PpComm;
    op.category = CommCategory::PpP2P;
    op.p2p.peer_lane = peer_lane;
    op.p2p.bytes = bytes;
    op.p2p.tag = tag;
    op.label = label(name);
    return op;
  }
  uint32_t tag(int64_t mb, bool grad, int64_t from_pos) const {
    return static_cast<uint32_t>((mb * 2 + (grad ? 1 : 0)) * sched_.positions + from_pos);
  }
  // Activation (or its gradient) crossing a stage boundary, whole, per rank.
  double boundary_bytes(int64_t mb) const {
    const MbShape sh = shape(mb);
    return (sh.tokens + sh.img_tokens) * d(m_.hidden()) * 2;
  }
  // What each TP rank sends: its 1/tp slice with sequence parallelism, or with Megatron's
  // scatter/gather (arXiv 2104.04473 sec 4.1: each TP rank sends 1/t over the fabric and the
  // receiver all-gathers it over NVLink); the whole tensor with plan.pp_full_tensor_sends.
  double p2p_bytes(int64_t mb) const {
    return sp_ || scatter_gather_ ? boundary_bytes(mb) / d(tp_) : boundary_bytes(mb);
  }

  // ------------------------------------------------------------------ one lane
  void build_lane(uint32_t lane) {
    const int64_t s = info_[lane].stage;
    const auto& steps = sched_.stages[static_cast<size_t>(s)];
    const auto& times = timing_.steps[static_cast<size_t>(s)];
    const int64_t P = sched_.positions;
    auto& ops = p_.lanes[lane].ops;
    // Lanes are alike: reserving what the previous one took saves the vector's regrowth (and
    // the page faults of its copies; S1 has 123k ops of 80 bytes). The reservation is fresh
    // memory that the lane fills, so it is mapped in one call rather than page by page.
    ops.reserve(ops_hint_);
    core::prefault_for_write(ops.data(), ops.capacity() * sizeof(Op));
    grads_.clear();
    // Done times of every (mb, pos) F and backward, from the schedule's list simulation.
    std::vector<double> fend(static_cast<size_t>(mbs_ * P)), bend(static_cast<size_t>(mbs_ * P));
    for (int64_t st = 0; st < pp_; ++st) {
      for (size_t i = 0; i < sched_.stages[st].size(); ++i) {
        const auto& x = sched_.stages[st][i];
        const size_t k = static_cast<size_t>(x.mb * P + sched_.position(st, x.chunk));
        if (x.pass == Pass::F) fend[k] = timing_.steps[st][i].end;
        if (x.pass == Pass::B || x.pass == Pass::BW) bend[k] = timing_.steps[st][i].end;
      }
    }
    // Last weight-gradient step of each local chunk (its gradients are final there).
    std::vector<size_t> last_w(static_cast<size_t>(sched_.chunks_per_stage), 0);
    for (size_t i = 0; i < steps.size(); ++i)
      if (steps[i].pass == Pass::W || steps[i].pass == Pass::BW) last_w[static_cast<size_t>(steps[i].chunk)] = i;

    // Events in logical time: p2p (ordered by (time, tag) on every lane alike) before the
    // computes that start at that time.
    struct Ev {
      double t;
      int cls;  // 0 p2p, 1 compute
      uint32_t key;
      size_t step;  // compute: step index; p2p: index into p2ps
    };
    struct P2P {
      bool send;
      uint32_t peer;
      uint32_t tag;
      double bytes;
      size_t producer;  // send: the step whose output it carries
      std::string name;
      double gather = 0;  // receive with scatter/gather: the whole tensor, all-gathered over TP
    };
    std::vector<P2P> p2ps;
    std::vector<Ev> evs;
    std::map<size_t, std::vector<size_t>> recvs_of_step;  // step -> p2p indices
    for (size_t i = 0; i < steps.size(); ++i) {
      const auto& x = steps[i];
      if (i > 0 && steps[i - 1].overlap_next) {
        // second half of an overlapped pair: emitted with the first
      } else {
        evs.push_back({times[i].start, 1, 0, i});
      }
      const int64_t pos = sched_.position(s, x.chunk);
      const int dir = sched_.chunk_direction(x.chunk);
      const size_t k = static_cast<size_t>(x.mb * P + pos);
      if (x.pass == Pass::F) {
        if (pos > 0) {
          const ChunkPlace from = sched_.place(dir, pos - 1);
          p2ps.push_back({false, peer(lane, from.stage), tag(x.mb, false, pos - 1), 0, i, "recv act",
                          scatter_gather_ ? boundary_bytes(x.mb) : 0});
          evs.push_back({fend[static_cast<size_t>(x.mb * P + pos - 1)], 0, p2ps.back().tag, p2ps.size() - 1});
          recvs_of_step[i].push_back(p2ps.size() - 1);
        }
        if (pos < P - 1) {
          const ChunkPlace to = sched_.place(dir, pos + 1);
          p2ps.push_back({true, peer(lane, to.stage), tag(x.mb, false, pos), p2p_bytes(x.mb), i, "send act"});
          evs.push_back({fend[k], 0, p2ps.back().tag, p2ps.size() - 1});
        }
      } else if (x.pass == Pass::B || x.pass == Pass::BW) {
        if (pos < P - 1) {
          const ChunkPlace from = sched_.place(dir, pos + 1);
          p2ps.push_back({false, peer(lane, from.stage), tag(x.mb, true, pos + 1), 0, i, "recv grad",
                          scatter_gather_ ? boundary_bytes(x.mb) : 0});
          evs.push_back({bend[static_cast<size_t>(x.mb * P + pos + 1)], 0, p2ps.back().tag, p2ps.size() - 1});
          recvs_of_step[i].push_back(p2ps.size() - 1);
        }
        if (pos > 0) {
          const ChunkPlace to = sched_.place(dir, pos - 1);
          p2ps.push_back({true, peer(lane, to.stage), tag(x.mb, true, pos), p2p_bytes(x.mb), i, "send grad"});
          evs.push_back({bend[k], 0, p2ps.back().tag, p2ps.size() - 1});
        }
      }
    }
    std::stable_sort(evs.begin(), evs.end(), [](const Ev& a, const Ev& b) {
      return std::tie(a.t, a.cls, a.key) < std::tie(b.t, b.cls, b.key);
    });

    std::map<SegKey, Seg> segs_built;
    std::vector<uint32_t> p2p_at(p2ps.size(), kNone);
    std::vector<uint32_t> step_last(steps.size(), kNone), step_first(steps.size(), kNone);
    std::map<std::tuple<int64_t, int64_t, int>, uint32_t> last_of;  // (mb, chunk, 0 F / 1 B) -> op
    for (const Ev& ev : evs) {
      if (ev.cls == 0) {
        const P2P& q = p2ps[ev.step];
        std::vector<uint32_t> deps;
        if (q.send) {
          if (step_last[q.producer] == kNone) throw std::logic_error("generator: send before its producer");
          deps.push_back(step_last[q.producer]);
        }
        Op op = p2p_op(q.send ? OpKind::Send : OpKind::Recv, q.peer, q.bytes, q.tag, q.name);
        op.deps = std::move(deps);
        ops.push_back(std::move(op));
        if (q.gather > 0) {
          // On the pipeline stream, in order with the receive: it must not hold back the TP
          // collectives of compute that does not need it.
          Op g = coll_op(q.name + " tp all-gather", CollectiveType::AllGather, kTp, lane, q.gather, Stream::PpComm,
                         CommCategory::TpAllGather);
          g.deps = {static_cast<uint32_t>(ops.size() - 1)};
          ops.push_back(std::move(g));
        }
        p2p_at[ev.step] = static_cast<uint32_t>(ops.size() - 1);
        continue;
      }
      // A compute step, or an overlapped F&B pair.
      const size_t i = ev.step;
      const bool pair = steps[i].overlap_next && i + 1 < steps.size();
      std::vector<Seg> segs;
      for (size_t j = i; j <= (pair ? i + 1 : i); ++j) {
        const auto& x = steps[j];
        const bool last_mb = last_w[static_cast<size_t>(x.chunk)] == j;
        // A pass's segment depends on its micro-batch only through the micro-batch's images
        // (none in text models): built once per kind of pass and copied (S1: 120
        // micro-batches a lane; building spelt out every op's label again).
        const MicroBatchImages& im = images_[static_cast<size_t>(x.mb)];
        const SegKey key{static_cast<int>(x.pass), x.chunk, last_mb, im.images, im.patches, im.tokens, im.encoder_flops};
        auto built = segs_built.find(key);
        if (built == segs_built.end()) built = segs_built.emplace(key, pass_segment(lane, x, last_mb)).first;
        Seg seg = built->second;
        seg_hint_ = std::max(seg_hint_, seg.ops.size());
        // External deps of the pass's first op: its receives and its own earlier passes.
        std::vector<uint32_t> ext;
        for (size_t q : recvs_of_step[j]) {
          if (p2p_at[q] == kNone) throw std::logic_error("generator: receive after its consumer");
          ext.push_back(p2p_at[q]);
        }
        if (x.pass != Pass::F) {
          auto it = last_of.find({x.mb, x.chunk, x.pass == Pass::W ? 1 : 0});
          if (it != last_of.end()) ext.push_back(it->second);
        }
        if (!seg.ops.empty()) {
          for (uint32_t g : ext) seg.ops.front().deps.push_back(g | kGlobal);
        }
        segs.push_back(std::move(seg));
      }
      emit(lane, segs, pair ? std::vector<size_t>{i, i + 1} : std::vector<size_t>{i}, step_first, step_last);
      for (size_t j = i; j <= (pair ? i + 1 : i); ++j) {
        const auto& x = steps[j];
        if (step_last[j] != kNone) last_of[{x.mb, x.chunk, x.pass == Pass::F ? 0 : 1}] = step_last[j];
      }
    }
    // Optimizer step after every gradient reduction and the last compute.
    std::vector<uint32_t> deps = grads_;
    if (!ops.empty()) deps.push_back(static_cast<uint32_t>(ops.size() - 1));
    double local = 0, local_experts = 0;
    for (int64_t c = 0; c < sched_.chunks_per_stage; ++c) {
      const int64_t pos = sched_.position(s, c);
      const LayerRange range = chunks_[static_cast<size_t>(pos)];
      for (int64_t l = range.first; l < range.first + range.count; ++l) {
        local += dense_layer_params_per_rank(l);
        local_experts += expert_layer_params(l) / d(tp_);
      }
      if (pos == 0) local += (params_.embedding + (vision_ ? params_.vision : 0)) / d(tp_);
      if (pos == P - 1) local += head_params_per_rank();
    }
    if (after_backward_) {
      // The whole gradient buffer in one reduction once the backward is done.
      const uint32_t after = ops.empty() ? kNone : static_cast<uint32_t>(ops.size() - 1);
      const bool rs = zero_ >= 1;
      const CollectiveType t = rs ? CollectiveType::ReduceScatter : CollectiveType::AllReduce;
      const CommCategory cat = rs ? CommCategory::DpReduceScatter : CommCategory::DpAllReduce;
      const std::string what = rs ? "grad reduce-scatter" : "grad all-reduce";
      auto reduce = [&](Dim dim, double params, const std::string& name) {
        if (params <= 0 || !has(dim, lane)) return;
        Op op = coll_op(name, t, dim, lane, params * grad_bytes_, Stream::DpComm, cat);
        if (after != kNone) op.deps = {after};
        ops.push_back(std::move(op));
        deps.push_back(static_cast<uint32_t>(ops.size() - 1));
      };
      reduce(kDp, local, what);
      reduce(kEdp, local_experts, "expert " + what);
    }
    if (has(kEmb, lane)) {
      // Tied word embeddings: the first stage's table and the last stage's copy sum their
      // (data-parallel reduced) gradients, after the backward and before the optimizer
      // (Megatron-LM train_step / finalize_model_grads: backward-embedding-all-reduce).
      Op op = coll_op("embedding grad all-reduce", CollectiveType::AllReduce, kEmb, lane,
                      d(m_.vocab()) * d(m_.hidden()) / d(tp_) * grad_bytes_, Stream::DpComm, CommCategory::EmbAllReduce);
      op.deps = deps;
      ops.push_back(std::move(op));
      deps.push_back(static_cast<uint32_t>(ops.size() - 1));
    }
    if (zero_ >= 1) {
      local /= d(dp_ * cp_);
      local_experts /= d(dp_ / ep_ * cp_);
    }
    Op opt = compute_op("optimizer step", 0, ComputeClass::Elementwise, Precision::FP32, 30.0 * (local + local_experts));
    opt.deps = deps;
    ops.push_back(std::move(opt));
    const uint32_t opt_op = static_cast<uint32_t>(ops.size() - 1);
    if (zero_ == 1 || zero_ == 2) {
      // Updated parameter shards are all-gathered (BF16) for the next step.
      if (has(kDp, lane)) {
        Op op = coll_op("param all-gather", CollectiveType::AllGather, kDp, lane, local * d(dp_ * cp_) * 2, Stream::DpComm, CommCategory::DpAllGather);
        op.deps = {opt_op};
        ops.push_back(std::move(op));
      }
      if (local_experts > 0 && has(kEdp, lane)) {
        Op op = coll_op("expert param all-gather", CollectiveType::AllGather, kEdp, lane, local_experts * d(dp_ / ep_ * cp_) * 2,
                        Stream::DpComm, CommCategory::DpAllGather);
        op.deps = {opt_op};
        ops.push_back(std::move(op));
      }
    }
  }

  // Appends segments to the lane in segment::emission_order: one in order, two interleaved
  // layer by layer or as DualPipe's overlapped pair.
  void emit(uint32_t lane, std::vector<Seg>& segs, const std::vector<size_t>& step_ids, std::vector<uint32_t>& step_first,
            std::vector<uint32_t>& step_last) {
    auto& ops = p_.lanes[lane].ops;
    std::vector<std::vector<uint32_t>> map(segs.size());
    for (size_t k = 0; k < segs.size(); ++k) map[k].assign(segs[k].ops.size(), kNone);
    for (auto [k, i] : segment::emission_order(segs)) {
      Op& op = segs[k].ops[i];
      // Segment-local dependencies become lane indices, in place.
      for (uint32_t& dd : op.deps) dd = (dd & kGlobal) ? (dd & ~kGlobal) : map[k][dd];
      std::sort(op.deps.begin(), op.deps.end());
      op.deps.truncate(static_cast<size_t>(std::unique(op.deps.begin(), op.deps.end()) - op.deps.begin()));
      ops.push_back(std::move(op));
      map[k][i] = static_cast<uint32_t>(ops.size() - 1);
    }
    for (size_t k = 0; k < segs.size(); ++k) {
      const size_t st = step_ids[k];
      if (!segs[k].ops.empty()) {
        step_first[st] = map[k][0];
        step_last[st] = segs[k].last != kNone ? map[k][segs[k].last] : map[k].back();
      } else if (!ops.empty()) {
        step_last[st] = static_cast<uint32_t>(ops.size() - 1);
      }
    }
    for (size_t k = 0; k < segs.size(); ++k)
      for (uint32_t g : segs[k].grads) grads_.push_back(map[k][g]);
  }

  const config::Workload& w_;
  int gpus_;
  GeneratorOptions opt_;
  config::ModelSpec m_;
  config::ParallelPlan r_;
  int64_t tp_ = 1, cp_ = 1, pp_ = 1, dp_ = 1, ep_ = 1, v_ = 1, seq_ = 0, mbsz_ = 1, mbs_ = 1, zero_ = 0;
  bool moe_ = false, sp_ = false, skew_ = false, vision_ = false, cross_ = false;
  bool after_backward_ = false;  // plan.grad_reduce = after_backward
  bool scatter_gather_ = false;  // pipeline sends split over TP and all-gathered on receipt
  bool tied_copy_ = false;       // the last stage holds a copy of the tied word embeddings
  int64_t first_stage_ = 0, last_stage_ = 0;  // stages of the first and the last layer chunk
  double grad_bytes_ = 4;        // bytes per gradient element in the data-parallel reduction
  Precision prec_ = Precision::BF16;
  ParamCounts params_;
  std::vector<LayerRange> chunks_;
  PipelineSchedule sched_;
  ScheduleTiming timing_;
  std::vector<MicroBatchImages> images_;
  std::vector<std::vector<double>> rank_share_;
  std::map<std::tuple<int64_t, double, bool>, const std::vector<double>*> matrices_;  // into p_.matrices
  std::unique_ptr<RankLayout> layout_;
  std::vector<LaneInfo> info_;
  std::vector<uint32_t> lane_of_rank_;
  std::vector<uint32_t> comm_of_[kDims];
  std::unordered_map<std::string, uint32_t> labels_;
  Program p_;
  std::vector<uint32_t> grads_;     // gradient collectives of the current lane (lane op indices)
  size_t ops_hint_ = 0, seg_hint_ = 16;  // capacities to reserve (sizes seen so far)
  std::vector<uint32_t> gathered_;  // ZeRO-3 gathers of the current layer (segment-local)
  uint32_t prefetch_gate_ = kNone;
};

}  // namespace

Program generate(const config::Workload& w, int gpus, const GeneratorOptions& options) {
  return Generator(w, gpus, options).run();
}

StepTotals step_totals(const config::Workload& w, int gpus) {
  const std::string where = "workload " + w.name();
  const config::ModelSpec m = workload_model(w, where);
  validate_plan(m, w.plan(), gpus, "--set");
  const config::ParallelPlan r = resolve_plan(m, w.plan(), gpus);
  return totals_of(m, r, sample_images(m, micro_batches(r), r.micro_batch(), w.seed()));
}

}  // namespace tcsim::workloads
