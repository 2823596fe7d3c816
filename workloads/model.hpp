// Model presets, parameter counts and FLOPs of a transformer described by config::ModelSpec.
//
// Everything here is hardware independent: counts of parameters and floating-point
// operations per token. Presets are textproto files under workloads/presets/, embedded
// in the binary (the `tcsim` executable works from any directory).
//
// Conventions (stated once, used everywhere):
// - A layer i (0-based) is a MoE layer iff the model has routed experts, i >= first_k_dense,
//   and (i - first_k_dense + 1) % every_n == 0 (every_n 0 or 1 = every layer). every_n = 2
//   with first_k_dense = 0 makes layers 1, 3, 5, ... MoE, as HF Llama 4 Maverick
//   (interleave_moe_layer_step 2).
// - Experts have the dense FFN's gating (SwiGLU: 3 matrices; else 2); expert_hidden 0 means
//   the dense FFN's hidden size.
// - FLOPs count one multiply-add as 2 FLOP and only matmuls (norms, activations, softmax
//   and biases are left out), as Narayanan et al. (arXiv 2104.04473, appendix) and
//   Kaplan et al. do.
// - Attention core (QK^T and AV) is counted over the full s x s score matrix, without
//   halving for the causal mask: 2·s·heads·(d_qk + d_v) FLOP per token per layer
//   (= 4·s·h for plain MHA). That is the convention of the Megatron formula
//   F = 96·B·s·l·h²·(1 + s/(6h) + V/(16·l·h)) and of published MFU figures. The causal
//   work actually done by a flash-attention kernel is half of it: LayerFlops gives both.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "workloads/model.pb.h"

namespace tcsim::core {
class Overrides;
}

namespace tcsim::workloads {

/// Names of the model presets, sorted.
std::vector<std::string> model_names();
/// Names of the workload presets (model + plan), sorted.
std::vector<std::string> workload_names();

/// A model preset by name (case-insensitive) or a .textproto/.json file of a ModelSpec.
/// Throws InputError(where, ...) listing the preset names when neither exists, and
/// validates the spec (validate_model).
config::ModelSpec find_model(const std::string& name_or_path, const std::string& where);

/// A workload preset by name (case-insensitive, e.g. "moe-demo") or a file of a Workload.
config::Workload find_workload(const std::string& name_or_path, const std::string& where);

/// The model of a workload: its inline spec, or the preset it names.
config::ModelSpec workload_model(const config::Workload& w, const std::string& where);

/// Applies `--set` keys "model.<path>", "plan.<path>" and "seed" to a workload (a preset
/// model is first copied inline so it can be changed). Keys it does not know are left in
/// `o` for the caller's check_all_taken(). Re-validates the model.
void apply_workload_overrides(config::Workload& w, core::Overrides& o);
/// Every key apply_workload_overrides understands ("model.layers", "plan.tp", "seed", ...).
std::vector<std::string> workload_override_keys();

/// Checks a model spec for values that cannot describe a transformer (layers, hidden or
/// heads missing, top_k > experts, head count not dividing hidden, ...). Throws
/// InputError("<where>: model.<field>", ...).
void validate_model(const config::ModelSpec& m, const std::string& where);

/// True when layer i (0-based) has routed experts (see the convention above).
bool is_moe_layer(const config::ModelSpec& m, int64_t layer);
/// Number of MoE layers of the main model (MTP modules not included).
int64_t moe_layer_count(const config::ModelSpec& m);
/// Hidden size of one routed/shared expert.
int64_t expert_hidden(const config::ModelSpec& m);

/// Parameter counts. All values are numbers of parameters (not bytes).
struct ParamCounts {
  double total = 0;    ///< main model: embeddings, head, all layers, norms, vision encoder;
                       ///< without MTP modules (DeepSeek-V3's 671B excludes its 14B MTP)
  double active = 0;   ///< touched per text token: attention, dense FFN, top_k + shared experts,
                       ///< routers, embedding and head, norms; no vision encoder, no MTP
  double total_with_mtp = 0;  ///< total + mtp (what training holds in memory)
  double embedding = 0;       ///< input embedding (+ learned positions)
  double lm_head = 0;         ///< output projection (0 when tied to the embedding)
  double attention_per_layer = 0;    ///< projections (+ biases, + MLA norms)
  double norms_per_layer = 0;        ///< the two pre-norms of a layer
  double dense_ffn_per_layer = 0;    ///< dense FFN of a dense layer
  double expert = 0;                 ///< one routed expert
  double shared_experts_per_layer = 0;
  double router_per_layer = 0;
  double mtp = 0;                    ///< all MTP modules (embedding and head shared, not counted)
  double vision = 0;                 ///< vision encoder + projector
  int64_t dense_layers = 0;
  int64_t moe_layers = 0;
  /// Parameters of layer i (dense or MoE), all experts included.
  [[nodiscard]] double layer_total(const config::ModelSpec& m, int64_t layer) const;
};
ParamCounts count_params(const config::ModelSpec& m);

/// Forward FLOP per token of one transformer layer at sequence length seq_len.
/// Backward is 2x forward for every matmul (input and weight gradients).
struct LayerFlops {
  bool moe = false;
  double attention_proj = 0;         ///< Q, K, V (MLA: down/up projections) and output proj
  double attention_core = 0;         ///< QK^T + AV over the full s x s matrix (Megatron convention)
  double attention_core_causal = 0;  ///< what a causal flash-attention kernel computes: half
  double dense_ffn = 0;              ///< dense FFN (0 in a MoE layer)
  double expert_ffn = 0;             ///< ONE routed expert for ONE token it receives
  int64_t top_k = 0;                 ///< experts per token (0 in a dense layer)
  double routed_experts = 0;         ///< top_k * expert_ffn: routed expert work per token
  double shared_experts = 0;         ///< all shared experts of the layer, per token
  double router = 0;                 ///< gate logits: 2 * hidden * routed experts
  /// Everything per token at the full-matrix convention (what train FLOPs count).
  [[nodiscard]] double total() const {
    return attention_proj + attention_core + dense_ffn + routed_experts + shared_experts + router;
  }
};
/// layer: 0-based index in [0, layers); an index >= layers is an MTP module's layer
/// (MoE when the model has experts).
LayerFlops layer_flops(const config::ModelSpec& m, int64_t layer, int64_t seq_len);

/// Forward FLOP per token of the output projection (logits): 2 * hidden * vocab.
double lm_head_flops_per_token(const config::ModelSpec& m);
/// Forward FLOP per token of all MTP modules: per module its projection (2h -> h), one
/// transformer layer and the shared output head.
double mtp_flops_per_token(const config::ModelSpec& m, int64_t seq_len);
/// Tokens an image becomes in the LLM sequence: (image/patch)^2 * pixel_shuffle_ratio^2.
int64_t image_tokens(const config::ModelSpec& m);
/// Patches the vision encoder processes per image: (image/patch)^2.
int64_t image_patches(const config::ModelSpec& m);
/// Forward FLOP of the vision encoder and projector for one image (0 without vision).
double vision_flops_per_image(const config::ModelSpec& m);

/// Forward FLOP per (text) token of the whole model at seq_len (all layers, MTP, head).
double forward_flops_per_token(const config::ModelSpec& m, int64_t seq_len);
/// Model training FLOP per token: 3 x forward (forward + backward, no recompute), the
/// count behind MFU. For a GPT-style model this is 72·l·h²·(1 + s/(6h) + V/(12·l·h)) per
/// token: Narayanan et al.'s no-recompute count divided by B·s.
double train_flops_per_token(const config::ModelSpec& m, int64_t seq_len);
/// FLOP of one training iteration of `batch` sequences of seq_len as Narayanan et al.
/// (arXiv 2104.04473, eq. 3 and appendix) count them: with full recompute the transformer
/// layers run forward twice (4 passes: 96·B·s·l·h²·(1 + s/(6h) + V/(16·l·h))), without it
/// 3 passes (72·B·s·l·h²·(1 + s/(6h) + V/(12·l·h))). The head never runs twice.
double iteration_flops(const config::ModelSpec& m, int64_t batch, int64_t seq_len, bool full_recompute);

namespace detail {
/// One embedded preset file (defined by the generated presets index).
struct PresetText {
  const char* name;
  const char* file;  ///< path in the source tree, for error messages
  std::string_view text;
};
const std::vector<PresetText>& model_preset_texts();
const std::vector<PresetText>& workload_preset_texts();
}  // namespace detail

}  // namespace tcsim::workloads
