// The executor (sim/executor.hpp): the run loop, the clock, ops and stream issue, and the
// deadlock report. Communication is in sim/executor_comm.cpp; the engine's declaration in
// sim/executor_engine.hpp.
#include "sim/executor.hpp"

#include <algorithm>
#include <bit>
#include <chrono>
#include <limits>
#include <memory>
#include <set>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <simgrid/s4u.hpp>

#include "core/error.hpp"
#include "sim/executor_engine.hpp"

namespace tcsim::sim {
namespace executor_detail {

ExecutionTrace Engine::run() {
  if (program_.world_size > platform_.size()) {
    throw core::InputError("program", "needs " + std::to_string(program_.world_size) + " GPUs but platform " +
                                          platform_.path() + " has " + std::to_string(platform_.size()));
  }
  wall0_ = std::chrono::steady_clock::now();
  topo_.node_of_rank.resize(static_cast<size_t>(platform_.size()));
  for (const auto& g : platform_.gpus()) topo_.node_of_rank[static_cast<size_t>(g.rank)] = g.domain;  // "same node" = same NVLink domain
  topo_.nvls = platform_.spec().nvls;
  topo_.nvlink_efficiency = platform_.calibration().nvlink_efficiency;
  topo_.nvls_efficiency = platform_.calibration().nvls_efficiency;
  contention_ = options_.sm_contention ? cost_.sm_contention_factor() : 1.0;
  if (options_.evaluations) options_.evaluations->bind(platform_, selector_.selection());

  const size_t nl = program_.lanes.size();
  lanes_.resize(nl);
  trace_.ops.resize(nl);
  lane_of_rank_.assign(static_cast<size_t>(program_.world_size), 0);
  for (uint32_t l = 0; l < nl; ++l)
    for (int r : program_.lanes[l].ranks) lane_of_rank_[static_cast<size_t>(r)] = l;
  participants_.resize(program_.comms.size());
  for (size_t c = 0; c < program_.comms.size(); ++c) {
    std::set<uint32_t> s;
    for (const auto& g : program_.comms[c].groups)
      for (int r : g) s.insert(lane_of_rank_[static_cast<size_t>(r)]);
    participants_[c] = s.size();
  }
  for (uint32_t l = 0; l < nl; ++l) {
    const auto& ops = program_.lanes[l].ops;
    if (ops.size() >= kCollectiveEnd) throw std::length_error("executor: a lane of 2^31 ops or more");
    auto& st = lanes_[l];
    st.pending.resize(ops.size());
    st.coll_seq.assign(program_.comms.size(), 0);
    trace_.ops[l].resize(ops.size());
    ops_total_ += ops.size();
    // Count, then fill: successors of each op end up in increasing op order, as they were
    // pushed before (the order ops are issued in depends on it).
    st.succ_begin.assign(ops.size() + 1, 0);
    size_t per_stream[kStreams] = {};
    for (uint32_t i = 0; i < ops.size(); ++i) {
      st.pending[i] = static_cast<int>(ops[i].deps.size());
      for (uint32_t d : ops[i].deps) st.succ_begin[d + 1]++;
      per_stream[static_cast<int>(ops[i].stream)]++;
    }
    for (size_t i = 0; i < ops.size(); ++i) st.succ_begin[i + 1] += st.succ_begin[i];
    st.succ.resize(st.succ_begin.back());
    std::vector<uint32_t> fill(st.succ_begin.begin(), st.succ_begin.end() - 1);
    for (int s = 0; s < kStreams; ++s) st.stream_order[s].reserve(per_stream[s]);
    for (uint32_t i = 0; i < ops.size(); ++i) {
      for (uint32_t d : ops[i].deps) st.succ[fill[d]++] = i;
      st.stream_order[static_cast<int>(ops[i].stream)].push_back(i);
    }
  }

  if (!analytical_) {
    const size_t links = platform_.all_links().size();
    real_links_.resize(links);
    timer_links_.resize(links);
    mine_.assign(links, 0);
    sg::Activity::on_completion_cb([this](const sg::Activity& a) { on_complete(a); });
  }
  for (uint32_t l = 0; l < nl; ++l)
    for (int s = 0; s < kStreams; ++s) try_issue(l, s);
  if (analytical_) {
    run_queue();
  } else {
    run_flow();
  }

  check_finished();
  // The step ends when its last op does (a stale memo timer may move SimGrid's clock on).
  for (const auto& lane : trace_.ops)
    for (const auto& r : lane) trace_.step_time = std::max(trace_.step_time, r.end);
  trace_.algorithms_used.assign(algorithms_.begin(), algorithms_.end());
  account_links();
  return std::move(trace_);
}

void Engine::check_finished() {
  std::string report;
  int stuck = 0;
  for (uint32_t l = 0; l < lanes_.size(); ++l) {
    const auto& st = lanes_[l];
    if (st.done == program_.lanes[l].ops.size()) continue;
    report += " [done " + std::to_string(st.done) + " of " + std::to_string(program_.lanes[l].ops.size()) + "]";
    if (++stuck > 8) continue;
    report += "\n  rank " + std::to_string(program_.lanes[l].ranks.front()) + ":";
    for (int s = 0; s < kStreams; ++s) {
      if (st.cursor[s] >= st.stream_order[s].size()) continue;
      uint32_t i = st.stream_order[s][st.cursor[s]];
      const Op& op = op_of(l, i);
      std::string label = op.label < program_.labels.size() ? program_.labels[op.label] : "?";
      report += " " + std::string(workloads::to_string(static_cast<workloads::Stream>(s))) + " stream waits at op " +
                std::to_string(i) + " '" + label + "'";
      if (st.pending[i] > 0) report += " (on " + std::to_string(st.pending[i]) + " unfinished dependencies)";
      else if (op.kind == OpKind::Collective) report += " (collective on '" + program_.comms[op.coll.comm].name + "': other members never arrived)";
      else if (op.kind == OpKind::Recv) report += " (receive from rank " + std::to_string(program_.lanes[op.p2p.peer_lane].ranks.front()) + " with no matching send)";
      else if (op.kind == OpKind::Send) report += " (send to rank " + std::to_string(program_.lanes[op.p2p.peer_lane].ranks.front()) + " with no matching receive)";
      report += ";";
    }
  }
  if (stuck > 0) {
    if (stuck > 8) report += "\n  ... and " + std::to_string(stuck - 8) + " more ranks";
    throw core::InputError("replay", "deadlock at t=" + std::to_string(now()) + " s: " + std::to_string(stuck) +
                                         " rank(s) cannot finish:" + report);
  }
}

// ---- the clock: SimGrid activities (flow) or the executor's own queue (analytical) ----

// A timer of `seconds` that hands h back to dispatch() when it expires. Timers live in the
// executor's own queue in both fidelities; in flow, one SimGrid exec on the timer host (an
// alarm) wakes the executor at the earliest pending timer, so a step of millions of compute
// ops does not create millions of SimGrid activities (measured: ~10 us each).
void Engine::start_timer(double seconds, std::unique_ptr<Handle> h) {
  ++trace_.activities;
  queue_.push(Event{now() + seconds, next_seq_++, h.release()});
  if (!analytical_) arm();
}

// A compute op's timer: the op itself is the event, no Handle (one heap block per op
// fewer; most of a step's events are compute ops).
void Engine::start_compute_timer(double seconds, uint32_t lane, uint32_t op) {
  ++trace_.activities;
  queue_.push(Event{now() + seconds, next_seq_++, nullptr, lane, op});
  if (!analytical_) arm();
}

// Flow: SimGrid runs until the earliest queued timer (Engine::run_until), the timers due
// then expire, and so on. Timers queued inside a SimGrid callback (a transfer finished)
// that are due before the current target get an alarm: an exec on the timer host, which
// stops SimGrid there. Every exec changes L07's max-min system, and its fair-bottleneck
// solver then re-solves every running parallel task: with an alarm per timer (before
// session 7) that was 145,000 solves of up to thousands of links in S1, more than half
// of its flow run at 2,048 GPUs.
void Engine::run_flow() {
  auto* engine = sg::Engine::get_instance();
  while (!queue_.empty() || !handles_.empty()) {
    target_ = queue_.empty() ? std::numeric_limits<double>::infinity() : queue_.top().time;
    const bool until = !queue_.empty();
    in_simgrid_ = true;
    if (until) {
      engine->run_until(target_);  // also moves the clock to target_ when nothing runs
    } else {
      engine->run();
    }
    in_simgrid_ = false;
    // SimGrid ran out of activities and nothing was queued meanwhile: whatever is left
    // waits forever (check_finished reports it).
    if (!until && queue_.empty()) break;
    expire_due();
  }
}

// Flow, inside a SimGrid callback: makes sure an alarm fires no later than the earliest
// queued timer, unless SimGrid stops for it anyway.
void Engine::arm() {
  if (!in_simgrid_ || draining_ || queue_.empty()) return;
  const double t = queue_.top().time;
  if (target_ <= t + kTimerTolerance) return;
  if (!alarms_.empty() && *alarms_.begin() <= t + kTimerTolerance) return;
  auto h = std::make_unique<Handle>();
  h->kind = Handle::Alarm;
  h->alarm_time = t;
  alarms_.insert(t);
  ++trace_.alarms;
  launch(sg::Exec::init()->set_host(platform_.timer_host())->set_flops_amount(std::max(0.0, t - now())), std::move(h));
}

// Flow: an alarm fired.
void Engine::drain(double alarm_time) {
  alarms_.erase(alarms_.find(alarm_time));
  expire_due();
}

// Flow: every timer due by now expires, in (time, issue) order.
void Engine::expire_due() {
  draining_ = true;
  while (!queue_.empty() && queue_.top().time <= now() + kTimerTolerance) {
    Event e = queue_.top();
    queue_.pop();
    dispatch(e);
  }
  draining_ = false;
  arm();
}

void Engine::launch(const sg::ExecPtr& exec, std::unique_ptr<Handle> h) {
  Handle* key = h.get();
  exec->set_data(key);
  handles_.emplace(key, std::make_pair(std::move(h), exec));
  exec->start();
}

void Engine::run_queue() {
  while (!queue_.empty()) {
    Event e = queue_.top();
    queue_.pop();
    clock_ = e.time;
    dispatch(e);
  }
}

void Engine::dispatch(const Event& e) {
  if (e.handle != nullptr) {
    dispatch(std::unique_ptr<Handle>(e.handle));
    return;
  }
  count_event();
  if ((e.op & kCollectiveEnd) != 0) {
    const uint32_t op = e.op & ~kCollectiveEnd;
    lanes_[e.lane].active_comm--;
    complete_op(e.lane, op);
    return;
  }
  complete_op(e.lane, e.op);
}

void Engine::count_event() {
  ++events_;
  if (options_.progress && (options_.progress_interval_s <= 0 || (events_ & 1023) == 0)) report_progress();
}

void Engine::on_complete(const sg::Activity& a) {
  // Activities finished in earlier callbacks are no longer referenced by SimGrid.
  if (depth_ == 0) retired_.clear();
  auto* h = a.get_data<Handle>();
  auto it = handles_.find(h);
  if (h == nullptr || it == handles_.end()) return;
  auto owned = std::move(it->second.first);
  retired_.push_back(std::move(it->second.second));  // keep alive until this signal returns
  handles_.erase(it);
  ++depth_;
  dispatch(std::move(owned));
  --depth_;
}

void Engine::dispatch(std::unique_ptr<Handle> h) {
  count_event();
  switch (h->kind) {
    case Handle::InstanceTimer:
      if (h->stale) return;  // replaced by real transfers (materialise)
      if (h->tracked) timed_done(h.get());
      finish_collective(h->instance);
      return;
    case Handle::ChainTimer:
      if (h->stale) return;
      if (h->tracked) timed_done(h.get());
      finish_chain(h->chain);
      return;
    case Handle::PhaseTask:
      if (--h->chain->tasks_left > 0) return;  // other blocks of this phase still run
      if (h->chain->delay_after > 0) {
        start_delay(h->chain);
        return;
      }
      next_phase(h->chain);
      return;
    case Handle::PhaseDelay: next_phase(h->chain); return;
    case Handle::Alarm: drain(h->alarm_time); return;
  }
}

void Engine::report_progress() {
  auto t = std::chrono::steady_clock::now();
  if (std::chrono::duration<double>(t - last_progress_).count() < options_.progress_interval_s) return;
  last_progress_ = t;
  size_t done = 0;
  for (const auto& st : lanes_) done += st.done;
  options_.progress(Progress{now(), done, ops_total_, events_, std::chrono::duration<double>(t - wall0_).count()});
}

// ---- ops ----

void Engine::try_issue(uint32_t lane, int stream) {
  auto& st = lanes_[lane];
  if (st.busy[stream]) return;
  auto& order = st.stream_order[stream];
  if (st.cursor[stream] >= order.size()) return;
  uint32_t i = order[st.cursor[stream]];
  if (st.pending[i] > 0) return;
  st.busy[stream] = true;
  trace_.ops[lane][i].ready = now();
  const Op& op = op_of(lane, i);
  switch (op.kind) {
    case OpKind::Compute:
    case OpKind::Memory: start_compute(lane, i); break;
    case OpKind::Collective: arrive_collective(lane, i); break;
    case OpKind::Send:
    case OpKind::Recv: arrive_p2p(lane, i); break;
  }
}

void Engine::start_compute(uint32_t lane, uint32_t i) {
  const Op& op = op_of(lane, i);
  double seconds = 0;
  if (op.kind == OpKind::Memory) {
    seconds = op.compute.hbm_bytes / (platform_.spec().hbm_bw.value() * platform_.calibration().hbm_efficiency);
  } else {
    seconds = compute_seconds(op.compute);
    // Communication kernels of this lane hold SMs: compute launched now runs on the rest.
    if (lanes_[lane].active_comm > 0 && op.compute.cls != workloads::ComputeClass::Fixed) seconds *= contention_;
  }
  trace_.ops[lane][i].start = now();
  if (seconds <= 0) {
    complete_op(lane, i);
    return;
  }
  start_compute_timer(seconds, lane, i);
}

// The cost model's duration of c, remembered for the next op of the same shape (a step
// repeats a few dozen shapes over and over; the efficiency curves' logarithms were a
// tenth of S1's analytical execution). Exact: the duration depends on these fields only.
double Engine::compute_seconds(const workloads::ComputeOp& c) {
  const uint64_t h = (std::bit_cast<uint64_t>(c.flops) * 0x9E3779B97F4A7C15ull) ^ std::bit_cast<uint64_t>(c.hbm_bytes);
  SecondsMemo& m = seconds_memo_[(h * 0xBF58476D1CE4E5B9ull) >> (64 - kSecondsMemoBits)];
  if (m.valid && m.flops == c.flops && m.hbm_bytes == c.hbm_bytes && m.fixed_seconds == c.fixed_seconds && m.cls == c.cls &&
      m.precision == c.precision) {
    return m.seconds;
  }
  m = SecondsMemo{true, c.flops, c.hbm_bytes, c.fixed_seconds, c.cls, c.precision, cost_.seconds(c)};
  return m.seconds;
}

void Engine::complete_op(uint32_t lane, uint32_t i) {
  auto& st = lanes_[lane];
  trace_.ops[lane][i].end = now();
  st.done++;
  int stream = static_cast<int>(op_of(lane, i).stream);
  st.busy[stream] = false;
  st.cursor[stream]++;
  const uint32_t first = st.succ_begin[i], last = st.succ_begin[i + 1];
  for (uint32_t k = first; k < last; ++k) st.pending[st.succ[k]]--;
  // Issue whatever became ready: this stream's next op, and successors' streams.
  try_issue(lane, stream);
  for (uint32_t k = first; k < last; ++k) try_issue(lane, static_cast<int>(op_of(lane, st.succ[k]).stream));
}

}  // namespace executor_detail

const char* to_string(Fidelity f) { return f == Fidelity::Analytical ? "analytical" : "flow"; }

Fidelity parse_fidelity(const std::string& text, const std::string& where) {
  if (text == "flow") return Fidelity::Flow;
  if (text == "analytical") return Fidelity::Analytical;
  throw core::InputError(where, "unknown fidelity '" + text + "'; valid: flow (SimGrid flows, the default), analytical (closed forms)");
}

ExecutionTrace execute(const Platform& platform, const workloads::Program& program, const CostModel& cost,
                       const AlgorithmSelector& selector, const ExecutorOptions& options) {
  executor_detail::Engine engine(platform, program, cost, selector, options);
  return engine.run();
}

}  // namespace tcsim::sim
