#include "workloads/memory.hpp"

#include <algorithm>
#include <cstdio>
#include <exception>

#include "core/error.hpp"
#include "core/quantity.hpp"
#include "workloads/model.hpp"
#include "workloads/plan.hpp"
#include "workloads/schedule.hpp"

namespace tcsim::workloads {

namespace {

double d(int64_t v) { return static_cast<double>(v); }

bool moe_model(const config::ModelSpec& m) { return m.has_moe() && m.moe().routed_experts() > 0; }

/// Parameters one GPU holds for one layer, split into dense (sharded over dp·cp) and
/// expert (sharded over dp/ep·cp) parts.
struct SplitParams {
  double dense = 0, expert = 0;
};

SplitParams layer_params_per_gpu(const config::ModelSpec& m, const ParamCounts& c, const config::ParallelPlan& r,
                                 int64_t layer) {
  const double tp = d(r.tp());
  SplitParams p;
  p.dense = c.attention_per_layer / tp + c.norms_per_layer;
  if (is_moe_layer(m, layer)) {
    const double local_experts = d(m.moe().routed_experts()) / d(std::max<int64_t>(1, r.ep()));
    p.expert = local_experts * c.expert / tp;
    p.dense += c.shared_experts_per_layer / tp + c.router_per_layer;
  } else {
    p.dense += c.dense_ffn_per_layer / tp;
  }
  return p;
}

std::string gib(core::Bytes b) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.2f GiB", b.value() / 1073741824.0);
  return buf;
}

bool has_module(const config::ParallelPlan& r, config::ParallelPlan::RecomputeModule mod) {
  if (r.recompute_modules().empty()) return mod == config::ParallelPlan::CORE_ATTN;  // Megatron-core's default
  return std::find(r.recompute_modules().begin(), r.recompute_modules().end(), mod) != r.recompute_modules().end();
}

/// Storage formats of cached activations, bytes per element.
struct Formats {
  double hi = 2;        ///< BF16: norm inputs, attention core, router, head (DeepSeek-V3 §3.3.1 keeps these)
  double gemm = 2;      ///< a cached GEMM input (the Wgrad operand): 2, or FP8 + its scales
  double scale = 0;     ///< FP32 scale per 1x128 tile of a quantized tensor (DeepSeek-V3 §3.3.2)
  double attn_out = 0;  ///< single cached attention output (attn_out_cache_bits), 0 = none
  double moe_act = 2;   ///< SwiGLU input of MoE experts
};

Formats formats(const config::ParallelPlan& r) {
  Formats f;
  const bool fp8 = r.precision() == "fp8";
  f.scale = 4.0 / 128.0;
  f.gemm = fp8 ? 1.0 + f.scale : 2.0;
  auto quantized = [&](int64_t bits) { return bits >= 16 ? 2.0 : d(bits) / 8.0 + f.scale; };
  if (r.attn_out_cache_bits() > 0) f.attn_out = quantized(r.attn_out_cache_bits());
  if (r.moe_act_cache_bits() > 0) f.moe_act = quantized(r.moe_act_cache_bits());
  return f;
}

/// Bytes per token one rank stores for one micro-batch through a layer, and what its weight
/// gradients need: every GEMM's input (recomputed ones included, since B rebuilds them) and
/// output gradient, held from B to W when a schedule splits the backward (Qi et al.'s W;
/// DualPipe's WeightGradStore closures keep both).
struct ActPerToken {
  double attention = 0, ffn = 0;  ///< stored by the attention and the FFN/MoE block
  double wgrad = 0;
  [[nodiscard]] double stored() const { return attention + ffn; }
};

ActPerToken layer_act_per_token(const config::ModelSpec& m, const config::ParallelPlan& r, int64_t layer,
                                bool ignore_recompute) {
  const double s = d(r.seq_len());
  const double t = d(std::max<int64_t>(1, r.tp()));
  const double h = d(m.hidden());
  const bool sp = r.sp() && r.tp() > 1;
  auto repl = [&](double x) { return sp ? x / t : x; };  // replicated across TP ranks unless SP
  const double mask = m.dropout() ? 1.0 : 0.0;           // 1-byte dropout masks
  const auto rec = ignore_recompute ? config::ParallelPlan::NONE : r.recompute();
  const bool sel = rec == config::ParallelPlan::SELECTIVE;
  const bool rc_core = sel && has_module(r, config::ParallelPlan::CORE_ATTN);
  const bool rc_norm = sel && has_module(r, config::ParallelPlan::LAYERNORM);
  const bool rc_up = sel && has_module(r, config::ParallelPlan::MLA_UP_PROJ);
  const bool rc_act = sel && has_module(r, config::ParallelPlan::MOE_ACT);
  const Formats f = formats(r);
  const bool fp8 = r.precision() == "fp8";

  ActPerToken out;
  double* block = &out.attention;
  // A stored tensor (bytes per token); `gemm`: it is a GEMM input, needed by the weight
  // gradient; `dropped`: recomputed in the backward instead of stored.
  auto keep = [&](double bytes, bool gemm, bool dropped) {
    if (!dropped) *block += bytes;
    if (gemm) out.wgrad += bytes;
  };
  // Output gradient of a GEMM, which its weight gradient also needs (only held from B to W).
  auto dy = [&](double bytes) { out.wgrad += bytes; };

  // --- Attention block.
  const auto& a = m.attention();
  const double heads = d(a.heads());
  double q = 0, k = 0, v = 0;
  const bool mla = a.kind() == config::Attention::MLA;
  if (mla) {
    const double dqk = d(a.qk_nope_head_dim() + a.qk_rope_head_dim());
    q = k = heads * dqk;
    v = heads * d(a.v_head_dim());
  } else {
    const double hd = a.head_dim() > 0 ? d(a.head_dim()) : h / heads;
    const double kv = a.kv_heads() > 0 ? d(a.kv_heads()) : heads;
    q = heads * hd;
    k = v = kv * hd;
  }
  keep(repl(2 * h), false, false);            // pre-attention norm input (the residual stream)
  keep(repl(f.gemm * h), true, rc_norm);      // norm output = input of the QKV (MLA: down) projections
  dy(f.gemm * h);                             // output projection (row-parallel: full h per token)
  if (mla) {
    // Down-projections (not split by TP) output the query latent c_Q and the KV latent c_KV
    // (inputs of their RMSNorms, BF16) and the shared RoPE key. The latent norms' outputs
    // are the up-projections' inputs; up-projections rebuild Q, K, V.
    const double latents = d(a.q_lora_rank() + a.kv_lora_rank());
    keep(f.hi * latents, false, false);
    keep(f.gemm * latents, true, rc_up || rc_norm);
    keep(rc_up ? f.hi * d(a.qk_rope_head_dim()) : 0.0, false, false);  // RoPE key, kept to rebuild K
    dy(f.gemm * (latents + d(a.qk_rope_head_dim())));                     // down-projections
    dy(f.gemm * (q + heads * d(a.qk_nope_head_dim()) + v) / t);           // Q and KV up-projections
  } else {
    dy(f.gemm * (q + k + v) / t);  // QKV projection
  }
  keep(f.hi * (q + k + v) / t, false, mla && rc_up);  // Q, K, V for the attention core
  const bool flash = !r.materialize_attention_scores();
  if (!flash) {
    // Softmax output 2 (+ dropout mask 1 + dropout output 2) per score (Korthikanti §4.1).
    keep((m.dropout() ? 5.0 : 2.0) * heads * s / t, false, rc_core);
    keep(f.gemm * v / t, true, false);  // attention output = output projection input
  } else {
    keep(4 * heads / t, false, rc_core);  // flash attention's FP32 log-sum-exp per head
    if (f.attn_out > 0) {
      keep(f.attn_out * v / t, true, false);  // one copy for the attention backward and the projection
    } else if (fp8) {
      keep(f.hi * v / t, false, rc_core);  // BF16 output for the attention backward
      keep(f.gemm * v / t, true, false);   // FP8 copy for the output projection's Wgrad
    } else {
      keep(f.hi * v / t, true, false);  // one BF16 tensor serves both
    }
  }
  keep(repl(mask * h), false, false);  // dropout mask after the output projection

  // --- FFN block. Gated FFNs (SwiGLU) store the fc1 output (2 x width, the activation's
  // input) and the activation output (fc2 input); plain ones width x 1 for each.
  const double act_in_width = m.ffn().gated() ? 2.0 : 1.0;
  block = &out.ffn;
  keep(repl(2 * h), false, false);     // pre-FFN norm input
  keep(repl(mask * h), false, false);  // dropout mask after fc2
  if (is_moe_layer(m, layer)) {
    const double kk = d(m.moe().top_k());
    const double fe = d(expert_hidden(m)) / t;
    const double shared = d(m.moe().shared_experts());
    // Norm output: the router's input (gating stays BF16, DeepSeek-V3 §3.3.1) and, with FP8,
    // a separately quantized copy for the shared experts' fc1 (with BF16 the same tensor).
    keep(repl(f.hi * h), true, rc_norm);
    if (fp8 && shared > 0) keep(repl(f.gemm * h), true, rc_norm);
    keep(4 * d(m.moe().routed_experts()), false, false);  // FP32 gating scores for the router backward
    keep(kk * (4 + 4), false, false);                     // chosen experts: int32 index and FP32 weight
    // Per routed (token, expert) pair, k per token on average: the dispatched input (fc1's
    // input; FP8 with FP8 dispatch), the SwiGLU input and its output. The routing weight
    // multiplies the activation output (Megatron-core's activation_func_with_probs), so the
    // combine is a plain sum that stores nothing.
    keep(kk * f.gemm * h, true, false);
    keep(kk * f.moe_act * act_in_width * fe, false, false);
    keep(kk * f.gemm * fe, true, rc_act);
    keep(shared * f.moe_act * act_in_width * fe, false, false);
    keep(shared * f.gemm * fe, true, rc_act);
    dy(f.hi * d(m.moe().routed_experts()));                       // router
    dy((kk + shared) * f.gemm * (act_in_width * fe + h));          // experts' fc1 and fc2
  } else {
    const double fw = d(m.ffn().hidden()) / t;
    keep(repl(f.gemm * h), true, rc_norm);          // fc1 input (norm output)
    keep(f.hi * act_in_width * fw, false, false);   // activation input (fc1 output)
    keep(f.gemm * fw, true, false);                 // activation output = fc2 input
    dy(f.gemm * (act_in_width * fw + h));           // fc1 and fc2
  }
  return out;
}

/// Per token: MTP module extras beyond its transformer layer (DeepSeek-V3 §2.2: RMSNorms of
/// the previous depth's output and of the next token's embedding, then a 2h -> h projection).
ActPerToken mtp_extra_per_token(const config::ModelSpec& m, const config::ParallelPlan& r) {
  const double t = d(std::max<int64_t>(1, r.tp()));
  const double h = d(m.hidden());
  const bool sp = r.sp() && r.tp() > 1;
  const double rep = sp ? 1.0 / t : 1.0;
  const bool rc_norm = r.recompute() == config::ParallelPlan::SELECTIVE && has_module(r, config::ParallelPlan::LAYERNORM);
  ActPerToken out;
  if (r.recompute() == config::ParallelPlan::FULL) {
    out.ffn = rep * 2 * h * 2;  // the two norm inputs
  } else {
    out.ffn = rep * (2 * 2 * h + (rc_norm ? 0.0 : formats(r).gemm * 2 * h));
  }
  out.wgrad = rep * formats(r).gemm * 2 * h + formats(r).gemm * h;  // projection input and output gradient
  return out;
}

}  // namespace

core::Bytes layer_activation_bytes(const config::ModelSpec& m, const config::ParallelPlan& r, int64_t layer,
                                   bool ignore_recompute) {
  const double T = d(tokens_per_micro_batch(r));  // tokens of one micro-batch on this rank
  if (r.recompute() == config::ParallelPlan::FULL && !ignore_recompute) {
    const double t = d(std::max<int64_t>(1, r.tp()));
    const bool sp = r.sp() && r.tp() > 1;
    return core::Bytes(T * (sp ? 2 * d(m.hidden()) / t : 2 * d(m.hidden())));  // the layer input (Korthikanti §4.2)
  }
  return core::Bytes(T * layer_act_per_token(m, r, layer, ignore_recompute).stored());
}

LayerActivation layer_activation(const config::ModelSpec& m, const config::ParallelPlan& r, int64_t layer) {
  const double T = d(tokens_per_micro_batch(r));
  const auto a = layer_act_per_token(m, r, layer, false);
  LayerActivation out;
  out.weight_grad_operands = core::Bytes(T * a.wgrad);
  if (r.recompute() == config::ParallelPlan::FULL) {
    out.attention = layer_activation_bytes(m, r, layer);
  } else {
    out.attention = core::Bytes(T * a.attention);
    out.ffn = core::Bytes(T * a.ffn);
  }
  return out;
}

std::vector<MemoryBreakdown> estimate_stage_memory(const config::ModelSpec& m, const config::ParallelPlan& plan,
                                                   int64_t gpus) {
  const config::ParallelPlan r = resolve_plan(m, plan, gpus);
  const ParamCounts c = count_params(m);
  const int64_t pp = std::max<int64_t>(1, r.pp());
  const double tp = d(r.tp()), h = d(m.hidden());
  const double T = d(tokens_per_micro_batch(r));
  const double dense_shard = d(r.dp() * r.cp());
  const double expert_shard = d(std::max<int64_t>(1, r.dp() / std::max<int64_t>(1, r.ep())) * r.cp());
  const auto chunks = chunk_layers(m, r);
  const ScheduleInfo* sched_info = find_schedule(r.schedule());
  const bool dual = sched_info != nullptr && sched_info->bidirectional && pp > 1;
  const bool full = r.recompute() == config::ParallelPlan::FULL;
  const bool selective = r.recompute() == config::ParallelPlan::SELECTIVE;

  // One micro-batch through each model chunk: stored bytes and what its weight gradients
  // need. The last chunk also holds the output head (its input and FP32 logits for the
  // cross-entropy, 4V/t, Korthikanti §4.3) and the MTP modules, which share the main
  // model's embedding and head (DeepSeek-V3 §3.2.3) but have their own logits.
  std::vector<double> chunk_act(chunks.size()), chunk_wgrad(chunks.size());
  for (size_t ci = 0; ci < chunks.size(); ++ci) {
    for (int64_t l = chunks[ci].first; l < chunks[ci].first + chunks[ci].count; ++l) {
      chunk_act[ci] += layer_activation_bytes(m, r, l).value();
      chunk_wgrad[ci] += T * layer_act_per_token(m, r, l, true).wgrad;
    }
  }
  if (!chunks.empty()) {
    const double heads_out = 1.0 + d(m.mtp_depth());
    chunk_act.back() += T * (2 * h + 4 * d(m.vocab())) / tp * heads_out;
    chunk_wgrad.back() += T * (2 * h + 2 * d(m.vocab())) / tp * heads_out;  // head input, logit gradients
    if (m.mtp_depth() > 0) {
      const auto extra = mtp_extra_per_token(m, r);
      chunk_act.back() += d(m.mtp_depth()) * (layer_activation_bytes(m, r, m.layers()).value() + T * extra.stored());
      chunk_wgrad.back() += d(m.mtp_depth()) * T * (layer_act_per_token(m, r, m.layers(), true).wgrad + extra.wgrad);
    }
  }

  // The schedule's own order, walked stage by stage: F adds a chunk's activations, BW frees
  // them, a split backward frees all but the GEMM inputs at B and those at W.
  PipelineSchedule sched;
  bool walked = false;
  if (pp > 1) {
    try {
      sched = build_schedule(r.schedule(), pp, micro_batches(r), r.virtual_stages());
      walked = static_cast<size_t>(sched.positions) == chunks.size();
    } catch (const std::exception&) {
      walked = false;  // fall back to in_flight_micro_batches
    }
  }
  const double per_copy_chunks = walked && !sched.bidirectional ? d(sched.chunks_per_stage) : 1.0;

  std::vector<MemoryBreakdown> out;
  for (int64_t st = 0; st < pp; ++st) {
    MemoryBreakdown b;
    b.stage = st;
    SplitParams params;
    double largest_layer = 0;  // params, for the ZeRO-3 gather buffer
    double layer_act_sum = 0, max_full = 0, max_recomputed = 0;
    auto add_chunk = [&](size_t ci) {
      for (int64_t l = chunks[ci].first; l < chunks[ci].first + chunks[ci].count; ++l) {
        auto lp = layer_params_per_gpu(m, c, r, l);
        params.dense += lp.dense;
        params.expert += lp.expert;
        largest_layer = std::max(largest_layer, lp.dense + lp.expert);
        b.layers += 1;
        const double all = layer_activation_bytes(m, r, l, true).value();
        const double stored = layer_activation_bytes(m, r, l).value();
        layer_act_sum += stored;
        max_full = std::max(max_full, all);
        max_recomputed = std::max(max_recomputed, all - stored);
      }
    };
    bool first = false, last = false;
    std::vector<size_t> own;  // model chunks whose activations this stage holds
    for (size_t ci = 0; ci < chunks.size(); ++ci) {
      const auto owner = static_cast<int64_t>(ci) % pp;
      const bool held = owner == st || (dual && owner == pp - 1 - st);  // DualPipe: the reverse copy too
      if (!held) continue;
      add_chunk(ci);
      own.push_back(ci);
      if (ci == 0) first = true;
      if (ci + 1 == chunks.size()) last = true;
    }
    if (first) {
      params.dense += c.embedding / tp + c.vision;  // vocab-parallel embedding; vision encoder replicated
    }
    if (last) {
      const double head = m.tied_embeddings() ? (first ? 0.0 : d(m.vocab()) * h) : c.lm_head;
      params.dense += head / tp + h;  // output head and final norm
      if (m.mtp_depth() > 0) {
        // MTP modules: projection, norms and one layer each (the MoE split as a main-model MoE layer).
        auto lp = layer_params_per_gpu(m, c, r, m.layers());
        params.dense += d(m.mtp_depth()) * (lp.dense + (2 * h * h) / tp + 3 * h);
        params.expert += d(m.mtp_depth()) * lp.expert;
      }
    }
    b.params = params.dense + params.expert;
    const int64_t z = r.zero_stage();
    const double grad_bytes = r.grad_bytes_per_param() > 0 ? r.grad_bytes_per_param() : 2.0;
    const double shard_w = 2 * (params.dense / (z >= 3 ? dense_shard : 1) + params.expert / (z >= 3 ? expert_shard : 1));
    const double shard_g =
        grad_bytes * (params.dense / (z >= 2 ? dense_shard : 1) + params.expert / (z >= 2 ? expert_shard : 1));
    const double K = r.optimizer_bytes_per_param();
    const double shard_o = K * (params.dense / (z >= 1 ? dense_shard : 1) + params.expert / (z >= 1 ? expert_shard : 1));
    b.weights = core::Bytes(shard_w);
    b.grads = core::Bytes(shard_g);
    b.optimizer = core::Bytes(shard_o);

    double act = 0;
    if (walked) {
      double live = 0, live_passes = 0, most_passes = 0;
      for (const auto& step : sched.stages[static_cast<size_t>(st)]) {
        const auto pos = static_cast<size_t>(sched.position(st, step.chunk));
        const double A = chunk_act[pos], W = chunk_wgrad[pos];
        switch (step.pass) {
          case Pass::F: live += A; live_passes += 1; break;
          case Pass::B: live += W - A; live_passes -= 1; break;
          case Pass::W: live -= W; break;
          case Pass::BW: live -= A; live_passes -= 1; break;
        }
        act = std::max(act, live);
        most_passes = std::max(most_passes, live_passes);
      }
      b.in_flight = most_passes / per_copy_chunks;
    } else {
      b.in_flight = pp == 1 ? 1.0 : in_flight_micro_batches(r, st);
      double one = 0;
      for (auto ci : own) one += chunk_act[ci];
      act = b.in_flight * one;
    }
    b.activations = core::Bytes(act);
    b.activation_per_layer = core::Bytes(layer_act_sum / d(std::max<int64_t>(1, b.layers)));
    // Recompute workspace: the backward of one layer rebuilds what was not stored.
    b.workspace = core::Bytes(full ? max_full : selective ? max_recomputed : 0.0);

    // Communication buffers (estimates): TP gather/scatter in+out, EP dispatch+combine receive
    // buffers, PP send+recv in both directions, ZeRO-3 prefetch of two layers.
    double comm = 0;
    if (r.tp() > 1) comm += 2 * T * h * 2;
    if (r.ep() > 1 && moe_model(m)) comm += 2 * T * d(m.moe().top_k()) * h * 2;
    if (pp > 1) comm += 4 * T * h * 2;
    if (z >= 3) comm += 2 * 2 * largest_layer;
    b.comm_buffers = core::Bytes(comm);
    b.total = b.weights + b.grads + b.optimizer + b.activations + b.workspace + b.comm_buffers;
    out.push_back(b);
  }
  return out;
}

MemoryBreakdown estimate_memory(const config::ModelSpec& m, const config::ParallelPlan& plan, int64_t gpus) {
  auto stages = estimate_stage_memory(m, plan, gpus);
  return *std::max_element(stages.begin(), stages.end(),
                           [](const MemoryBreakdown& a, const MemoryBreakdown& b) { return a.total < b.total; });
}

std::string format_memory(const MemoryBreakdown& b) {
  char head[160];
  std::snprintf(head, sizeof head, "per-GPU memory (pipeline stage %lld: %lld layers, %.3gB parameters, %.3g micro-batches in flight)\n",
                static_cast<long long>(b.stage), static_cast<long long>(b.layers), b.params / 1e9, b.in_flight);
  std::string s = head;
  auto line = [&](const char* name, core::Bytes v) {
    char buf[96];
    std::snprintf(buf, sizeof buf, "  %-14s %12s\n", name, gib(v).c_str());
    s += buf;
  };
  line("weights", b.weights);
  line("gradients", b.grads);
  line("optimizer", b.optimizer);
  line("activations", b.activations);
  line("workspace", b.workspace);
  line("comm buffers", b.comm_buffers);
  line("total", b.total);
  return s;
}

void check_memory(const config::ModelSpec& m, const config::ParallelPlan& plan, int64_t gpus, core::Bytes gpu_memory,
                  const std::string& where) {
  const MemoryBreakdown b = estimate_memory(m, plan, gpus);
  if (b.total <= gpu_memory) return;
  throw core::InputError(where, "the plan needs " + gib(b.total) + " per GPU, more than the GPU's " + gib(gpu_memory) +
                                    "; " + format_memory(b) +
                                    "reduce it with more tp/pp/ep, a higher plan.zero_stage, plan.recompute (full, or "
                                    "selective with plan.recompute_modules) or cached-activation formats "
                                    "(plan.attn_out_cache_bits, plan.moe_act_cache_bits)");
}

}  // namespace tcsim::workloads
