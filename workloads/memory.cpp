#include "workloads/memory.hpp"

#include <algorithm>
#include <cstdio>

#include "core/error.hpp"
#include "core/quantity.hpp"
#include "workloads/model.hpp"
#include "workloads/plan.hpp"

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

}  // namespace

core::Bytes layer_activation_bytes(const config::ModelSpec& m, const config::ParallelPlan& r, int64_t layer,
                                   bool ignore_recompute) {
  const double T = d(tokens_per_micro_batch(r));  // tokens of one micro-batch on this rank
  const double s = d(r.seq_len());
  const double t = d(std::max<int64_t>(1, r.tp()));
  const double h = d(m.hidden());
  const bool sp = r.sp() && r.tp() > 1;
  auto repl = [&](double x) { return sp ? x / t : x; };  // replicated across TP ranks unless SP
  const double mask = m.dropout() ? 1.0 : 0.0;           // 1-byte dropout masks
  const auto rec = r.recompute();
  if (rec == config::ParallelPlan::FULL && !ignore_recompute) {
    return core::Bytes(T * repl(2 * h));  // only the layer input (Korthikanti §4.2)
  }

  // Attention block (bytes per token).
  const auto& a = m.attention();
  const double heads = d(a.heads());
  double q = 0, k = 0, v = 0, latent = 0;
  if (a.kind() == config::Attention::MLA) {
    const double dqk = d(a.qk_nope_head_dim() + a.qk_rope_head_dim());
    q = k = heads * dqk;
    v = heads * d(a.v_head_dim());
    latent = d(a.q_lora_rank() + a.kv_lora_rank() + a.qk_rope_head_dim());  // down-projection outputs
  } else {
    const double hd = a.head_dim() > 0 ? d(a.head_dim()) : h / heads;
    const double kv = a.kv_heads() > 0 ? d(a.kv_heads()) : heads;
    q = heads * hd;
    k = v = kv * hd;
  }
  // FP8 training caches GEMM inputs in FP8 (DeepSeek-V3 §3.3.2): 1 byte instead of 2.
  const double g = r.precision() == "fp8" ? 1.0 : 2.0;
  // Selective recompute of an MLA model also recomputes RMSNorm outputs and the MLA
  // up-projections (DeepSeek-V3 §3.2.3): Q, K, V and the norm outputs are not stored.
  const bool mla_selective = a.kind() == config::Attention::MLA && rec == config::ParallelPlan::SELECTIVE &&
                             !ignore_recompute;
  double attn = repl(2 * h)                                  // pre-attention norm input
                + (mla_selective ? 0.0 : repl(g * h))        // QKV projection input (norm output)
                + g * latent                                 // MLA latent vectors (down projections are not split)
                + (mla_selective ? 0.0 : 2 * (q + k + v) / t)  // Q, K, V for the attention core
                + g * v / t                                  // attention output = output projection input
                + repl(mask * h);                            // dropout mask after the output projection
  const bool scores_stored = r.materialize_attention_scores() &&
                             !(rec == config::ParallelPlan::SELECTIVE && !ignore_recompute);
  if (scores_stored) {
    attn += (m.dropout() ? 5.0 : 2.0) * heads * s / t;  // softmax out 2 (+ mask 1 + dropout out 2) per score
  } else if (!r.materialize_attention_scores()) {
    attn += 4 * heads / t;  // flash attention's FP32 log-sum-exp per head
  }

  // FFN block (bytes per token). Gated: fc1 output (2 x f, the activation's input) and the
  // product (fc2 input); plain: activation input and output.
  const double act_per_width = m.ffn().gated() ? 4.0 + g : 2.0 + g;
  double ffn = repl(2 * h) + repl(mask * h);  // pre-FFN norm input, dropout mask
  if (is_moe_layer(m, layer)) {
    const double kk = d(m.moe().top_k());
    const double fe = d(expert_hidden(m));
    ffn += (mla_selective ? 0.0 : repl(g * h))      // router / shared expert input (norm output)
           + 4 * d(m.moe().routed_experts())        // FP32 router logits
           + kk * (g * h + act_per_width * fe / t)  // permuted expert input and activations
           + kk * 2 * h                             // expert outputs kept for the weighted combine
           + d(m.moe().shared_experts()) * act_per_width * fe / t;
  } else {
    ffn += repl(g * h) + act_per_width * d(m.ffn().hidden()) / t;  // fc1 input, activation in/out
  }
  return core::Bytes(T * (attn + ffn));
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
  const ScheduleInfo* sched = find_schedule(r.schedule());
  const bool dual = sched != nullptr && sched->bidirectional && pp > 1;

  std::vector<MemoryBreakdown> out;
  for (int64_t st = 0; st < pp; ++st) {
    MemoryBreakdown b;
    b.stage = st;
    SplitParams params;
    double act_layers = 0;     // one micro-batch through the stage's layers (one model copy)
    double largest_layer = 0;  // params, for the ZeRO-3 gather buffer
    double max_layer_act = 0;
    auto add_chunk = [&](size_t ci, bool count_act) {
      for (int64_t l = chunks[ci].first; l < chunks[ci].first + chunks[ci].count; ++l) {
        auto lp = layer_params_per_gpu(m, c, r, l);
        params.dense += lp.dense;
        params.expert += lp.expert;
        largest_layer = std::max(largest_layer, lp.dense + lp.expert);
        b.layers += 1;
        const double full = layer_activation_bytes(m, r, l, true).value();
        max_layer_act = std::max(max_layer_act, full);
        if (count_act) act_layers += layer_activation_bytes(m, r, l).value();
      }
    };
    bool first = false, last = false;
    for (size_t ci = 0; ci < chunks.size(); ++ci) {
      const auto owner = static_cast<int64_t>(ci) % pp;
      if (owner == st) add_chunk(ci, true);
      if (dual && owner == pp - 1 - st) add_chunk(ci, false);  // DualPipe's reverse copy: weights only
      if (ci == 0 && (owner == st || (dual && owner == pp - 1 - st))) first = true;
      if (ci + 1 == chunks.size() && (owner == st || (dual && owner == pp - 1 - st))) last = true;
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
    const double shard_w = 2 * (params.dense / (z >= 3 ? dense_shard : 1) + params.expert / (z >= 3 ? expert_shard : 1));
    const double shard_g = 2 * (params.dense / (z >= 2 ? dense_shard : 1) + params.expert / (z >= 2 ? expert_shard : 1));
    const double K = r.optimizer_bytes_per_param();
    const double shard_o = K * (params.dense / (z >= 1 ? dense_shard : 1) + params.expert / (z >= 1 ? expert_shard : 1));
    b.weights = core::Bytes(shard_w);
    b.grads = core::Bytes(shard_g);
    b.optimizer = core::Bytes(shard_o);

    b.in_flight = in_flight_micro_batches(r, st);
    double act = b.in_flight * act_layers;
    if (last) {
      // Output layer: its input (2h/t) and FP32 logits for the cross-entropy (4V/t), Korthikanti
      // §4.3, for one micro-batch: the last stage starts a micro-batch's backward right after
      // its loss, so logits never pile up (MTP heads add theirs).
      act += T * (2 * h + 4 * d(m.vocab())) / tp * (1.0 + d(m.mtp_depth()));
      if (m.mtp_depth() > 0) act += b.in_flight * layer_activation_bytes(m, r, m.layers()).value() * d(m.mtp_depth());
    }
    b.activations = core::Bytes(act);
    const int64_t own_layers = std::max<int64_t>(1, dual ? b.layers / 2 : b.layers);
    b.activation_per_layer = core::Bytes(act_layers / d(own_layers));
    b.workspace = core::Bytes(r.recompute() == config::ParallelPlan::FULL ? max_layer_act : 0.0);

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
                                    "reduce it with more tp/pp/ep, a higher zero_stage or recompute");
}

}  // namespace tcsim::workloads
