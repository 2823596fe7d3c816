// Program generation: TP/SP, PP with every schedule, CP, ZeRO, routing skew, node-limited
// routing, multimodal data, folding, and every model preset with a small valid plan.
#include <map>
#include <numeric>
#include <set>
#include <string>

#include <gtest/gtest.h>

#include "core/error.hpp"
#include "sim/simulate.hpp"
#include "tests/sim/sim_test_util.hpp"
#include "workloads/enumerate.hpp"
#include "workloads/generator.hpp"
#include "workloads/model.hpp"
#include "workloads/plan.hpp"
#include "workloads/routing.hpp"

namespace tcsim::workloads {
namespace {

config::Workload workload(const std::string& model, int64_t tp, int64_t pp, int64_t ep, const std::string& schedule = "1f1b",
                          int64_t mbs = 0) {
  config::Workload w;
  w.set_name("test");
  w.set_model_preset(model);
  auto* p = w.mutable_plan();
  p->set_tp(tp);
  p->set_pp(pp);
  p->set_ep(ep);
  p->set_schedule(schedule);
  p->set_uneven_stages(true);
  if (mbs > 0) p->set_num_micro_batches(mbs);
  w.set_seed(7);
  return w;
}

std::map<CommCategory, int> count_by_category(const Program& p, size_t lane) {
  std::map<CommCategory, int> c;
  for (const auto& op : p.lanes[lane].ops)
    if (op.kind != OpKind::Compute) c[op.category]++;
  return c;
}

double flops_of(const Program& p) {
  double f = 0;
  for (const auto& l : p.lanes)
    for (const auto& op : l.ops)
      if (op.kind == OpKind::Compute) f += op.compute.flops * static_cast<double>(l.ranks.size());
  return f;
}

TEST(Generator, PipelineFoldsToOneLanePerStageWithNeighbourRanksAligned) {
  // llama3-70b (80 layers) TP8 PP4 on 64 GPUs: dp = 2, one lane per stage.
  auto w = workload("llama3-70b", 8, 4, 1, "1f1b", 8);
  Program p = generate(w, 64);
  ASSERT_EQ(p.lanes.size(), 4u);
  auto plan = resolve_plan(find_model("llama3-70b", "t"), w.plan(), 64);
  RankLayout layout(plan);
  for (size_t s = 0; s + 1 < p.lanes.size(); ++s) {
    ASSERT_EQ(p.lanes[s].ranks.size(), 16u);
    for (size_t k = 0; k < p.lanes[s].ranks.size(); ++k) {
      auto a = layout.coord(p.lanes[s].ranks[k]), b = layout.coord(p.lanes[s + 1].ranks[k]);
      EXPECT_EQ(a.pp + 1, b.pp);
      EXPECT_EQ(a.tp, b.tp);
      EXPECT_EQ(a.dp, b.dp);
    }
  }
  // Small: ops per lane ~ micro-batches x layers per stage x a few.
  EXPECT_LT(p.lanes[1].ops.size(), 8u * 20 * 2 * 12);
  // Sends and receives: stage 1 receives 8 activations and 8 gradients.
  int sends = 0, recvs = 0;
  for (const auto& op : p.lanes[1].ops) sends += op.kind == OpKind::Send, recvs += op.kind == OpKind::Recv;
  EXPECT_EQ(sends, 16);
  EXPECT_EQ(recvs, 16);
}

TEST(Generator, TensorParallelUsesAllReducesOrSequenceParallelGatherScatter) {
  // Per layer: without SP 2 all-reduces forward + 2 backward; with SP 2 all-gathers + 2
  // reduce-scatters forward, the same backward plus 2 re-gathers of the linears' inputs.
  // Per micro-batch also: embedding output all-reduce (SP: reduce-scatter forward,
  // all-gather backward), head input gradient all-reduce (SP: all-gather forward,
  // reduce-scatter + re-gather backward), one cross-entropy all-reduce.
  // dense-demo: 8 layers, 4 micro-batches, TP2 (tests/workloads/comm_volume_test.cpp
  // counts the bytes).
  auto w = workload("dense-demo", 2, 1, 1);
  w.mutable_plan()->set_num_micro_batches(4);
  Program p = generate(w, 8);
  auto c = count_by_category(p, 0);
  EXPECT_EQ(c[CommCategory::TpAllReduce], 4 * (8 * 4 + 3));
  EXPECT_EQ(c[CommCategory::TpAllGather], 0);
  w.mutable_plan()->set_sp(true);
  Program q = generate(w, 8);
  auto cq = count_by_category(q, 0);
  EXPECT_EQ(cq[CommCategory::TpAllReduce], 4);
  EXPECT_EQ(cq[CommCategory::TpAllGather], 4 * (8 * 6 + 3));
  EXPECT_EQ(cq[CommCategory::TpReduceScatter], 4 * (8 * 4 + 2));
  // All-gather output = tokens x hidden x 2 bytes.
  for (const auto& op : q.lanes[0].ops) {
    if (op.category == CommCategory::TpAllGather) {
      EXPECT_DOUBLE_EQ(op.coll.bytes, 4096.0 * 2048 * 2);
    }
  }
  // TP splits the FLOPs: the same total over all ranks for the same global batch (16).
  auto w1 = workload("dense-demo", 1, 1, 1);
  w1.mutable_plan()->set_num_micro_batches(2);
  EXPECT_NEAR(flops_of(p), flops_of(generate(w1, 8)), 1e-6 * flops_of(p));
}

TEST(Generator, EveryScheduleGeneratesAValidProgram) {
  for (auto [sched, v, mbs] : std::vector<std::tuple<const char*, int, int>>{
           {"gpipe", 1, 8}, {"1f1b", 1, 8}, {"interleaved-1f1b", 2, 8}, {"zb-h1", 1, 8}, {"dualpipe", 1, 8}}) {
    auto w = workload("moe-demo", 1, 4, 8, sched, mbs);
    w.mutable_plan()->set_virtual_stages(v);
    w.mutable_plan()->set_uneven_stages(false);
    if (v > 1) w.mutable_model()->CopyFrom(find_model("moe-demo", "t")), w.mutable_model()->set_layers(8);
    Program p;
    ASSERT_NO_THROW(p = generate(w, 32)) << sched;
    EXPECT_EQ(p.lanes.size(), 4u) << sched;
  }
}

TEST(Generator, ContextParallelAndZeroStagesAddTheirCollectives) {
  auto w = workload("dense-demo", 1, 1, 1);
  w.mutable_plan()->set_cp(2);
  w.mutable_plan()->set_zero_stage(3);
  Program p = generate(w, 8);
  auto c = count_by_category(p, 0);
  EXPECT_GT(c[CommCategory::CpExchange], 0);
  EXPECT_GT(c[CommCategory::DpAllGather], 0);
  EXPECT_GT(c[CommCategory::DpReduceScatter], 0);
  w.mutable_plan()->set_zero_stage(0);
  auto c0 = count_by_category(generate(w, 8), 0);
  EXPECT_EQ(c0[CommCategory::DpReduceScatter], 0);
  EXPECT_GT(c0[CommCategory::DpAllReduce], 0);
}

TEST(Generator, RoutingSkewIsSeededAndUnfoldsEpRanks) {
  auto w = workload("moe-demo", 1, 1, 8);
  auto* m = w.mutable_model();
  m->CopyFrom(find_model("moe-demo", "t"));
  m->mutable_routing()->set_kind(config::RoutingDistribution::ZIPF);
  m->mutable_routing()->set_zipf_exponent(1.2);
  m->mutable_routing()->set_shuffle_per_layer(true);
  Program a = generate(w, 16), b = generate(w, 16);
  ASSERT_EQ(a.lanes.size(), 8u);  // one lane per EP index
  EXPECT_EQ(a.lanes[0].ranks.size(), 2u);
  std::set<double> expert_flops;
  for (size_t l = 0; l < a.lanes.size(); ++l) {
    ASSERT_EQ(a.lanes[l].ops.size(), b.lanes[l].ops.size());
    for (size_t i = 0; i < a.lanes[l].ops.size(); ++i) {
      ASSERT_EQ(a.lanes[l].ops[i].kind, b.lanes[l].ops[i].kind);
      if (a.lanes[l].ops[i].kind == OpKind::Compute) {
        EXPECT_EQ(a.lanes[l].ops[i].compute.flops, b.lanes[l].ops[i].compute.flops);
      }
    }
    for (const auto& op : a.lanes[l].ops)
      if (op.kind == OpKind::Compute && op.compute.cls == ComputeClass::ExpertGemm) expert_flops.insert(op.compute.flops);
  }
  EXPECT_GT(expert_flops.size(), 8u);  // uneven work per rank
  // Dispatch matrices: rows sum to the rank's dispatch bytes.
  const Op* dispatch = nullptr;
  for (const auto& op : a.lanes[0].ops)
    if (op.kind == OpKind::Collective && op.coll.type == CollectiveType::AllToAll) { dispatch = &op; break; }
  ASSERT_NE(dispatch, nullptr);
  ASSERT_TRUE(dispatch->coll.matrix);
  ASSERT_EQ(dispatch->coll.matrix->size(), 64u);
  double row = std::accumulate(dispatch->coll.matrix->begin(), dispatch->coll.matrix->begin() + 8, 0.0);
  EXPECT_NEAR(row, dispatch->coll.bytes, 1e-6 * row);
  // Another seed, another program.
  w.set_seed(8);
  Program c = generate(w, 16);
  bool differs = false;
  for (size_t l = 0; l < a.lanes.size() && !differs; ++l)
    for (size_t i = 0; i < a.lanes[l].ops.size(); ++i)
      if (const Op &x = a.lanes[l].ops[i], &y = c.lanes[l].ops[i];
          x.kind != y.kind || (x.kind == OpKind::Compute && x.compute.flops != y.compute.flops)) {
        differs = true;
        break;
      }
  EXPECT_TRUE(differs);
  // Unfolded, the same structure per rank.
  Program u = generate(w, 16, GeneratorOptions{false});
  EXPECT_EQ(u.lanes.size(), 16u);
}

TEST(Generator, NodeLimitedRoutingSetsMaxNodes) {
  auto w = workload("deepseek-v3", 1, 4, 16, "1f1b", 8);
  Program p = generate(w, 64);
  int a2a = 0;
  for (const auto& l : p.lanes)
    for (const auto& op : l.ops)
      if (op.kind == OpKind::Collective && op.coll.type == CollectiveType::AllToAll) {
        EXPECT_EQ(op.coll.max_nodes, 4u);
        ++a2a;
      }
  EXPECT_GT(a2a, 0);
}

TEST(Generator, MultimodalImagesVaryPerMicroBatchWithTheSeed) {
  auto w = workload("vlm-generic", 1, 2, 1, "1f1b", 4);
  auto* m = w.mutable_model();
  m->CopyFrom(find_model("vlm-generic", "t"));
  m->mutable_images()->set_kind(config::ImageDistribution::POISSON);
  m->mutable_images()->set_images_per_sample(2);
  m->mutable_images()->add_resolutions(224), m->mutable_images()->add_resolutions(336);
  Program p = generate(w, 8);
  std::set<double> enc;
  for (const auto& op : p.lanes[0].ops)
    if (p.labels[op.label] == "vision encoder fwd") enc.insert(op.compute.flops);
  EXPECT_GT(enc.size(), 1u);  // encoder work differs between micro-batches
  for (const auto& op : p.lanes[1].ops) EXPECT_NE(p.labels[op.label], "vision encoder fwd");  // first stage only
  Program q = generate(w, 8);
  EXPECT_EQ(p.op_count(), q.op_count());
}

TEST(Generator, EveryModelPresetGeneratesWithASmallValidPlan) {
  // For each preset, the first plan without problems among a few shapes on 64 GPUs.
  for (const auto& name : model_names()) {
    auto m = find_model(name, "t");
    bool done = false;
    for (int64_t pp : {4, 8, 2, 1}) {
      for (int64_t tp : {8, 4, 2, 1}) {
        for (int64_t ep : {16, 8, 4, 2, 1}) {
          if (done) break;
          auto w = workload(name, tp, pp, ep, "1f1b", 2 * pp);
          if (!check_plan(m, w.plan(), 64).empty()) continue;
          Program p;
          ASSERT_NO_THROW(p = generate(w, 64)) << name << " tp" << tp << " pp" << pp << " ep" << ep;
          EXPECT_NO_THROW(validate(p, name));
          EXPECT_LT(p.op_count(), 200000u) << name;
          done = true;
        }
      }
    }
    EXPECT_TRUE(done) << name << ": no valid plan tried";
  }
}

TEST(Generator, EnumeratedPlansGenerate) {
  auto m = find_model("mixtral-8x7b", "t");
  EnumerateOptions o;
  o.gpus = 32;
  o.gpu_memory = core::Bytes(80.0 * (1ull << 30));
  auto plans = enumerate_plans(m, o);
  ASSERT_FALSE(plans.empty());
  for (size_t i = 0; i < plans.size(); i += std::max<size_t>(1, plans.size() / 6)) {
    config::Workload w;
    w.set_name("enum");
    w.set_model_preset("mixtral-8x7b");
    *w.mutable_plan() = plans[i].plan;
    EXPECT_NO_THROW(generate(w, 32)) << plans[i].plan.ShortDebugString();
  }
}

TEST(Generator, FoldedAndUnfoldedPipelinesGiveTheSameStepTime) {
  // dense-demo TP2 PP2 (with and without SP) and moe-demo PP2 EP4 with DualPipe, on 2 H800 nodes.
  auto xml = simtest::make_platform("H800", 2);
  for (const auto& [workload, sets] : std::vector<std::pair<std::string, std::vector<std::string>>>{
           {"dense-demo", {"plan.tp=2", "plan.pp=2", "plan.sp=true", "plan.num_micro_batches=4"}},
           {"dense-demo", {"plan.tp=2", "plan.pp=2"}},
           {"moe-demo", {"plan.pp=2", "plan.ep=4", "plan.schedule=dualpipe", "plan.num_micro_batches=4"}}}) {
    sim::RunRequest a, b;
    a.platform = b.platform = xml;
    a.workload = b.workload = workload;
    a.sets = b.sets = sets;
    a.sets.push_back("sim.fold=true");
    b.sets.push_back("sim.fold=false");
    auto fa = sim::simulate_in_child(a), fb = sim::simulate_in_child(b);
    EXPECT_GT(fa.step_time_s, 0);
    // The same to rounding: replicas that reach a collective at the same instant count its
    // kernel as resident from their own arrival, whatever order they were issued in (before,
    // only the last arrival slowed its compute for SM contention: dense-demo differed 0.8%).
    EXPECT_NEAR(fa.step_time_s, fb.step_time_s, 1e-9 * fb.step_time_s) << a.workload;
    EXPECT_LT(fa.ops, fb.ops);
  }
}

}  // namespace
}  // namespace tcsim::workloads

namespace tcsim::workloads {
namespace {

const Op* find_op(const Program& p, const std::string& label) {
  for (const auto& op : p.lanes[0].ops)
    if (op.label < p.labels.size() && p.labels[op.label] == label) return &op;
  return nullptr;
}

}  // namespace

// Megatron-LM before flash attention (arXiv 2104.04473): the scores are materialised. For
// megatron-1.7b (24 heads of 96, sequence 2048) at TP 2, one micro-batch of one sequence, one
// rank sees E = 2048 x 2048 x 12 = 50,331,648 score elements per layer:
//   QK^T and PV: 2 x 2048 x 2048 x 12 x 96 = 9,663,676,416 FLOP each, forward (the full
//   s^2, masked half included), twice that backward;
//   HBM: scores written 2E, softmax 4E, dropout 5E (mask kept), probabilities read 2E
//   forward; backward 4E + 5E + 6E + 4E.
TEST(Generator, MaterializedAttentionChargesTheScoreMatrix) {
  config::Workload w = workload("megatron-1.7b", 2, 1, 1);
  w.mutable_plan()->set_micro_batch(1);
  w.mutable_plan()->set_global_batch(1);
  w.mutable_plan()->set_materialize_attention_scores(true);
  Program p = generate(w, 2);
  const double E = 2048.0 * 2048 * 12, bmm = 2.0 * 2048 * 2048 * 12 * 96;
  struct Want {
    const char* label;
    double flops, bytes;
  };
  for (const Want& x : {Want{"L0 attn scores QK^T fwd", bmm, 2 * E}, Want{"L0 attn softmax fwd", 0, 4 * E},
                        Want{"L0 attn dropout fwd", 0, 5 * E}, Want{"L0 attn context PV fwd", bmm, 2 * E},
                        Want{"L0 attn context PV bwd", 2 * bmm, 4 * E}, Want{"L0 attn dropout bwd", 0, 5 * E},
                        Want{"L0 attn softmax bwd", 0, 6 * E}, Want{"L0 attn scores QK^T bwd", 2 * bmm, 4 * E}}) {
    const Op* op = find_op(p, x.label);
    ASSERT_NE(op, nullptr) << x.label;
    EXPECT_DOUBLE_EQ(op->compute.flops, x.flops) << x.label;
    EXPECT_DOUBLE_EQ(op->compute.hbm_bytes, x.bytes) << x.label;
  }
  // Flash attention (the default) charges the causal half and no score traffic.
  w.mutable_plan()->set_materialize_attention_scores(false);
  Program q = generate(w, 2);
  EXPECT_EQ(find_op(q, "L0 attn softmax fwd"), nullptr);
  const Op* core = find_op(q, "L0 attn core fwd");
  ASSERT_NE(core, nullptr);
  EXPECT_DOUBLE_EQ(core->compute.flops, bmm);  // (QK^T + PV) / 2
  // Context parallelism runs ring flash attention: materialised scores are refused.
  w.mutable_plan()->set_materialize_attention_scores(true);
  w.mutable_plan()->set_cp(2);
  EXPECT_THROW(generate(w, 4), core::InputError);
}

}  // namespace tcsim::workloads

namespace tcsim::workloads {

// Selective recompute rebuilds what plan.recompute_modules drops from memory, at its cost.
// moe-demo (MLA: 16 heads, kv_lora_rank 512, no q compression; hidden 2048; MoE top-6 of
// 1,408-wide experts), one micro-batch of 4,096 tokens, TP 1, layer 1 (the first MoE layer):
//   norms: 2 RMSNorms x 4096 x 2048 x (2 read + 2 write) bytes = 67,108,864 B;
//   MLA up-projection: 2 x 4096 x 512 x 16 x (128 + 128) FLOP = 17,179,869,184 FLOP;
//   SwiGLU: 4096 x 6 x 1408 x (2 x 2 read + 2 write) bytes = 207,618,048 B.
TEST(Generator, SelectiveRecomputeModulesAreCharged) {
  config::Workload w = find_workload("moe-demo", "test");
  w.mutable_plan()->set_num_micro_batches(1);
  w.mutable_plan()->set_recompute(config::ParallelPlan::SELECTIVE);
  for (auto mod : {config::ParallelPlan::LAYERNORM, config::ParallelPlan::MLA_UP_PROJ, config::ParallelPlan::MOE_ACT})
    w.mutable_plan()->add_recompute_modules(mod);
  Program p = generate(w, 8);
  auto op = [&](const std::string& label) -> const Op* {
    for (const auto& o : p.lanes[0].ops)
      if (p.labels[o.label] == label) return &o;
    return nullptr;
  };
  ASSERT_NE(op("L1 norm recompute"), nullptr);
  EXPECT_DOUBLE_EQ(op("L1 norm recompute")->compute.hbm_bytes, 67108864.0);
  ASSERT_NE(op("L1 mla up-proj recompute"), nullptr);
  EXPECT_DOUBLE_EQ(op("L1 mla up-proj recompute")->compute.flops, 17179869184.0);
  ASSERT_NE(op("L1 moe act recompute"), nullptr);
  EXPECT_DOUBLE_EQ(op("L1 moe act recompute")->compute.hbm_bytes, 207618048.0);
  EXPECT_EQ(op("L0 moe act recompute"), nullptr);  // layer 0 is dense (first_k_dense 1)
  EXPECT_EQ(op("L1 attn core recompute"), nullptr);  // core_attn not listed
  // Megatron-core's default list is [core_attn].
  w.mutable_plan()->clear_recompute_modules();
  Program q = generate(w, 8);
  bool core = false, norm = false;
  for (const auto& o : q.lanes[0].ops) {
    core = core || q.labels[o.label] == "L1 attn core recompute";
    norm = norm || q.labels[o.label] == "L1 norm recompute";
  }
  EXPECT_TRUE(core);
  EXPECT_FALSE(norm);
}

}  // namespace tcsim::workloads

namespace tcsim::workloads {

// DualPipe's overlapped forward & backward pair (arXiv 2412.19437 Fig. 4): on the in-order
// compute stream, the backward pass's expert compute sits between the forward dispatch and
// the forward expert compute that waits for it, so the dispatch runs under the backward MLP
// instead of stalling the stream; likewise the forward experts sit between the backward
// dispatch-gradient and the backward attention.
TEST(Generator, DualPipePairHidesEachAllToAllUnderTheOtherPassCompute) {
  config::Workload w = find_workload("moe-demo", "test");
  w.mutable_plan()->set_pp(2);
  w.mutable_plan()->set_schedule("dualpipe");
  w.mutable_plan()->set_num_micro_batches(8);
  Program p = generate(w, 16);
  int checked = 0;
  for (const auto& lane : p.lanes) {
    const auto& ops = lane.ops;
    for (size_t i = 0; i < ops.size(); ++i) {
      if (p.labels[ops[i].label].find("dispatch a2a") == std::string::npos || ops[i].category != CommCategory::EpAllToAll) continue;
      if (p.labels[ops[i].label].find("bwd") != std::string::npos) continue;
      // The forward experts that consume this dispatch.
      size_t consumer = 0;
      for (size_t j = i + 1; j < ops.size() && consumer == 0; ++j)
        for (uint32_t d : ops[j].deps)
          if (d == i && p.labels[ops[j].label].find("experts fwd") != std::string::npos) consumer = j;
      if (consumer == 0) continue;
      bool backward_compute_between = false;
      for (size_t j = i + 1; j < consumer; ++j)
        backward_compute_between = backward_compute_between ||
                                   (ops[j].kind == OpKind::Compute && p.labels[ops[j].label].find("bwd") != std::string::npos);
      // Only dispatches inside an overlapped pair have a backward pass beside them.
      if (backward_compute_between) ++checked;
    }
  }
  EXPECT_GT(checked, 0) << "no forward dispatch hidden under backward compute";
}

}  // namespace tcsim::workloads

namespace tcsim::workloads {
namespace {

config::Workload megatron_1p7b(int64_t tp, int64_t pp, int64_t dp) {
  // megatron-1.7b: 24 layers, hidden 2304, vocabulary 51,200, tied embeddings, biases.
  config::Workload w;
  w.set_name("megatron");
  w.set_model_preset("megatron-1.7b");
  auto* p = w.mutable_plan();
  p->set_tp(tp);
  p->set_pp(pp);
  p->set_dp(dp);
  p->set_micro_batch(1);
  p->set_num_micro_batches(4);
  p->set_grad_bytes_per_param(2);
  return w;
}

std::vector<const Op*> ops_named(const Program& p, size_t lane, const std::string& label) {
  std::vector<const Op*> out;
  for (const auto& op : p.lanes[lane].ops)
    if (p.labels[op.label] == label) out.push_back(&op);
  return out;
}

size_t last_compute(const Program& p, size_t lane) {
  size_t last = 0;
  for (size_t i = 0; i < p.lanes[lane].ops.size(); ++i)
    if (p.lanes[lane].ops[i].kind == OpKind::Compute && p.labels[p.lanes[lane].ops[i].label] != "optimizer step") last = i;
  return last;
}

}  // namespace

// Megatron-LM's --DDP-impl local of 2021 (training.py train_step): one all-reduce of the whole
// FP16 gradient buffer after the last backward. megatron-1.7b holds, per rank at TP 1:
// 24 layers x (12 h^2 + 13 h) + embedding (51,200 + 2,048) x h + final norm 2h, h = 2304:
// 24 x 63,731,904 + 122,683,392 + 4,608 = 1,652,253,696 parameters, 2 bytes each.
TEST(Generator, GradReduceAfterBackwardIsOneAllReduceOfTheWholeBufferAfterTheBackward) {
  auto w = megatron_1p7b(1, 1, 2);
  Program overlapped = generate(w, 2);
  w.mutable_plan()->set_grad_reduce(config::ParallelPlan::AFTER_BACKWARD);
  Program after = generate(w, 2);
  ASSERT_EQ(after.lanes.size(), 1u);
  // Overlapped: one all-reduce per layer plus the embedding's, as before.
  EXPECT_EQ(count_by_category(overlapped, 0)[CommCategory::DpAllReduce], 24 + 2);
  EXPECT_EQ(count_by_category(after, 0)[CommCategory::DpAllReduce], 1);
  auto ar = ops_named(after, 0, "grad all-reduce");
  ASSERT_EQ(ar.size(), 1u);
  const double h = 2304, params = 24 * (12 * h * h + 13 * h) + (51200 + 2048) * h + 2 * h;
  EXPECT_DOUBLE_EQ(ar[0]->coll.bytes, params * 2);
  // The same bytes as the overlapped buckets together.
  double bucket_bytes = 0;
  for (const auto& op : overlapped.lanes[0].ops)
    if (op.category == CommCategory::DpAllReduce) bucket_bytes += op.coll.bytes;
  EXPECT_NEAR(bucket_bytes, params * 2, 1e-9 * params);
  // It waits for the last backward compute, and the optimizer waits for it.
  ASSERT_EQ(ar[0]->deps.size(), 1u);
  EXPECT_EQ(ar[0]->deps[0], last_compute(after, 0));
  const auto& ops = after.lanes[0].ops;
  const uint32_t ar_index = static_cast<uint32_t>(ar[0] - ops.data());
  auto opt = ops_named(after, 0, "optimizer step");
  ASSERT_EQ(opt.size(), 1u);
  EXPECT_NE(std::find(opt[0]->deps.begin(), opt[0]->deps.end(), ar_index), opt[0]->deps.end());

  // ZeRO-3 reduce-scatters every micro-batch: after_backward is refused.
  w.mutable_plan()->set_zero_stage(3);
  try {
    generate(w, 2);
    FAIL() << "after_backward with ZeRO-3 accepted";
  } catch (const core::InputError& e) {
    EXPECT_NE(std::string(e.what()).find("plan.grad_reduce"), std::string::npos) << e.what();
  }
}

// Tied word embeddings with PP > 1: the last stage keeps a copy for the output head; after the
// backward, stage 0's table and the copy sum their gradients (Megatron's
// backward-embedding-all-reduce): 51,200 x 2304 / TP parameters, 2 bytes each, over a
// communicator of {first stage, last stage} pairs. The copy's gradient is also data-parallel
// reduced with the last stage's others.
TEST(Generator, TiedEmbeddingsAllReduceBetweenFirstAndLastStage) {
  auto w = megatron_1p7b(2, 4, 1);
  Program p = generate(w, 8);
  ASSERT_EQ(p.lanes.size(), 4u);
  for (size_t lane = 0; lane < 4; ++lane) {
    auto emb = ops_named(p, lane, "embedding grad all-reduce");
    if (lane == 1 || lane == 2) {
      EXPECT_TRUE(emb.empty()) << lane;
      continue;
    }
    ASSERT_EQ(emb.size(), 1u) << lane;
    EXPECT_EQ(emb[0]->category, CommCategory::EmbAllReduce);
    EXPECT_DOUBLE_EQ(emb[0]->coll.bytes, 51200.0 * 2304 / 2 * 2);
    const Communicator& c = p.comms[emb[0]->coll.comm];
    EXPECT_EQ(c.name.rfind("embedding", 0), 0u) << c.name;
    ASSERT_EQ(c.groups.size(), 2u);  // one per TP rank
    for (const auto& g : c.groups) {
      ASSERT_EQ(g.size(), 2u);
      EXPECT_NE(std::find(p.lanes[0].ranks.begin(), p.lanes[0].ranks.end(), g[0]), p.lanes[0].ranks.end());
      EXPECT_NE(std::find(p.lanes[3].ranks.begin(), p.lanes[3].ranks.end(), g[1]), p.lanes[3].ranks.end());
    }
  }
  // Untied (llama3-8b) or one stage: none.
  auto untied = workload("llama3-8b", 2, 4, 1, "1f1b", 4);
  for (const auto& l : generate(untied, 8).lanes)
    for (const auto& op : l.ops) EXPECT_NE(op.category, CommCategory::EmbAllReduce);
  Program one = generate(megatron_1p7b(2, 1, 1), 2);
  for (const auto& op : one.lanes[0].ops) EXPECT_NE(op.category, CommCategory::EmbAllReduce);
}

// Megatron's scatter/gather (arXiv 2104.04473 sec 4.1): with TP 2 and no sequence parallelism
// each TP rank sends half of the micro-batch's activation (2048 x 2304 x 2 bytes) and the
// receiver all-gathers the whole tensor over TP; plan.pp_full_tensor_sends sends it whole.
TEST(Generator, PipelineSendsScatterOverTpAndGatherOnReceipt) {
  const double whole = 2048.0 * 2304 * 2;
  auto w = megatron_1p7b(2, 2, 1);
  Program p = generate(w, 4);
  int sends = 0, gathers = 0;
  for (size_t lane = 0; lane < 2; ++lane) {
    const auto& ops = p.lanes[lane].ops;
    for (size_t i = 0; i < ops.size(); ++i) {
      if (ops[i].kind == OpKind::Send) {
        ++sends;
        EXPECT_DOUBLE_EQ(ops[i].p2p.bytes, whole / 2);
      }
      if (ops[i].kind == OpKind::Recv) {
        ASSERT_LT(i + 1, ops.size());
        const Op& g = ops[i + 1];
        ASSERT_EQ(g.kind, OpKind::Collective);
        EXPECT_EQ(g.coll.type, CollectiveType::AllGather);
        EXPECT_EQ(g.category, CommCategory::TpAllGather);
        EXPECT_DOUBLE_EQ(g.coll.bytes, whole);
        ASSERT_EQ(g.deps.size(), 1u);
        EXPECT_EQ(g.deps[0], i);
        ++gathers;
      }
    }
  }
  EXPECT_EQ(sends, 8);  // 4 activations forward, 4 gradients back
  EXPECT_EQ(gathers, 8);
  w.mutable_plan()->set_pp_full_tensor_sends(true);
  Program full = generate(w, 4);
  for (const auto& l : full.lanes)
    for (const auto& op : l.ops) {
      if (op.kind == OpKind::Send) {
        EXPECT_DOUBLE_EQ(op.p2p.bytes, whole);
      }
      EXPECT_NE(op.category, CommCategory::TpAllGather);
    }
}

// The exposed all-reduce costs what it costs: on 2 nodes of 8 H800 (DP 16), after_backward's
// all-reduce is exposed for its whole in-flight time and the step grows by that exposure.
TEST(Generator, GradReduceAfterBackwardExposesTheAllReduce) {
  auto xml = simtest::make_platform("H800", 2);
  sim::RunRequest a;
  a.platform = xml;
  a.workload = "megatron-1.7b";
  a.sets = {"plan.tp=1", "plan.pp=1", "plan.micro_batch=1", "plan.num_micro_batches=2", "plan.grad_bytes_per_param=2"};
  sim::RunRequest b = a;
  b.sets.push_back("plan.grad_reduce=after_backward");
  auto ra = sim::simulate_in_child(a), rb = sim::simulate_in_child(b);
  ASSERT_GT(ra.step_time_s, 0);
  EXPECT_GT(rb.step_time_s, ra.step_time_s);
  auto dp = [](const std::map<std::string, double>& m) {
    auto it = m.find("dp_all_reduce");
    return it == m.end() ? 0.0 : it->second;
  };
  const double exposed_b = dp(rb.breakdown.exposed_comm_s), exposed_a = dp(ra.breakdown.exposed_comm_s);
  EXPECT_GT(exposed_b, 0.99 * dp(rb.breakdown.comm_s)) << "after the backward nothing hides it";
  // The step grows by the newly exposed time, less what the overlapped buckets cost the
  // compute they ran beside (their kernels hold 20 of the H800's 132 SMs: 15% of their
  // in-flight time, bounded here by 20%).
  const double grew = rb.step_time_s - ra.step_time_s;
  EXPECT_LE(grew, exposed_b - exposed_a + 1e-9);
  EXPECT_GE(grew, exposed_b - exposed_a - 0.2 * dp(ra.breakdown.comm_s));
}

}  // namespace tcsim::workloads

// workloads::validate rejects programs the executor could not finish, saying which lanes,
// tag or communicator (Chakra traces and generator bugs alike).
TEST(ProgramValidate, UnmatchedSendsReceivesAndCollectiveCountsAreNamed) {
  using namespace tcsim::workloads;
  auto two_lanes = [] {
    Program p;
    p.world_size = 2;
    p.lanes.resize(2);
    p.lanes[0].ranks = {0};
    p.lanes[1].ranks = {1};
    p.comms.push_back(Communicator{"pair", {{0, 1}}});
    return p;
  };
  auto p2p = [](OpKind kind, uint32_t peer, uint32_t tag) {
    Op op;
    op.kind = kind;
    op.stream = Stream::PpComm;
    op.p2p.peer_lane = peer;
    op.p2p.bytes = 1024;
    op.p2p.tag = tag;
    return op;
  };
  auto message = [](const Program& p) {
    try {
      validate(p, "test");
    } catch (const tcsim::core::InputError& e) {
      return std::string(e.what());
    }
    return std::string("valid");
  };
  Program ok = two_lanes();
  ok.lanes[0].ops = {p2p(OpKind::Send, 1, 7), p2p(OpKind::Send, 1, 7), p2p(OpKind::Send, 1, 9)};
  ok.lanes[1].ops = {p2p(OpKind::Recv, 0, 9), p2p(OpKind::Recv, 0, 7), p2p(OpKind::Recv, 0, 7)};
  EXPECT_EQ(message(ok), "valid");

  Program send_only = ok;
  send_only.lanes[1].ops.pop_back();  // one tag-7 receive short
  EXPECT_NE(message(send_only).find("lane 0 -> lane 1 tag 7: 1 send(s) without a matching receive"), std::string::npos)
      << message(send_only);
  Program recv_only = ok;
  recv_only.lanes[1].ops.push_back(p2p(OpKind::Recv, 0, 3));
  recv_only.lanes[0].ops.push_back(p2p(OpKind::Send, 1, 2));
  // Both unmatched; the first in (source, destination, tag) order is reported.
  EXPECT_NE(message(recv_only).find("lane 0 -> lane 1 tag 2: 1 send(s) without a matching receive"), std::string::npos)
      << message(recv_only);
  recv_only.lanes[0].ops.pop_back();
  EXPECT_NE(message(recv_only).find("lane 0 -> lane 1 tag 3: 1 receive(s) without a matching send"), std::string::npos)
      << message(recv_only);

  Program colls = two_lanes();
  Op ar;
  ar.kind = OpKind::Collective;
  ar.stream = Stream::DpComm;
  ar.coll.comm = 0;
  ar.coll.bytes = 1024;
  colls.lanes[0].ops = {ar, ar};
  colls.lanes[1].ops = {ar};
  EXPECT_NE(message(colls).find("communicator 'pair': lane 1 issues 1 collectives but another member issues 2"), std::string::npos)
      << message(colls);
  colls.lanes[1].ops.push_back(ar);
  EXPECT_EQ(message(colls), "valid");
}
