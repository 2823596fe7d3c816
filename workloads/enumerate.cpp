#include "workloads/enumerate.hpp"

#include <numeric>

#include "workloads/model.hpp"
#include "workloads/plan.hpp"

namespace tcsim::workloads {

std::vector<PlanCandidate> enumerate_plans(const config::ModelSpec& m, const EnumerateOptions& opt) {
  std::vector<PlanCandidate> out;
  if (opt.gpus < 1) return out;
  const ParamCounts pc = count_params(m);
  const int64_t experts = pc.moe_layers > 0 ? m.moe().routed_experts() : 1;
  config::ParallelPlan base = opt.base;
  if (base.global_batch() == 0 && base.num_micro_batches() == 0) {
    base.set_global_batch(4 * opt.gpus * std::max<int64_t>(1, base.micro_batch()));
  }
  for (int64_t tp : divisors(m.attention().heads())) {
    if (tp > opt.max_tp || opt.gpus % tp != 0) continue;
    for (int64_t cp = 1; cp <= opt.max_cp; cp *= 2) {
      if (opt.gpus % (tp * cp) != 0) continue;
      for (int64_t pp : divisors(opt.gpus / (tp * cp))) {
        if (pp > m.layers()) continue;
        const int64_t dp = opt.gpus / (tp * cp * pp);
        for (int64_t ep : divisors(std::gcd(dp, experts))) {
          for (int64_t z : opt.zero_stages) {
            for (auto rec : opt.recompute) {
              config::ParallelPlan p = base;
              p.set_tp(tp);
              p.set_cp(cp);
              p.set_pp(pp);
              p.set_dp(0);
              p.set_ep(ep);
              p.set_sp(tp > 1);
              p.set_zero_stage(z);
              p.set_recompute(rec);
              p.set_uneven_stages(base.uneven_stages() || m.layers() % (pp * std::max<int64_t>(1, p.virtual_stages())) != 0);
              if (!check_plan(m, p, opt.gpus).empty()) continue;
              auto mem = estimate_memory(m, p, opt.gpus);
              if (mem.total > opt.gpu_memory) continue;
              out.push_back({resolve_plan(m, p, opt.gpus), mem});
            }
          }
        }
      }
    }
  }
  return out;
}

}  // namespace tcsim::workloads
