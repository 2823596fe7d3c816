#include "workloads/model.hpp"

#include <algorithm>
#include <cctype>
#include <filesystem>

#include "core/error.hpp"
#include "core/overrides.hpp"
#include "core/proto_util.hpp"

namespace tcsim::workloads {

using core::InputError;

namespace {

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

std::string join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ", ") + s;
  return out;
}

bool looks_like_path(const std::string& s) {
  return s.find('/') != std::string::npos || s.ends_with(".textproto") || s.ends_with(".json") ||
         s.ends_with(".txtpb") || s.ends_with(".pbtxt");
}

const detail::PresetText* find_text(const std::vector<detail::PresetText>& v, const std::string& name) {
  std::string l = lower(name);
  for (const auto& p : v) {
    if (l == p.name) return &p;
  }
  return nullptr;
}

std::vector<std::string> names_of(const std::vector<detail::PresetText>& v) {
  std::vector<std::string> out;
  for (const auto& p : v) out.emplace_back(p.name);
  std::sort(out.begin(), out.end());
  return out;
}

config::Workload parse_workload_preset(const detail::PresetText& p) {
  config::Workload w;
  core::parse_textproto(std::string(p.text), p.file, w);
  return w;
}

double d(int64_t v) { return static_cast<double>(v); }

int64_t head_dim(const config::ModelSpec& m) {
  const auto& a = m.attention();
  return a.head_dim() > 0 ? a.head_dim() : m.hidden() / std::max<int64_t>(1, a.heads());
}
int64_t kv_heads(const config::ModelSpec& m) {
  const auto& a = m.attention();
  return a.kv_heads() > 0 ? a.kv_heads() : a.heads();
}

/// Matmul weights of the attention block (no biases, no norms).
double attention_matmul_params(const config::ModelSpec& m) {
  const auto& a = m.attention();
  const double h = d(m.hidden()), heads = d(a.heads());
  if (a.kind() == config::Attention::MLA) {
    const double dqk = d(a.qk_nope_head_dim() + a.qk_rope_head_dim());
    const double q = a.q_lora_rank() > 0 ? h * d(a.q_lora_rank()) + d(a.q_lora_rank()) * heads * dqk : h * heads * dqk;
    const double kv_a = h * d(a.kv_lora_rank() + a.qk_rope_head_dim());
    const double kv_b = d(a.kv_lora_rank()) * heads * d(a.qk_nope_head_dim() + a.v_head_dim());
    const double o = heads * d(a.v_head_dim()) * h;
    return q + kv_a + kv_b + o;
  }
  const double hd = d(head_dim(m)), kv = d(kv_heads(m));
  return h * heads * hd * 2 + h * kv * hd * 2;
}

/// Non-matmul attention parameters: biases (GPT style) and MLA's latent norms.
double attention_other_params(const config::ModelSpec& m) {
  const auto& a = m.attention();
  double p = 0;
  if (a.kind() == config::Attention::MLA) {
    p += d(a.q_lora_rank()) + d(a.kv_lora_rank());
  } else if (m.linear_bias()) {
    p += d((a.heads() + 2 * kv_heads(m)) * head_dim(m) + m.hidden());
  }
  return p;
}

double ffn_matmul_params(const config::ModelSpec& m, int64_t inner) {
  return d(m.hidden()) * d(inner) * (m.ffn().gated() ? 3.0 : 2.0);
}
double ffn_bias_params(const config::ModelSpec& m, int64_t inner) {
  if (!m.linear_bias()) return 0;
  return d(inner) * (m.ffn().gated() ? 2.0 : 1.0) + d(m.hidden());
}

double norm_params(const config::ModelSpec& m, int64_t width) { return d(width) * (m.linear_bias() ? 2.0 : 1.0); }

bool has_moe(const config::ModelSpec& m) { return m.has_moe() && m.moe().routed_experts() > 0; }
bool has_vision(const config::ModelSpec& m) { return m.has_vision() && m.vision().layers() > 0; }

struct VisionShape {
  double d = 0, f = 0, n = 0, proj_in = 0, proj_hidden = 0, proj_out = 0, llm_hidden = 0, tokens = 0, patch_in = 0;
};
VisionShape vision_shape(const config::ModelSpec& m) {
  const auto& v = m.vision();
  VisionShape s;
  s.d = d(v.hidden());
  s.f = v.ffn_hidden() > 0 ? d(v.ffn_hidden()) : 4 * s.d;
  s.n = d(image_patches(m));
  const double r = v.pixel_shuffle_ratio() > 0 ? v.pixel_shuffle_ratio() : 1.0;
  s.proj_in = s.d / (r * r);
  s.proj_hidden = d(v.projector_hidden());
  s.proj_out = v.output_dim() > 0 ? d(v.output_dim()) : d(m.hidden());
  s.llm_hidden = d(m.hidden());
  s.tokens = d(image_tokens(m));
  s.patch_in = 3.0 * d(v.patch_size()) * d(v.patch_size());
  return s;
}
/// Matmul parameters of the projector (pixel-shuffled features -> LLM hidden).
double projector_matmul_params(const VisionShape& s) {
  double p = s.proj_hidden > 0 ? s.proj_in * s.proj_hidden + s.proj_hidden * s.proj_out : s.proj_in * s.proj_out;
  if (s.proj_out != s.llm_hidden) p += s.proj_out * s.llm_hidden;
  return p;
}

}  // namespace

// ---------------------------------------------------------------------------------------
// Presets

std::vector<std::string> model_names() { return names_of(detail::model_preset_texts()); }
std::vector<std::string> workload_names() { return names_of(detail::workload_preset_texts()); }

config::ModelSpec find_model(const std::string& name_or_path, const std::string& where) {
  config::ModelSpec m;
  if (const auto* p = find_text(detail::model_preset_texts(), name_or_path)) {
    core::parse_textproto(std::string(p->text), p->file, m);
    validate_model(m, std::string("model ") + p->name);
    return m;
  }
  if (const auto* p = find_text(detail::workload_preset_texts(), name_or_path)) {
    config::Workload w = parse_workload_preset(*p);
    return workload_model(w, std::string("workload ") + p->name);
  }
  if (looks_like_path(name_or_path) || std::filesystem::exists(name_or_path)) {
    core::load_config_file(name_or_path, m);
    if (m.name().empty()) m.set_name(std::filesystem::path(name_or_path).stem().string());
    validate_model(m, name_or_path);
    return m;
  }
  throw InputError(where, "unknown model '" + name_or_path + "'; presets: " + join(model_names()) +
                              " (or a workload preset: " + join(workload_names()) +
                              "), or a .textproto/.json file of a ModelSpec");
}

config::Workload find_workload(const std::string& name_or_path, const std::string& where) {
  config::Workload w;
  if (const auto* p = find_text(detail::workload_preset_texts(), name_or_path)) {
    w = parse_workload_preset(*p);
  } else if (looks_like_path(name_or_path) || std::filesystem::exists(name_or_path)) {
    core::load_config_file(name_or_path, w);
    if (w.name().empty()) w.set_name(std::filesystem::path(name_or_path).stem().string());
  } else if (find_text(detail::model_preset_texts(), name_or_path) != nullptr) {
    // A model preset alone is a workload with the default plan (data parallel, one
    // micro-batch per replica); `--set plan.*` makes it the plan you want.
    w.set_name(name_or_path);
    w.set_model_preset(name_or_path);
  } else {
    throw InputError(where, "unknown workload '" + name_or_path + "'; workload presets: " + join(workload_names()) +
                                "; model presets (with the default plan): " + join(model_names()) +
                                "; or a .textproto/.json file of a Workload");
  }
  (void)workload_model(w, where.empty() ? "workload " + w.name() : where);  // validates the model
  return w;
}

config::ModelSpec workload_model(const config::Workload& w, const std::string& where) {
  if (w.has_model()) {
    validate_model(w.model(), where);
    return w.model();
  }
  if (w.model_preset().empty()) throw InputError(where, "the workload names no model: set model_preset or model");
  return find_model(w.model_preset(), where + ": model_preset");
}

std::vector<std::string> workload_override_keys() {
  std::vector<std::string> out;
  for (const auto& p : core::settable_paths(config::ModelSpec::descriptor())) out.push_back("model." + p);
  for (const auto& p : core::settable_paths(config::ParallelPlan::descriptor())) out.push_back("plan." + p);
  out.emplace_back("seed");
  return out;
}

void apply_workload_overrides(config::Workload& w, core::Overrides& o) {
  auto model_keys = o.keys_with_prefix("model.");
  if (!model_keys.empty() && !w.has_model()) {
    config::ModelSpec m = workload_model(w, "workload " + w.name());
    *w.mutable_model() = m;  // switches the oneof from model_preset to an inline copy
  }
  for (const auto& k : model_keys) {
    core::set_field_by_path(*w.mutable_model(), k.substr(6), *o.take(k), o.where(k));
  }
  for (const auto& k : o.keys_with_prefix("plan.")) {
    core::set_field_by_path(*w.mutable_plan(), k.substr(5), *o.take(k), o.where(k));
  }
  if (auto s = o.peek("seed")) {
    core::set_field_by_path(w, "seed", *o.take("seed"), o.where("seed"));
  }
  if (!model_keys.empty()) validate_model(w.model(), "--set model");
}

void validate_model(const config::ModelSpec& m, const std::string& where) {
  auto bad = [&](const std::string& field, const std::string& what) {
    return InputError(where.empty() ? "model." + field : where + ": model." + field, what);
  };
  auto positive = [&](const std::string& field, int64_t v) {
    if (v <= 0) throw bad(field, "must be a positive whole number, got " + std::to_string(v));
  };
  positive("layers", m.layers());
  positive("hidden", m.hidden());
  positive("vocab", m.vocab());
  if (m.seq_len() < 0) throw bad("seq_len", "must be >= 0 (0 = set by the plan), got " + std::to_string(m.seq_len()));
  const auto& a = m.attention();
  positive("attention.heads", a.heads());
  if (a.kind() == config::Attention::MLA) {
    positive("attention.kv_lora_rank", a.kv_lora_rank());
    positive("attention.qk_nope_head_dim", a.qk_nope_head_dim());
    positive("attention.v_head_dim", a.v_head_dim());
    if (a.qk_rope_head_dim() < 0) throw bad("attention.qk_rope_head_dim", "must be >= 0");
  } else {
    if (a.head_dim() == 0 && m.hidden() % a.heads() != 0) {
      throw bad("attention.heads", std::to_string(a.heads()) + " does not divide hidden " + std::to_string(m.hidden()) +
                                       "; set attention.head_dim or choose heads dividing hidden");
    }
    if (a.kv_heads() < 0 || a.kv_heads() > a.heads() || (a.kv_heads() > 0 && a.heads() % a.kv_heads() != 0)) {
      throw bad("attention.kv_heads", std::to_string(a.kv_heads()) + " must divide heads " + std::to_string(a.heads()) +
                                          " (0 = heads, plain multi-head attention)");
    }
  }
  const bool moe = has_moe(m);
  if (moe) {
    const auto& e = m.moe();
    if (e.top_k() < 1 || e.top_k() > e.routed_experts()) {
      throw bad("moe.top_k", std::to_string(e.top_k()) + " must be in [1, routed_experts=" +
                                 std::to_string(e.routed_experts()) + "]");
    }
    if (e.shared_experts() < 0) throw bad("moe.shared_experts", "must be >= 0");
    if (e.first_k_dense() < 0 || e.first_k_dense() > m.layers()) {
      throw bad("moe.first_k_dense", std::to_string(e.first_k_dense()) + " must be in [0, layers=" +
                                         std::to_string(m.layers()) + "]");
    }
    if (e.every_n() < 0) throw bad("moe.every_n", "must be >= 0 (0 or 1 = every layer)");
    if (e.max_nodes_per_token() < 0) throw bad("moe.max_nodes_per_token", "must be >= 0 (0 = unlimited)");
    if (expert_hidden(m) <= 0) throw bad("moe.expert_hidden", "must be positive (or set ffn.hidden)");
  } else if (m.has_moe() && (m.moe().top_k() != 0 || m.moe().shared_experts() != 0)) {
    throw bad("moe.routed_experts", "must be positive when moe.top_k or moe.shared_experts is set");
  }
  if (moe_layer_count(m) < m.layers()) positive("ffn.hidden", m.ffn().hidden());
  if (m.mtp_depth() < 0) throw bad("mtp_depth", "must be >= 0");
  if (has_vision(m)) {
    const auto& v = m.vision();
    positive("vision.hidden", v.hidden());
    positive("vision.heads", v.heads());
    positive("vision.patch_size", v.patch_size());
    positive("vision.image_size", v.image_size());
    if (v.hidden() % v.heads() != 0) {
      throw bad("vision.heads", std::to_string(v.heads()) + " does not divide vision.hidden " + std::to_string(v.hidden()));
    }
    if (v.image_size() % v.patch_size() != 0) {
      throw bad("vision.patch_size", std::to_string(v.patch_size()) + " does not divide vision.image_size " +
                                         std::to_string(v.image_size()));
    }
    if (v.pixel_shuffle_ratio() < 0 || v.pixel_shuffle_ratio() > 1) {
      throw bad("vision.pixel_shuffle_ratio", "must be in (0, 1] (0 = none)");
    }
    if (v.fusion() == config::VisionEncoder::CROSS_ATTENTION && v.cross_attention_every() <= 0) {
      throw bad("vision.cross_attention_every", "must be positive with fusion CROSS_ATTENTION");
    }
  }
}

// ---------------------------------------------------------------------------------------
// Structure

bool is_moe_layer(const config::ModelSpec& m, int64_t layer) {
  if (!has_moe(m)) return false;
  if (layer >= m.layers()) return true;  // MTP modules follow the last (MoE) layer
  const auto& e = m.moe();
  if (layer < e.first_k_dense()) return false;
  const int64_t n = std::max<int64_t>(1, e.every_n());
  return (layer - e.first_k_dense() + 1) % n == 0;
}

int64_t moe_layer_count(const config::ModelSpec& m) {
  int64_t c = 0;
  for (int64_t i = 0; i < m.layers(); ++i) c += is_moe_layer(m, i) ? 1 : 0;
  return c;
}

int64_t expert_hidden(const config::ModelSpec& m) {
  return m.moe().expert_hidden() > 0 ? m.moe().expert_hidden() : m.ffn().hidden();
}

int64_t image_patches(const config::ModelSpec& m) {
  if (!has_vision(m)) return 0;
  const int64_t side = m.vision().image_size() / m.vision().patch_size();
  return side * side;
}

int64_t image_tokens(const config::ModelSpec& m) {
  if (!has_vision(m)) return 0;
  const double r = m.vision().pixel_shuffle_ratio() > 0 ? m.vision().pixel_shuffle_ratio() : 1.0;
  return static_cast<int64_t>(static_cast<double>(image_patches(m)) * r * r + 0.5);
}

// ---------------------------------------------------------------------------------------
// Parameters

double ParamCounts::layer_total(const config::ModelSpec& m, int64_t layer) const {
  double p = attention_per_layer + norms_per_layer;
  if (is_moe_layer(m, layer)) {
    p += expert * d(m.moe().routed_experts()) + shared_experts_per_layer + router_per_layer;
  } else {
    p += dense_ffn_per_layer;
  }
  return p;
}

ParamCounts count_params(const config::ModelSpec& m) {
  ParamCounts c;
  const double h = d(m.hidden());
  c.embedding = d(m.vocab()) * h + (m.learned_position_embeddings() ? d(m.seq_len()) * h : 0.0);
  c.lm_head = m.tied_embeddings() ? 0.0 : d(m.vocab()) * h;
  c.attention_per_layer = attention_matmul_params(m) + attention_other_params(m);
  c.norms_per_layer = 2 * norm_params(m, m.hidden());
  c.dense_ffn_per_layer = ffn_matmul_params(m, m.ffn().hidden()) + ffn_bias_params(m, m.ffn().hidden());
  c.moe_layers = moe_layer_count(m);
  c.dense_layers = m.layers() - c.moe_layers;
  double moe_layer = 0, moe_layer_active = 0;
  if (has_moe(m)) {
    const int64_t f = expert_hidden(m);
    c.expert = ffn_matmul_params(m, f) + ffn_bias_params(m, f);
    c.shared_experts_per_layer = d(m.moe().shared_experts()) * c.expert;
    c.router_per_layer = h * d(m.moe().routed_experts());
    moe_layer = c.expert * d(m.moe().routed_experts()) + c.shared_experts_per_layer + c.router_per_layer;
    moe_layer_active = c.expert * d(m.moe().top_k()) + c.shared_experts_per_layer + c.router_per_layer;
  }
  const double per_layer_common = c.attention_per_layer + c.norms_per_layer;
  const double final_norm = norm_params(m, m.hidden());
  if (m.mtp_depth() > 0) {
    const double ffn = has_moe(m) ? moe_layer : c.dense_ffn_per_layer;
    // DeepSeek-V3 MTP module: RMSNorm of hidden and of embedding (2h), projection 2h -> h,
    // one transformer layer, final norm; embedding and output head shared with the main model.
    c.mtp = d(m.mtp_depth()) * (2 * h + 2 * h * h + per_layer_common + ffn + final_norm);
  }
  if (has_vision(m)) {
    const VisionShape s = vision_shape(m);
    // ViTs (CLIP, MetaCLIP) have biases and two LayerNorms (weight + bias) per layer.
    const double layer = 4 * s.d * s.d + 2 * s.d * s.f + (4 * s.d + s.f + s.d) + 2 * (2 * s.d);
    c.vision = d(m.vision().layers()) * layer + s.patch_in * s.d + (s.n + 1) * s.d + 2 * (2 * s.d) +
               projector_matmul_params(s);
  }
  c.total = c.embedding + c.lm_head + final_norm + d(m.layers()) * per_layer_common +
            d(c.dense_layers) * c.dense_ffn_per_layer + d(c.moe_layers) * moe_layer + c.vision;
  c.active = c.embedding + c.lm_head + final_norm + d(m.layers()) * per_layer_common +
             d(c.dense_layers) * c.dense_ffn_per_layer + d(c.moe_layers) * moe_layer_active;
  c.total_with_mtp = c.total + c.mtp;
  return c;
}

// ---------------------------------------------------------------------------------------
// FLOPs

LayerFlops layer_flops(const config::ModelSpec& m, int64_t layer, int64_t seq_len) {
  LayerFlops f;
  const auto& a = m.attention();
  const double s = d(seq_len), heads = d(a.heads());
  f.attention_proj = 2 * attention_matmul_params(m);
  double dqk = 0, dv = 0;
  if (a.kind() == config::Attention::MLA) {
    dqk = d(a.qk_nope_head_dim() + a.qk_rope_head_dim());
    dv = d(a.v_head_dim());
  } else {
    dqk = dv = d(head_dim(m));
  }
  // QK^T: 2·s·heads·d_qk per token; AV: 2·s·heads·d_v per token (full s x s matrix).
  f.attention_core = 2 * s * heads * (dqk + dv);
  f.attention_core_causal = f.attention_core / 2;
  f.moe = is_moe_layer(m, layer);
  if (f.moe) {
    f.expert_ffn = 2 * ffn_matmul_params(m, expert_hidden(m));
    f.top_k = m.moe().top_k();
    f.routed_experts = d(f.top_k) * f.expert_ffn;
    f.shared_experts = d(m.moe().shared_experts()) * f.expert_ffn;
    f.router = 2 * d(m.hidden()) * d(m.moe().routed_experts());
  } else {
    f.dense_ffn = 2 * ffn_matmul_params(m, m.ffn().hidden());
  }
  return f;
}

double lm_head_flops_per_token(const config::ModelSpec& m) { return 2 * d(m.hidden()) * d(m.vocab()); }

double mtp_flops_per_token(const config::ModelSpec& m, int64_t seq_len) {
  if (m.mtp_depth() <= 0) return 0;
  const double h = d(m.hidden());
  const double module = 2 * (2 * h * h) + layer_flops(m, m.layers(), seq_len).total() + lm_head_flops_per_token(m);
  return d(m.mtp_depth()) * module;
}

double vision_flops_per_image(const config::ModelSpec& m) {
  if (!has_vision(m)) return 0;
  const VisionShape s = vision_shape(m);
  // Per ViT layer and patch: 2 x (4d² + 2·d·f) matmul FLOP; bidirectional attention core
  // 4·n·d per patch (full matrix, nothing causal to skip).
  const double layer = s.n * (2 * (4 * s.d * s.d + 2 * s.d * s.f) + 4 * s.n * s.d);
  return d(m.vision().layers()) * layer + 2 * s.patch_in * s.d * s.n + 2 * projector_matmul_params(s) * s.tokens;
}

double forward_flops_per_token(const config::ModelSpec& m, int64_t seq_len) {
  double f = lm_head_flops_per_token(m) + mtp_flops_per_token(m, seq_len);
  for (int64_t i = 0; i < m.layers(); ++i) f += layer_flops(m, i, seq_len).total();
  return f;
}

double train_flops_per_token(const config::ModelSpec& m, int64_t seq_len) {
  return 3 * forward_flops_per_token(m, seq_len);
}

double iteration_flops(const config::ModelSpec& m, int64_t batch, int64_t seq_len, bool full_recompute) {
  double layers = 0;
  for (int64_t i = 0; i < m.layers(); ++i) layers += layer_flops(m, i, seq_len).total();
  const double head = lm_head_flops_per_token(m) + mtp_flops_per_token(m, seq_len);
  const double passes = full_recompute ? 4.0 : 3.0;
  return d(batch) * d(seq_len) * (passes * layers + 3 * head);
}

}  // namespace tcsim::workloads
