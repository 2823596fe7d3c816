// Parameter and FLOPs counts of the model presets against published figures.
#include <cmath>
#include <string>

#include <gtest/gtest.h>

#include "core/error.hpp"
#include "workloads/model.hpp"

namespace tcsim::workloads {
namespace {

double rel(double got, double want) { return std::abs(got - want) / want; }

struct Published {
  const char* name;
  double total, active, tol;
  const char* source;
};

// Published totals/active, 2% tolerance (issue 4). Sources in each preset file:
// DeepSeek-V3 671B/37B (arXiv 2412.19437 §1, MTP excluded), DeepSeek-V2 236B/21B (arXiv
// 2405.04434), Mixtral 8x7B 46.7B/12.9B (arXiv 2401.04088), Llama 3 405B (arXiv 2407.21783),
// Llama 4 Scout 109B/17B and Maverick 400B/17B (llama-models MODEL_CARD), Qwen3-235B-A22B
// (arXiv 2505.09388), Llama 3 8B/70B (HF model cards), GPT-3 175B (arXiv 2005.14165),
// LLaVA-1.5-7B-shaped VLM 7.06B (arXiv 2310.03744).
const Published kPublished[] = {
    {"deepseek-v3", 671e9, 37e9, 0.02, "arXiv 2412.19437"},
    {"deepseek-v2", 236e9, 21e9, 0.02, "arXiv 2405.04434"},
    {"mixtral-8x7b", 46.7e9, 12.9e9, 0.02, "arXiv 2401.04088"},
    {"llama3-405b", 405e9, 405e9, 0.02, "arXiv 2407.21783"},
    {"llama4-scout", 109e9, 17e9, 0.02, "llama-models MODEL_CARD"},
    {"llama4-maverick", 400e9, 17e9, 0.02, "llama-models MODEL_CARD"},
    {"qwen3-235b-a22b", 235e9, 22e9, 0.02, "arXiv 2505.09388"},
    {"llama3-8b", 8.03e9, 8.03e9, 0.02, "HF meta-llama/Meta-Llama-3-8B"},
    {"llama3-70b", 70.6e9, 70.6e9, 0.02, "HF meta-llama/Meta-Llama-3-70B"},
    {"gpt3-175b", 175e9, 175e9, 0.02, "arXiv 2005.14165"},
    {"vlm-generic", 7.06e9, 6.74e9, 0.02, "arXiv 2310.03744"},
};

TEST(ModelPresets, ParamsMatchPublishedWithinTwoPercent) {
  for (const auto& p : kPublished) {
    SCOPED_TRACE(p.name);
    const auto m = find_model(p.name, "test");
    const auto c = count_params(m);
    EXPECT_LT(rel(c.total, p.total), p.tol) << "total " << c.total / 1e9 << "B vs " << p.total / 1e9 << "B (" << p.source << ")";
    EXPECT_LT(rel(c.active, p.active), p.tol) << "active " << c.active / 1e9 << "B vs " << p.active / 1e9 << "B";
    EXPECT_NEAR(m.published_params_total(), p.total, p.total * 0.02);
  }
}

}  // namespace
}  // namespace tcsim::workloads

namespace tcsim::workloads {
namespace {

struct MegatronRow {
  const char* name;
  double params_b;
  int64_t layers, hidden, heads, batch;
};
// Narayanan et al., SC'21, arXiv 2104.04473, Table 1 (validation-dev.md): s = 2048, V = 51200.
const MegatronRow kMegatron[] = {
    {"megatron-1.7b", 1.7, 24, 2304, 24, 512},        {"megatron-3.6b", 3.6, 30, 3072, 32, 512},
    {"megatron-7.5b", 7.5, 36, 4096, 32, 512},        {"megatron-18.4b", 18.4, 40, 6144, 48, 1024},
    {"megatron-39.1b", 39.1, 48, 8192, 64, 1536},     {"megatron-76.1b", 76.1, 60, 10240, 80, 1792},
    {"megatron-145.6b", 145.6, 80, 12288, 96, 2304},  {"megatron-310.1b", 310.1, 96, 16384, 128, 2160},
    {"megatron-529.6b", 529.6, 105, 20480, 128, 2520}, {"megatron-1t", 1008.0, 128, 25600, 160, 3072},
};

TEST(MegatronFlops, IterationFlopsReproduceNarayananFormulaExactly) {
  // F = 96·B·s·l·h²·(1 + s/(6h) + V/(16·l·h)) with recompute (4 passes, eq. 3 of the
  // appendix), and 72·B·s·l·h²·(1 + s/(6h) + V/(12·l·h)) without.
  const double s = 2048, V = 51200;
  for (const auto& r : kMegatron) {
    SCOPED_TRACE(r.name);
    const auto m = find_model(r.name, "test");
    ASSERT_EQ(m.layers(), r.layers);
    ASSERT_EQ(m.hidden(), r.hidden);
    ASSERT_EQ(m.attention().heads(), r.heads);
    const double l = static_cast<double>(r.layers), h = static_cast<double>(r.hidden), B = static_cast<double>(r.batch);
    const double with = 96 * B * s * l * h * h * (1 + s / (6 * h) + V / (16 * l * h));
    const double without = 72 * B * s * l * h * h * (1 + s / (6 * h) + V / (12 * l * h));
    EXPECT_NEAR(iteration_flops(m, r.batch, 2048, true) / with, 1.0, 1e-12);
    EXPECT_NEAR(iteration_flops(m, r.batch, 2048, false) / without, 1.0, 1e-12);
    EXPECT_NEAR(train_flops_per_token(m, 2048) * B * s / without, 1.0, 1e-12);
  }
}

TEST(MegatronParams, MatchPaperFormulaAndTable) {
  // The paper's count P = 12·l·h²·(1 + 13/(12h) + (V + s)/(12·l·h)); tcsim also counts the
  // final LayerNorm (2h). Table 1 rounds: its 1.7B row is 1.65B by the paper's own formula,
  // so the table check allows 3%.
  const double s = 2048, V = 51200;
  for (const auto& r : kMegatron) {
    SCOPED_TRACE(r.name);
    const auto c = count_params(find_model(r.name, "test"));
    const double l = static_cast<double>(r.layers), h = static_cast<double>(r.hidden);
    const double P = 12 * l * h * h * (1 + 13 / (12 * h) + (V + s) / (12 * l * h));
    EXPECT_NEAR(c.total, P + 2 * h, 1.0);
    EXPECT_LT(rel(c.total, r.params_b * 1e9), 0.03);
  }
}

TEST(ModelFlops, TrainFlopsAreThreeTimesForwardAndAboutSixN) {
  // Kaplan et al. (arXiv 2001.08361): C ≈ 6·N per token plus attention. For Llama 3 405B at
  // s = 8192: 6·N_nonembed + 6·(2·V·h head) + 3·l·4·s·h·... within 20% of 6·N overall.
  const auto m = find_model("llama3-405b", "test");
  const auto c = count_params(m);
  const double f = train_flops_per_token(m, 8192);
  EXPECT_DOUBLE_EQ(f, 3 * forward_flops_per_token(m, 8192));
  EXPECT_GT(f, 6 * (c.total - c.embedding));
  EXPECT_LT(f / (6 * c.total), 1.2);
}

TEST(LayerFlops, DeepSeekV3DenseAndMoeLayers) {
  const auto m = find_model("deepseek-v3", "test");
  const auto c = count_params(m);
  const auto dense = layer_flops(m, 0, 4096);
  const auto moe = layer_flops(m, 3, 4096);
  EXPECT_FALSE(dense.moe);
  EXPECT_TRUE(moe.moe);
  EXPECT_EQ(moe.top_k, 8);
  // Expert FFN: 2 FLOP per weight, 3 matrices of 7168 x 2048.
  EXPECT_DOUBLE_EQ(moe.expert_ffn, 2.0 * 3 * 7168 * 2048);
  EXPECT_DOUBLE_EQ(moe.expert_ffn, 2 * c.expert);
  EXPECT_DOUBLE_EQ(dense.dense_ffn, 2.0 * 3 * 7168 * 18432);
  // MLA core: 2·s·heads·(192 + 128); causal half.
  EXPECT_DOUBLE_EQ(moe.attention_core, 2.0 * 4096 * 128 * (192 + 128));
  EXPECT_DOUBLE_EQ(moe.attention_core_causal, moe.attention_core / 2);
  EXPECT_DOUBLE_EQ(moe.router, 2.0 * 7168 * 256);
  EXPECT_EQ(moe_layer_count(m), 58);
  EXPECT_GT(mtp_flops_per_token(m, 4096), 0);
}

TEST(ModelStructure, MaverickInterleavesMoeOnOddLayers) {
  // HF Llama 4: moe_layers = range(step - 1, layers, step) with interleave_moe_layer_step 2.
  const auto m = find_model("llama4-maverick", "test");
  EXPECT_FALSE(is_moe_layer(m, 0));
  EXPECT_TRUE(is_moe_layer(m, 1));
  EXPECT_EQ(moe_layer_count(m), 24);
  EXPECT_EQ(moe_layer_count(find_model("llama4-scout", "test")), 48);
  // 336 px / patch 14 = 24 x 24 = 576 patches; pixel shuffle 0.5 -> 144 tokens per image.
  EXPECT_EQ(image_patches(m), 576);
  EXPECT_EQ(image_tokens(m), 144);
  EXPECT_GT(vision_flops_per_image(m), 0);
}

TEST(ModelPresets, LookupByNameCaseInsensitiveAndWorkloads) {
  EXPECT_EQ(find_model("DeepSeek-V3", "test").name(), "deepseek-v3");
  const auto names = model_names();
  EXPECT_GE(names.size(), 21u);
  const auto w = find_workload("moe-demo", "test");
  const auto m = workload_model(w, "test");
  EXPECT_EQ(m.moe().routed_experts(), 64);
  EXPECT_EQ(w.plan().ep(), 8);
  EXPECT_EQ(find_model("moe-demo", "test").layers(), 4);  // a workload's model by name
  EXPECT_EQ(workload_model(find_workload("dense-demo", "test"), "test").moe().routed_experts(), 0);
}

TEST(ModelPresets, UnknownPresetListsNames) {
  try {
    find_model("deepseek-v4", "--model");
    FAIL() << "expected InputError";
  } catch (const core::InputError& e) {
    EXPECT_EQ(e.where(), "--model");
    EXPECT_NE(e.problem().find("deepseek-v3"), std::string::npos);
    EXPECT_NE(e.problem().find("deepseek-v4"), std::string::npos);
  }
  EXPECT_THROW(find_workload("no-such-workload", "--workload"), core::InputError);
  EXPECT_THROW(find_model("/nonexistent/model.textproto", "--model"), core::InputError);
}

TEST(ModelValidation, RejectsImpossibleSpecsNamingTheField) {
  auto m = find_model("mixtral-8x7b", "test");
  m.mutable_moe()->set_top_k(9);
  try {
    validate_model(m, "model mixtral-8x7b");
    FAIL();
  } catch (const core::InputError& e) {
    EXPECT_EQ(e.where(), "model mixtral-8x7b: model.moe.top_k");
    EXPECT_NE(e.problem().find("routed_experts=8"), std::string::npos);
  }
  auto g = find_model("llama3-8b", "test");
  g.mutable_attention()->set_kv_heads(5);
  EXPECT_THROW(validate_model(g, "x"), core::InputError);
}

}  // namespace
}  // namespace tcsim::workloads
