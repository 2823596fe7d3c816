#include "sim/steady_state.hpp"

#include <algorithm>
#include <cmath>

#include "core/error.hpp"
#include "workloads/model.hpp"
#include "workloads/plan.hpp"

namespace tcsim::sim {
namespace wl = tcsim::workloads;

StepEstimate estimate_step(const wl::config::Workload& w, int gpus,
                           const std::function<double(const wl::config::Workload&)>& step_of,
                           const SteadyStateOptions& options) {
  const auto model = wl::workload_model(w, "workload " + w.name());
  const auto r = wl::resolve_plan(model, w.plan(), gpus);
  StepEstimate e;
  e.micro_batches = wl::micro_batches(r);
  const int64_t pp = std::max<int64_t>(1, r.pp());
  const auto* sched = pp > 1 ? wl::find_schedule(r.schedule()) : nullptr;
  // Micro-batch counts the schedule accepts: multiples of pp (interleaved), even (DualPipe).
  const int64_t g = sched == nullptr ? 1 : sched->interleaved ? pp : sched->bidirectional ? 2 : 1;
  int64_t m1 = std::max({int64_t{2}, pp + 1, pp > 1 ? wl::min_micro_batches(r.schedule(), pp) : int64_t{1}});
  m1 = (m1 + g - 1) / g * g;
  const std::array<int64_t, 3> ms = {m1, m1 + g, m1 + 2 * g};
  if (options.enabled && 2 * (ms[0] + ms[1] + ms[2]) <= e.micro_batches) {
    std::array<double, 3> t{};
    try {
      for (size_t i = 0; i < 3; ++i) {
        wl::config::Workload shorter = w;
        shorter.mutable_plan()->set_global_batch(0);
        shorter.mutable_plan()->set_num_micro_batches(ms[i]);
        t[i] = step_of(shorter);
      }
    } catch (const core::InputError&) {
      t = {};  // a shorter step the plan's checks refuse: the full step decides
    }
    const double s1 = (t[1] - t[0]) / static_cast<double>(g), s2 = (t[2] - t[1]) / static_cast<double>(g);
    if (s1 > 0 && s2 > 0 && std::abs(s1 - s2) <= options.slope_tolerance * s2) {
      e.step_time_s = t[2] + static_cast<double>(e.micro_batches - ms[2]) * s2;
      e.simulated = ms;
      return e;
    }
  }
  e.step_time_s = step_of(w);
  return e;
}

}  // namespace tcsim::sim
