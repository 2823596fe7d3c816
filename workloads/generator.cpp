#include "workloads/generator.hpp"

#include <algorithm>
#include <cmath>
#include <string>

#include "core/error.hpp"
#include "workloads/model.hpp"
#include "workloads/plan.hpp"

namespace tcsim::workloads {
namespace {

using core::InputError;

Precision precision_of(const std::string& p, const std::string& where) {
  if (p.empty() || p == "bf16") return Precision::BF16;
  if (p == "fp8") return Precision::FP8;
  if (p == "fp16") return Precision::FP16;
  throw InputError(where, "unknown precision '" + p + "'; valid: bf16, fp8, fp16");
}

class Builder {
public:
  Builder(Program& p, uint32_t lane) : p_(p), lane_(lane) {}

  uint32_t add(Op op, const std::string& name, std::vector<uint32_t> deps) {
    op.label = p_.label(name);
    op.deps = std::move(deps);
    auto& ops = p_.lanes[lane_].ops;
    ops.push_back(std::move(op));
    return static_cast<uint32_t>(ops.size() - 1);
  }

  uint32_t compute(const std::string& name, double flops, ComputeClass cls, Precision prec, double hbm_bytes,
                   std::vector<uint32_t> deps) {
    Op op;
    op.kind = OpKind::Compute;
    op.stream = Stream::Compute;
    op.compute.flops = flops;
    op.compute.hbm_bytes = hbm_bytes;
    op.compute.cls = cls;
    op.compute.precision = prec;
    return add(std::move(op), name, std::move(deps));
  }

  uint32_t collective(const std::string& name, CollectiveType type, uint32_t comm, double bytes, Stream stream,
                      CommCategory cat, std::vector<uint32_t> deps) {
    Op op;
    op.kind = OpKind::Collective;
    op.stream = stream;
    op.category = cat;
    op.coll.type = type;
    op.coll.comm = comm;
    op.coll.bytes = bytes;
    return add(std::move(op), name, std::move(deps));
  }

private:
  Program& p_;
  uint32_t lane_;
};

}  // namespace

Program generate(const config::Workload& w, int gpus, const GeneratorOptions& options) {
  const std::string where = "workload " + w.name();
  config::ModelSpec m = workload_model(w, where);
  validate_plan(m, w.plan(), gpus, "--set");
  const config::ParallelPlan plan = resolve_plan(m, w.plan(), gpus);
  const int64_t tp = std::max<int64_t>(1, plan.tp()), pp = std::max<int64_t>(1, plan.pp()),
                cp = std::max<int64_t>(1, plan.cp());
  if (tp != 1) throw InputError("--set plan.tp", "tensor parallelism (tp=" + std::to_string(tp) + ") is not generated yet; use tp=1");
  if (pp != 1) throw InputError("--set plan.pp", "pipeline parallelism (pp=" + std::to_string(pp) + ") is not generated yet; use pp=1");
  if (cp != 1) throw InputError("--set plan.cp", "context parallelism (cp=" + std::to_string(cp) + ") is not generated yet; use cp=1");
  const bool moe = m.has_moe() && m.moe().routed_experts() > 0;
  const int64_t ep = std::max<int64_t>(1, plan.ep());
  if (gpus % ep != 0) {
    throw InputError("--set plan.ep", "ep=" + std::to_string(ep) + " does not divide the " + std::to_string(gpus) + " GPUs");
  }
  if (moe && m.moe().routed_experts() % ep != 0) {
    throw InputError("--set plan.ep", "ep=" + std::to_string(ep) + " does not divide the " +
                                          std::to_string(m.moe().routed_experts()) + " routed experts");
  }
  const int64_t dp = gpus;  // tp = pp = cp = 1: every rank is a data-parallel replica
  if (plan.dp() != 0 && plan.dp() != dp) {
    throw InputError("--set plan.dp", "dp=" + std::to_string(plan.dp()) + " but " + std::to_string(gpus) +
                                          " GPUs / (tp*pp*cp=1) give dp=" + std::to_string(dp) + "; use 0 to derive it");
  }
  const int64_t seq = plan.seq_len() > 0 ? plan.seq_len() : m.seq_len();
  const int64_t mb = std::max<int64_t>(1, plan.micro_batch());
  const int64_t gb = plan.global_batch() > 0 ? plan.global_batch() : mb * dp;
  if (gb % (mb * dp) != 0) {
    throw InputError("--set plan.global_batch", "global_batch=" + std::to_string(gb) + " is not a multiple of micro_batch x dp = " +
                                                    std::to_string(mb) + " x " + std::to_string(dp) + "; valid: multiples of " +
                                                    std::to_string(mb * dp));
  }
  const int64_t micro_batches = workloads::micro_batches(plan);
  const Precision prec = precision_of(plan.precision(), "--set plan.precision");
  const bool recompute = plan.recompute() == config::ParallelPlan::FULL;

  Program p;
  p.world_size = gpus;
  p.precision = prec;
  p.tokens_per_step = static_cast<double>(gb) * static_cast<double>(seq);
  p.model_flops_per_step = train_flops_per_token(m, seq) * p.tokens_per_step;

  // Lanes: one for all ranks (folded) or one per rank.
  if (options.fold) {
    Lane lane;
    for (int r = 0; r < gpus; ++r) lane.ranks.push_back(r);
    p.lanes.push_back(std::move(lane));
  } else {
    for (int r = 0; r < gpus; ++r) p.lanes.push_back(Lane{{r}, {}});
  }

  // Communicators. Rank r holds expert shard r % ep; ranks r / ep form an EP group.
  Communicator dp_comm{"dp", {{}}};
  for (int r = 0; r < gpus; ++r) dp_comm.groups[0].push_back(r);
  Communicator ep_comm{"ep", {}};
  Communicator edp_comm{"expert_dp", {}};
  for (int64_t g = 0; g < gpus / ep; ++g) {
    std::vector<int> grp;
    for (int64_t i = 0; i < ep; ++i) grp.push_back(static_cast<int>(g * ep + i));
    ep_comm.groups.push_back(grp);
  }
  for (int64_t i = 0; i < ep; ++i) {
    std::vector<int> grp;
    for (int64_t g = 0; g < gpus / ep; ++g) grp.push_back(static_cast<int>(g * ep + i));
    edp_comm.groups.push_back(grp);
  }
  p.comms = {dp_comm, ep_comm, edp_comm};
  const uint32_t kDp = 0, kEp = 1, kEdp = 2;

  const ParamCounts params = count_params(m);
  const double h = static_cast<double>(m.hidden());
  const double tokens = static_cast<double>(mb * seq);  // per rank per micro-batch
  const double act_bytes = 2;                            // BF16 activations
  const double dispatch_bytes = prec == Precision::FP8 ? 1 : 2;  // FP8 dispatch (DeepSeek-V3), BF16 combine
  const int64_t layers = m.layers();
  const int64_t experts_per_rank = moe ? m.moe().routed_experts() / ep : 0;

  for (uint32_t lane = 0; lane < p.lanes.size(); ++lane) {
    Builder b(p, lane);
    uint32_t last = UINT32_MAX;
    auto after = [&](uint32_t op) { return op == UINT32_MAX ? std::vector<uint32_t>{} : std::vector<uint32_t>{op}; };
    std::vector<uint32_t> grad_ops;

    // Forward or backward of one layer (pass = 1 forward, 2 backward matmul multiplier).
    auto layer_pass = [&](int64_t l, bool backward, bool last_mb) {
      const LayerFlops f = layer_flops(m, l, seq);
      const double k = backward ? 2.0 : 1.0;
      const std::string dir = backward ? "bwd" : "fwd";
      const std::string L = "L" + std::to_string(l) + " ";
      const double ffn_width = f.moe ? static_cast<double>(f.top_k * expert_hidden(m)) : static_cast<double>(m.ffn().hidden());
      const double elementwise_bytes = tokens * act_bytes * (10 * h + 3 * ffn_width) * k;
      auto attention = [&] {
        last = b.compute(L + "attn proj " + dir, k * tokens * f.attention_proj, ComputeClass::Gemm, prec, 0, after(last));
        last = b.compute(L + "attn core " + dir, k * tokens * f.attention_core_causal, ComputeClass::Attention, Precision::BF16, 0, after(last));
        last = b.compute(L + "norm/act " + dir, 0, ComputeClass::Elementwise, Precision::BF16, elementwise_bytes, after(last));
      };
      auto ffn = [&] {
        if (!f.moe) {
          last = b.compute(L + "ffn " + dir, k * tokens * f.dense_ffn, ComputeClass::Gemm, prec, 0, after(last));
          return;
        }
        const double a2a_dispatch = tokens * static_cast<double>(f.top_k) * h * dispatch_bytes;
        const double a2a_combine = tokens * static_cast<double>(f.top_k) * h * act_bytes;
        last = b.compute(L + "router " + dir, k * tokens * f.router, ComputeClass::Gemm, prec, 0, after(last));
        // Forward: dispatch then combine. Backward: the gradient of combine goes first.
        last = b.collective(L + (backward ? "combine bwd a2a" : "dispatch a2a"), CollectiveType::AllToAll, kEp,
                            backward ? a2a_combine : a2a_dispatch, Stream::EpComm, CommCategory::EpAllToAll, after(last));
        const double expert_flops = k * tokens * f.routed_experts;  // uniform routing: balanced load
        uint32_t e = b.compute(L + "experts " + dir, expert_flops, ComputeClass::ExpertGemm, prec, 0, after(last));
        auto& eop = p.lanes[lane].ops[e].compute;
        eop.m = static_cast<uint64_t>(tokens * static_cast<double>(f.top_k) / static_cast<double>(std::max<int64_t>(1, experts_per_rank)));
        last = e;
        if (f.shared_experts > 0) last = b.compute(L + "shared experts " + dir, k * tokens * f.shared_experts, ComputeClass::Gemm, prec, 0, after(last));
        last = b.collective(L + (backward ? "dispatch bwd a2a" : "combine a2a"), CollectiveType::AllToAll, kEp,
                            backward ? a2a_dispatch : a2a_combine, Stream::EpComm, CommCategory::EpAllToAll, after(last));
      };
      if (!backward) {
        attention();
        ffn();
      } else {
        if (recompute) {  // full recompute: the layer's forward runs again first
          last = b.compute(L + "recompute fwd", tokens * (f.attention_proj + f.attention_core_causal + f.dense_ffn + f.router + f.routed_experts + f.shared_experts),
                           ComputeClass::Gemm, prec, 0, after(last));
        }
        ffn();
        attention();
        if (last_mb) {
          // This layer's gradients are final: reduce them while the backward goes on.
          double dense = params.attention_per_layer + params.norms_per_layer +
                         (f.moe ? params.shared_experts_per_layer + params.router_per_layer : params.dense_ffn_per_layer);
          grad_ops.push_back(b.collective(L + "grad all-reduce", CollectiveType::AllReduce, kDp, dense * options.grad_bytes,
                                          Stream::DpComm, CommCategory::DpAllReduce, after(last)));
          if (f.moe) {
            double expert = params.expert * static_cast<double>(experts_per_rank);
            grad_ops.push_back(b.collective(L + "expert grad all-reduce", CollectiveType::AllReduce, kEdp, expert * options.grad_bytes,
                                            Stream::DpComm, CommCategory::DpAllReduce, after(last)));
          }
        }
      }
    };

    const double head_flops = lm_head_flops_per_token(m) + mtp_flops_per_token(m, seq);
    for (int64_t mbi = 0; mbi < micro_batches; ++mbi) {
      const bool last_mb = mbi == micro_batches - 1;
      for (int64_t l = 0; l < layers; ++l) layer_pass(l, false, last_mb);
      last = b.compute("head+loss fwd", tokens * head_flops, ComputeClass::Gemm, prec, 0, after(last));
      last = b.compute("head+loss bwd", 2 * tokens * head_flops, ComputeClass::Gemm, prec, 0, after(last));
      if (last_mb) {
        double emb = params.embedding + params.lm_head + params.mtp;
        grad_ops.push_back(b.collective("embedding/head grad all-reduce", CollectiveType::AllReduce, kDp, emb * options.grad_bytes,
                                        Stream::DpComm, CommCategory::DpAllReduce, after(last)));
      }
      for (int64_t l = layers - 1; l >= 0; --l) layer_pass(l, true, last_mb);
    }
    // Optimizer: Adam on FP32 master weights, moments and gradients, plus the BF16 copy:
    // ~30 bytes of HBM traffic per local parameter (read p, g, m, v; write p, m, v, bf16 p).
    double local_params = (params.total_with_mtp - params.expert * static_cast<double>(moe ? m.moe().routed_experts() * moe_layer_count(m) : 0)) +
                          params.expert * static_cast<double>(experts_per_rank * (moe ? moe_layer_count(m) : 0));
    if (plan.zero_stage() >= 1) local_params /= static_cast<double>(dp);
    std::vector<uint32_t> opt_deps = grad_ops;
    if (last != UINT32_MAX) opt_deps.push_back(last);
    b.compute("optimizer step", 0, ComputeClass::Elementwise, Precision::FP32, 30.0 * local_params, opt_deps);
  }
  validate(p, where);
  return p;
}

}  // namespace tcsim::workloads
