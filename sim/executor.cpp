#include "sim/executor.hpp"

#include <algorithm>
#include <chrono>
#include <deque>
#include <queue>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <tuple>
#include <unordered_map>
#include <unordered_set>

#include <simgrid/s4u.hpp>

#include "core/error.hpp"
#include "core/log.hpp"
#include "sim/closed_form.hpp"
#include "sim/link_form.hpp"
#include "sim/parallel_task.hpp"

namespace tcsim::sim {
namespace sg = simgrid::s4u;
using workloads::Op;
using workloads::OpKind;
using workloads::Program;

namespace {

constexpr int kStreams = workloads::kStreamCount;

struct LaneState {
  std::vector<int> pending;                       // unfinished deps per op
  // Successors of op i: succ[succ_begin[i] .. succ_begin[i + 1]), in program order. One
  // flat array per lane instead of a vector per op (S1: 123,440 heap blocks).
  std::vector<uint32_t> succ_begin, succ;
  std::vector<uint32_t> stream_order[kStreams];   // op indices per stream, program order
  size_t cursor[kStreams] = {};
  bool busy[kStreams] = {};
  std::map<uint32_t, uint32_t> coll_seq;  // comm -> collectives issued so far
  int active_comm = 0;                    // communication transfers in flight
  size_t done = 0;
};

// What makes two collective instances take the same time on an idle network: the same
// communicator (groups, hence routes), type, size, uneven matrix and node limit.
struct CollKey {
  uint32_t comm = 0;
  int type = 0;
  double bytes = 0;
  uint32_t matrix = 0;  // 0: even split; else which uneven matrix (Engine::key_of)
  uint32_t max_nodes = 0;
  bool operator<(const CollKey& o) const {
    return std::tie(comm, type, bytes, matrix, max_nodes) < std::tie(o.comm, o.type, o.bytes, o.matrix, o.max_nodes);
  }
};

// A send between two lanes: same lanes and bytes, same transfers.
using P2PKey = std::tuple<uint32_t, uint32_t, double>;

struct Handle;

// A collective instance waiting for, or running with, its member lanes.
struct Instance {
  uint32_t comm = 0;
  uint64_t seq = 0;
  size_t expected = 0;
  std::vector<std::pair<uint32_t, uint32_t>> members;  // (lane, op) arrived
  size_t groups_left = 0;
  CollKey key;
  // Flow shortcuts (see Engine::start_collective).
  bool clean = false;     // started on an idle network and nothing else has started since
  double t0 = 0;          // when its transfers started
  const Evaluation* links = nullptr;  // its links, while its transfers are real
};

// One message of a send: its transfer may arrive before the receive is issued.
struct P2PMsg {
  std::pair<uint32_t, uint32_t> send, recv;  // (lane, op)
  bool has_recv = false;
  bool arrived = false;
};

// A running chain of phases for one group of one collective (or one p2p transfer).
struct Chain {
  std::shared_ptr<const std::vector<Phase>> phases;  // shared by instances with the same key
  size_t next = 0;
  std::shared_ptr<Instance> instance;  // for collectives
  std::shared_ptr<struct P2PMsg> msg;  // for point-to-point transfers
  double remaining = 1.0;  // share of the bytes still to move (a memoized collective turned real)
  double delay_after = 0;  // latency of coalesced steps, paid after the current task
  size_t tasks_left = 0;   // parallel tasks of the current phase still running
  bool counted = false;    // holds the network busy (Engine::net_users_)
  const Evaluation* links = nullptr;  // a send's links, while its transfer is real
};

struct Handle {
  // Compute ops are not handles: their timers are queue events of their own (Event).
  enum Kind { PhaseTask, PhaseDelay, InstanceTimer, ChainTimer, Alarm } kind = PhaseTask;
  std::shared_ptr<Chain> chain;           // PhaseTask, PhaseDelay, ChainTimer
  std::shared_ptr<Instance> instance;     // InstanceTimer
  bool stale = false;                     // a timer replaced by real transfers
  bool tracked = false;                   // a flow timer standing for communication
  double alarm_time = 0;                  // Alarm: the queue time it wakes the executor for
};

class Engine {
public:
  Engine(const Platform& platform, const Program& program, const CostModel& cost, const AlgorithmSelector& selector,
         const ExecutorOptions& options)
      : platform_(platform), program_(program), cost_(cost), selector_(selector), options_(options),
        analytical_(options.fidelity == Fidelity::Analytical), closed_(platform) {}

  ExecutionTrace run() {
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
      auto& st = lanes_[l];
      st.pending.resize(ops.size());
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

private:
  const Op& op_of(uint32_t lane, uint32_t op) const { return program_.lanes[lane].ops[op]; }
  double now() const { return analytical_ ? clock_ : sg::Engine::get_clock(); }

  // ---- the clock: SimGrid activities (flow) or the executor's own queue (analytical) ----

  // A timer of `seconds` that hands h back to dispatch() when it expires. Timers live in the
  // executor's own queue in both fidelities; in flow, one SimGrid exec on the timer host (an
  // alarm) wakes the executor at the earliest pending timer, so a step of millions of compute
  // ops does not create millions of SimGrid activities (measured: ~10 us each).
  void start_timer(double seconds, std::unique_ptr<Handle> h) {
    ++trace_.activities;
    queue_.push(Event{now() + seconds, next_seq_++, h.release()});
    if (!analytical_) arm();
  }

  // A compute op's timer: the op itself is the event, no Handle (one heap block per op
  // fewer; most of a step's events are compute ops).
  void start_compute_timer(double seconds, uint32_t lane, uint32_t op) {
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
  void run_flow() {
    auto* engine = sg::Engine::get_instance();
    while (!queue_.empty() || !handles_.empty()) {
      target_ = queue_.empty() ? std::numeric_limits<double>::infinity() : queue_.top().time;
      in_simgrid_ = true;
      if (queue_.empty()) {
        engine->run();
      } else {
        engine->run_until(target_);
      }
      in_simgrid_ = false;
      expire_due();
    }
  }

  // Flow, inside a SimGrid callback: makes sure an alarm fires no later than the earliest
  // queued timer, unless SimGrid stops for it anyway.
  void arm() {
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
  void drain(double alarm_time) {
    alarms_.erase(alarms_.find(alarm_time));
    expire_due();
  }

  // Flow: every timer due by now expires, in (time, issue) order.
  void expire_due() {
    draining_ = true;
    while (!queue_.empty() && queue_.top().time <= now() + kTimerTolerance) {
      Event e = queue_.top();
      queue_.pop();
      dispatch(e);
    }
    draining_ = false;
    arm();
  }

  // SimGrid's own timing precision (precision/timing, 1e-9 s): a timer due within it of an
  // alarm expires with that alarm.
  static constexpr double kTimerTolerance = 1e-9;

  void launch(const sg::ExecPtr& exec, std::unique_ptr<Handle> h) {
    Handle* key = h.get();
    exec->set_data(key);
    handles_.emplace(key, std::make_pair(std::move(h), exec));
    exec->start();
  }

  struct Event {
    double time;
    uint64_t seq;
    Handle* handle;         // null: compute op `op` of lane `lane` ends
    uint32_t lane = 0, op = 0;
    bool operator>(const Event& o) const { return time != o.time ? time > o.time : seq > o.seq; }
  };

  void run_queue() {
    while (!queue_.empty()) {
      Event e = queue_.top();
      queue_.pop();
      clock_ = e.time;
      dispatch(e);
    }
  }

  void dispatch(const Event& e) {
    if (e.handle != nullptr) {
      dispatch(std::unique_ptr<Handle>(e.handle));
      return;
    }
    count_event();
    complete_op(e.lane, e.op);
  }

  void count_event() {
    ++events_;
    if (options_.progress && (options_.progress_interval_s <= 0 || (events_ & 1023) == 0)) report_progress();
  }

  void on_complete(const sg::Activity& a) {
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

  void dispatch(std::unique_ptr<Handle> h) {
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

  void report_progress() {
    auto t = std::chrono::steady_clock::now();
    if (std::chrono::duration<double>(t - last_progress_).count() < options_.progress_interval_s) return;
    last_progress_ = t;
    size_t done = 0;
    for (const auto& st : lanes_) done += st.done;
    options_.progress(Progress{now(), done, ops_total_, events_, std::chrono::duration<double>(t - wall0_).count()});
  }

  // ---- ops ----

  void try_issue(uint32_t lane, int stream) {
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

  void start_compute(uint32_t lane, uint32_t i) {
    const Op& op = op_of(lane, i);
    double seconds = 0;
    if (op.kind == OpKind::Memory) {
      seconds = op.compute.hbm_bytes / (platform_.spec().hbm_bw.value() * platform_.calibration().hbm_efficiency);
    } else {
      seconds = cost_.seconds(op.compute);
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

  void complete_op(uint32_t lane, uint32_t i) {
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

  // ---- collectives ----

  void arrive_collective(uint32_t lane, uint32_t i) {
    const Op& op = op_of(lane, i);
    auto& st = lanes_[lane];
    uint64_t seq = st.coll_seq[op.coll.comm]++;
    auto key = std::make_pair(op.coll.comm, seq);
    auto& inst = instances_[key];
    if (!inst) {
      inst = std::make_shared<Instance>();
      inst->comm = op.coll.comm;
      inst->seq = seq;
      inst->expected = participants_[op.coll.comm];
    }
    inst->members.emplace_back(lane, i);
    // Its NCCL kernel is resident from here, spinning on its SMs while it waits for the
    // other members: compute this lane launches meanwhile runs on the remaining SMs. (Counting
    // from the start of the instance instead made replicas that arrive at the same instant
    // differ by the order in which they were issued.)
    st.active_comm++;
    if (inst->members.size() < inst->expected) return;
    auto ready = inst;
    instances_.erase(key);
    start_collective(ready);
  }

  // Uneven all-to-all matrices are told apart by the order in which they first appear, not
  // by address, so that every map keyed by CollKey iterates the same way in every run.
  CollKey key_of(const workloads::CollectiveOp& c) {
    uint32_t matrix = 0;
    if (c.matrix) matrix = matrix_ids_.try_emplace(c.matrix, static_cast<uint32_t>(matrix_ids_.size() + 1)).first->second;
    return CollKey{c.comm, static_cast<int>(c.type), c.bytes, matrix, c.max_nodes};
  }

  // Starts a collective whose members have all arrived. Flow fidelity with memoization:
  //  - on an idle network, a collective whose key already ran clean is a timer of that
  //    duration (exact: same phases, same routes, nothing to share the links with);
  //  - otherwise its phases run as parallel tasks; if it started on an idle network and
  //    nothing else starts before it ends, its duration is remembered under its key;
  //  - any transfer that starts while memo timers run turns them back into real
  //    transfers of their remaining bytes (progress assumed linear in time), so sharing
  //    is simulated from then on.
  void start_collective(const std::shared_ptr<Instance>& inst) {
    auto [lane0, op0] = inst->members.front();
    const workloads::CollectiveOp& coll = op_of(lane0, op0).coll;
    inst->key = key_of(coll);
    for (auto [l, i] : inst->members) trace_.ops[l][i].start = now();
    auto& use = uses_[inst->key];
    if (use.second == nullptr) use.second = &coll;
    ++use.first;
    if (analytical_) {
      const Evaluation& ev = evaluate(inst->key, coll);
      if (!ev.algorithm.empty()) algorithms_.insert(ev.algorithm);
      auto h = std::make_unique<Handle>();
      h->kind = Handle::InstanceTimer;
      h->instance = inst;
      start_timer(ev.duration, std::move(h));
      return;
    }
    // Flow shortcuts. A collective whose links carry nothing else, and whose groups share
    // no link, takes exactly its closed form (each phase one L07 task, or blocks of one,
    // with nothing else on its links): a timer stands for it. On an idle network, an
    // identical collective that ran alone gives the duration of one whose groups do share
    // links. Any real transfer that later needs one of a timer's links turns the timer
    // back into transfers (before_real_traffic).
    const Evaluation* ev = options_.memoize ? &evaluate(inst->key, coll) : nullptr;
    if (ev != nullptr) {
      double d = -1;
      if (ev->groups_disjoint && !real_links_.touches(*ev) && !timer_links_.touches(*ev)) {
        d = ev->duration;
        if (!ev->algorithm.empty()) algorithms_.insert(ev->algorithm);
      } else if (net_users_ == 0) {
        if (auto it = memo_.find(inst->key); it != memo_.end()) d = it->second;
      }
      if (d >= 0) {
        start_timed(inst, nullptr, *ev, d);
        return;
      }
    }
    before_real_traffic(ev);
    const bool idle = net_users_ == 0;
    if (ev != nullptr) {
      inst->links = ev;
      real_links_.add(*ev, +1);
    }
    if (start_chains(inst, 1.0) == 0) {
      finish_collective(inst);
      return;
    }
    if (idle && ev != nullptr) {
      inst->clean = true;
      inst->t0 = now();
      clean_.push_back(inst);
    }
  }

  // Starts one chain of phases per group of the instance's communicator; returns how many.
  size_t start_chains(const std::shared_ptr<Instance>& inst, double remaining) {
    auto [lane0, op0] = inst->members.front();
    const Planned& planned = plan(inst->key, op_of(lane0, op0).coll);
    if (!planned.algorithm.empty()) algorithms_.insert(planned.algorithm);
    std::vector<std::shared_ptr<Chain>> chains;
    for (const auto& phases : planned.groups) {
      if (phases->empty()) continue;
      auto chain = std::make_shared<Chain>();
      chain->phases = phases;
      chain->instance = inst;
      chain->remaining = remaining;
      chains.push_back(std::move(chain));
    }
    inst->groups_left = chains.size();
    for (auto& c : chains) {
      c->counted = true;
      ++net_users_;
    }
    for (auto& c : chains) next_phase(c);
    return chains.size();
  }

  // ---- flow shortcuts: timers for communication alone on its links ----

  struct Timed {
    std::shared_ptr<Instance> inst;  // a collective, or
    std::shared_ptr<Chain> chain;    // a send
    Handle* handle = nullptr;
    double end = 0, duration = 0;
    const Evaluation* ev = nullptr;
  };

  void start_timed(const std::shared_ptr<Instance>& inst, const std::shared_ptr<Chain>& chain, const Evaluation& ev, double d) {
    auto h = std::make_unique<Handle>();
    h->kind = inst ? Handle::InstanceTimer : Handle::ChainTimer;
    h->instance = inst;
    h->chain = chain;
    h->tracked = true;
    timed_.push_back(Timed{inst, chain, h.get(), now() + d, std::max(d, 1e-30), &ev});
    timer_links_.add(ev, +1);
    ++net_users_;
    start_timer(d, std::move(h));
  }

  void timed_done(Handle* h) {
    auto it = std::find_if(timed_.begin(), timed_.end(), [h](const Timed& t) { return t.handle == h; });
    timer_links_.add(*it->ev, -1);
    timed_.erase(it);
    --net_users_;
    ++trace_.memo_hits;
  }

  // Real transfers on ev's links (all links when ev is null) are about to start: no running
  // collective is alone on the network any more, and timers sharing a link with them
  // become real transfers of their remaining bytes, progress assumed uniform in time.
  // Timers' links are disjoint from each other and from real transfers' links, so this
  // never cascades.
  void before_real_traffic(const Evaluation* ev) {
    for (auto& i : clean_) i->clean = false;
    clean_.clear();
    if (timed_.empty()) return;
    if (ev != nullptr)
      for (const auto& [id, b] : ev->link_bytes) mine_[id] = 1;
    std::vector<Timed> hit;
    std::erase_if(timed_, [&](const Timed& t) {
      bool shared = ev == nullptr;
      for (const auto& [id, b] : t.ev->link_bytes) shared = shared || mine_[id] != 0;
      if (shared) hit.push_back(t);
      return shared;
    });
    if (ev != nullptr)
      for (const auto& [id, b] : ev->link_bytes) mine_[id] = 0;
    for (const auto& t : hit) {
      // The timer runs on, ignored (cancelling it leaves SimGrid a dangling activity in
      // its ended list: measured, segfault); the step ends with its last op anyway.
      t.handle->stale = true;
      ++trace_.memo_replaced;
      timer_links_.add(*t.ev, -1);
      real_links_.add(*t.ev, +1);
      --net_users_;
      const double left = std::clamp((t.end - now()) / t.duration, 0.0, 1.0);
      if (t.inst) {
        t.inst->links = t.ev;
        if (start_chains(t.inst, left) == 0) finish_collective(t.inst);
      } else {
        t.chain->links = t.ev;
        t.chain->remaining = left;
        t.chain->counted = true;
        ++net_users_;
        next_phase(t.chain);
      }
    }
  }

  void finish_collective(const std::shared_ptr<Instance>& inst) {
    if (inst->links != nullptr) {
      real_links_.add(*inst->links, -1);
      inst->links = nullptr;
    }
    if (inst->clean) {
      memo_[inst->key] = now() - inst->t0;
      std::erase(clean_, inst);
      inst->clean = false;
    }
    for (auto [l, i] : inst->members) {
      lanes_[l].active_comm--;
      complete_op(l, i);
    }
  }

  // ---- point-to-point ----

  // The transfers of a send from lane `src` to lane `dst`: replica k of one side to replica
  // k of the other.
  Phase p2p_phase(uint32_t src, uint32_t dst, double bytes) const {
    Phase p;
    const auto& sr = program_.lanes[src].ranks;
    const auto& dr = program_.lanes[dst].ranks;
    for (size_t k = 0; k < std::max(sr.size(), dr.size()); ++k) {
      int a = sr[k % sr.size()], b = dr[k % dr.size()];
      if (a != b && bytes > 0) p.transfers.push_back({a, b, bytes});
    }
    return p;
  }

  // Point-to-point with eager semantics, as ASTRA-sim and MPI's eager protocol: the data
  // moves as soon as the send is issued; the send completes when it has arrived, the
  // receive when it has arrived and the receive was issued. Sends and receives between
  // the same two lanes with the same tag match in issue order.
  void arrive_p2p(uint32_t lane, uint32_t i) {
    const Op& op = op_of(lane, i);
    const bool is_send = op.kind == OpKind::Send;
    const uint32_t src = is_send ? lane : op.p2p.peer_lane;
    const uint32_t dst = is_send ? op.p2p.peer_lane : lane;
    auto qi = p2p_.try_emplace(std::make_tuple(src, dst, op.p2p.tag)).first;
    auto& q = qi->second;
    if (!is_send) {
      if (q.unmatched.empty()) {
        // Its data starts moving when the send is issued (attach_recv): waiting for the
        // producer until then is pipeline bubble, not communication in flight.
        q.recvs.emplace_back(lane, i);
        return;
      }
      trace_.ops[lane][i].start = now();
      auto msg = q.unmatched.front();
      q.unmatched.erase(q.unmatched.begin());
      if (q.recvs.empty() && q.unmatched.empty()) p2p_.erase(qi);  // before attach_recv, which may come back here
      attach_recv(*msg, lane, i);
      return;
    }
    trace_.ops[lane][i].start = now();
    auto msg = std::make_shared<P2PMsg>();
    msg->send = {lane, i};
    lanes_[lane].active_comm++;
    if (!q.recvs.empty()) {
      auto [rl, ri] = q.recvs.front();
      q.recvs.erase(q.recvs.begin());
      if (q.recvs.empty() && q.unmatched.empty()) p2p_.erase(qi);
      attach_recv(*msg, rl, ri);
    } else {
      q.unmatched.push_back(msg);
    }
    auto chain = std::make_shared<Chain>();
    chain->msg = msg;
    const P2PKey key{lane, op.p2p.peer_lane, op.p2p.bytes};
    auto memo = p2p_memo_.find(key);
    // Analytical: a send evaluated before (so with transfers) needs no phase of its own.
    Phase p;
    if (!analytical_ || memo == p2p_memo_.end()) {
      p = p2p_phase(lane, op.p2p.peer_lane, op.p2p.bytes);
      if (p.transfers.empty()) {
        finish_chain(chain);
        return;
      }
    }
    ++p2p_uses_[key];
    const Evaluation* ev = nullptr;
    if (analytical_ || options_.memoize) {
      auto it = memo;
      if (it == p2p_memo_.end()) it = p2p_memo_.emplace(key, closed_.send(p)).first;
      ev = &it->second;
    }
    if (analytical_) {
      auto h = std::make_unique<Handle>();
      h->kind = Handle::ChainTimer;
      h->chain = chain;
      start_timer(ev->duration, std::move(h));
      return;
    }
    chain->phases = std::make_shared<const std::vector<Phase>>(1, std::move(p));
    if (ev != nullptr && !real_links_.touches(*ev) && !timer_links_.touches(*ev)) {
      start_timed(nullptr, chain, *ev, ev->duration);  // alone on its links: exact
      return;
    }
    before_real_traffic(ev);
    chain->counted = true;
    ++net_users_;
    if (ev != nullptr) {
      chain->links = ev;
      real_links_.add(*ev, +1);
    }
    next_phase(chain);
  }

  void attach_recv(P2PMsg& msg, uint32_t lane, uint32_t i) {
    if (trace_.ops[lane][i].start < 0) trace_.ops[lane][i].start = now();
    msg.recv = {lane, i};
    msg.has_recv = true;
    if (msg.arrived) {
      complete_op(lane, i);
    } else {
      lanes_[lane].active_comm++;
    }
  }

  // ---- phases as SimGrid parallel tasks (flow fidelity) ----

  // Starts the next phase of a chain as parallel tasks, or finishes the chain.
  void next_phase(const std::shared_ptr<Chain>& chain) {
    const auto& phases = *chain->phases;
    if (chain->next >= phases.size()) {
      finish_chain(chain);
      return;
    }
    const Phase& ph = phases[chain->next++];
    // Coalescing: m consecutive identical phases (the 2(n-1) steps of a ring, a Phase
    // with repeat m) run as one parallel task of m times the bytes, followed by (m-1) x
    // the phase's route latency. On an idle fabric this is exact; under contention each
    // step would see the same sharing anyway, only the latency gaps move to the end
    // (ARCHITECTURE.md).
    size_t repeat = ph.repeat;
    while (chain->next < phases.size() && same_phase(phases[chain->next], ph)) {
      repeat += phases[chain->next].repeat;
      ++chain->next;
    }
    chain->delay_after = repeat > 1 ? static_cast<double>(repeat - 1) * phase_latency(ph) : 0.0;
    const double scale = ph.byte_scale * static_cast<double>(repeat) * chain->remaining;
    // Sparse phases: one parallel task per (source node, destination node) block of the
    // phase, so a task's dense k x k matrix stays small (a 4,096-rank ring step is ~1,000
    // tasks of a few hosts, not one task of 4,096^2 entries). Blocks progress
    // independently, sharing links max-min fairly; the phase ends when the last one ends.
    // Small phases stay one task: every task is a variable of SimGrid's max-min solver,
    // whose cost grows with their number (S1: 30% of the time in the solver when its
    // 64-rank all-to-alls were split into 64 blocks each).
    bool split = false;
    if (options_.split_phases && ph.transfers.size() > options_.split_above_hosts) {
      std::unordered_set<int> hosts;
      for (const auto& t : ph.transfers) {
        hosts.insert(t.src);
        hosts.insert(t.dst);
        if (hosts.size() > options_.split_above_hosts) break;
      }
      split = hosts.size() > options_.split_above_hosts;
    }
    std::map<std::pair<int, int>, std::vector<const Transfer*>> blocks;
    for (const auto& t : ph.transfers) {
      const int sn = split ? platform_.gpus()[static_cast<size_t>(t.src)].node : 0;
      const int dn = split ? platform_.gpus()[static_cast<size_t>(t.dst)].node : 0;
      blocks[{sn, dn}].push_back(&t);
    }
    std::vector<TaskSpec> tasks;
    for (const auto& [key, ts] : blocks) {
      // The link form for collective phases only: they live as long as the run (planned_),
      // so their address keys its cache; a send's phase is freed with its chain (and has
      // a pair per link anyway).
      const LinkForm* lf = !split && chain->instance && options_.link_form ? link_forms_.get(ph, ts) : nullptr;
      pairs_.clear();
      if (lf != nullptr) {
        std::optional<HostPair> carrier;
        for (const auto& [from, to, b] : lf->entries) {
          if (b == LinkForm::kLatencyCarrier) {
            carrier = HostPair{from, to, b};
          } else {
            pairs_.push_back(HostPair{from, to, b * scale});
          }
        }
        const size_t before = tasks.size();
        pack_tasks(lf->hosts, pairs_, carrier ? &*carrier : nullptr, lf->hosts.size(), tasks);
        trace_.link_form_tasks += tasks.size() - before;
      } else {
        std::unordered_map<int, uint32_t> index;
        task_hosts_.clear();
        for (const Transfer* t : ts) {
          for (int r : {t->src, t->dst}) {
            if (index.emplace(r, static_cast<uint32_t>(task_hosts_.size())).second)
              task_hosts_.push_back(platform_.gpus()[static_cast<size_t>(r)].host);
          }
          pairs_.push_back(HostPair{index[t->src], index[t->dst], t->bytes * scale});
        }
        // Sends (one pair per replica of a folded lane) as tasks of at most task_hosts hosts;
        // a collective's phase stays one task per block, so that its pair form and its link
        // form (and an in-memory cluster and its XML) stay the same model.
        pack_tasks(task_hosts_, pairs_, nullptr, chain->instance ? task_hosts_.size() : options_.task_hosts, tasks);
      }
    }
    chain->tasks_left = tasks.size();
    for (const auto& task : tasks) {
      auto exec = sg::Exec::init()
                      ->set_hosts(task.hosts)
                      ->set_flops_amounts(std::vector<double>(task.hosts.size(), 0.0))
                      ->set_bytes_amounts(task.bytes);
      auto h = std::make_unique<Handle>();
      h->kind = Handle::PhaseTask;
      h->chain = chain;
      ++trace_.ptasks;
      ++trace_.activities;
      launch(exec, std::move(h));
    }
  }

  static bool same_phase(const Phase& a, const Phase& b) {
    if (a.transfers.size() != b.transfers.size() || a.byte_scale != b.byte_scale) return false;
    for (size_t i = 0; i < a.transfers.size(); ++i) {
      const auto &x = a.transfers[i], &y = b.transfers[i];
      if (x.src != y.src || x.dst != y.dst || x.bytes != y.bytes) return false;
    }
    return true;
  }

  // Largest route latency among the transfers of a phase (routes cached per pair).
  double phase_latency(const Phase& ph) {
    double worst = 0;
    for (const auto& t : ph.transfers) {
      const uint64_t key = (static_cast<uint64_t>(t.src) << 32) | static_cast<uint32_t>(t.dst);
      auto it = latency_cache_.find(key);
      if (it == latency_cache_.end()) {
        std::vector<uint32_t> ids;
        double lat = 0;
        platform_.route_ids(t.src, t.dst, ids, &lat);
        it = latency_cache_.emplace(key, lat).first;
      }
      worst = std::max(worst, it->second);
    }
    return worst;
  }

  void start_delay(const std::shared_ptr<Chain>& chain) {
    const double d = chain->delay_after;
    chain->delay_after = 0;
    auto h = std::make_unique<Handle>();
    h->kind = Handle::PhaseDelay;
    h->chain = chain;
    start_timer(d, std::move(h));
  }

  void finish_chain(const std::shared_ptr<Chain>& chain) {
    if (chain->counted) {
      chain->counted = false;
      --net_users_;
    }
    if (chain->links != nullptr) {
      real_links_.add(*chain->links, -1);
      chain->links = nullptr;
    }
    if (chain->instance) {
      if (--chain->instance->groups_left == 0) finish_collective(chain->instance);
      return;
    }
    P2PMsg& msg = *chain->msg;
    msg.arrived = true;
    lanes_[msg.send.first].active_comm--;
    complete_op(msg.send.first, msg.send.second);
    if (msg.has_recv) {
      lanes_[msg.recv.first].active_comm--;
      complete_op(msg.recv.first, msg.recv.second);
    }
  }

  // ---- plans and closed forms (sim/closed_form.hpp; analytical fidelity, flow shortcuts
  // and link accounting) ----

  // The phases of a collective, per group of two or more ranks (possibly empty), and the
  // algorithm of the first group with transfers. They depend only on the key (groups, type,
  // size, routing). Flow keeps them for the instances to come; analytical evaluates each
  // key once and drops them (a 4,096-rank all-to-all plans 16.7 M transfers).
  struct Planned {
    std::string algorithm;  // "type:name"
    std::vector<std::shared_ptr<const std::vector<Phase>>> groups;
  };
  Planned plan_phases(uint32_t comm, const workloads::CollectiveOp& coll) const {
    Planned p;
    for (const auto& group : program_.comms[comm].groups) {
      if (group.size() < 2) continue;
      const Algorithm& algo = selector_.select(group, coll, topo_);
      auto phases = std::make_shared<const std::vector<Phase>>(algo.phases(group, coll, topo_));
      if (!phases->empty() && p.algorithm.empty()) p.algorithm = std::string(workloads::to_string(coll.type)) + ":" + algo.name;
      p.groups.push_back(std::move(phases));
    }
    return p;
  }
  const Planned& plan(const CollKey& key, const workloads::CollectiveOp& coll) {
    auto [slot, fresh] = planned_.try_emplace(key);
    if (fresh) slot->second = plan_phases(key.comm, coll);
    return slot->second;
  }

  const Evaluation& evaluate(const CollKey& key, const workloads::CollectiveOp& coll) {
    auto it = evaluations_.find(key);
    if (it != evaluations_.end()) return it->second;
    // Flow keeps the phases for the instances to come; analytical evaluates each key once.
    Planned dropped;
    const Planned& planned = analytical_ ? (dropped = plan_phases(key.comm, coll)) : plan(key, coll);
    Evaluation ev = closed_.collective(planned.groups, planned.algorithm);
    return evaluations_.emplace(key, std::move(ev)).first->second;
  }

  // Bytes per link over the step: each distinct collective and send, times its uses.
  void account_links() {
    const size_t links = platform_.all_links().size();
    std::vector<double> total(links, 0.0);
    std::vector<char> used(links, 0);  // a link may carry 0 bytes and still be listed
    auto add = [&](const Evaluation& ev, size_t uses) {
      for (const auto& [id, b] : ev.link_bytes) {
        total[id] += b * static_cast<double>(uses);
        used[id] = 1;
      }
      trace_.transfers += ev.transfers * uses;
    };
    for (const auto& [key, use] : uses_) {
      if (use.second == nullptr) continue;
      add(evaluate(key, *use.second), use.first);
    }
    for (const auto& [key, n] : p2p_uses_) {
      auto it = p2p_memo_.find(key);
      if (it == p2p_memo_.end())
        it = p2p_memo_.emplace(key, closed_.send(p2p_phase(std::get<0>(key), std::get<1>(key), std::get<2>(key)))).first;
      add(it->second, n);
    }
    // By link name: link ids are positions in the platform's name order.
    trace_.link_bytes.clear();
    trace_.link_bytes.reserve(static_cast<size_t>(std::count(used.begin(), used.end(), 1)));
    for (uint32_t id = 0; id < links; ++id)
      if (used[id] != 0) trace_.link_bytes.emplace_back(id, total[id]);
  }

  void check_finished() {
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

  const Platform& platform_;
  const Program& program_;
  const CostModel& cost_;
  const AlgorithmSelector& selector_;
  ExecutorOptions options_;
  const bool analytical_;
  TopologyView topo_;
  double contention_ = 1.0;
  std::vector<LaneState> lanes_;
  std::vector<uint32_t> lane_of_rank_;
  std::vector<size_t> participants_;
  std::map<std::pair<uint32_t, uint64_t>, std::shared_ptr<Instance>> instances_;
  // Queues of one (source lane, destination lane, tag), dropped when both are empty: tags are
  // mostly used once (per micro-batch and stage), and S1's thousands of sends each left an
  // entry with two std::deques behind (a deque allocates on construction). Vectors: a queue
  // rarely holds more than one entry.
  struct P2PQueue {
    std::vector<std::shared_ptr<P2PMsg>> unmatched;        // sent, no receive issued yet
    std::vector<std::pair<uint32_t, uint32_t>> recvs;      // receives waiting for a send
  };
  std::map<std::tuple<uint32_t, uint32_t, uint32_t>, P2PQueue> p2p_;
  std::unordered_map<Handle*, std::pair<std::unique_ptr<Handle>, sg::ExecPtr>> handles_;
  std::vector<sg::ExecPtr> retired_;
  int depth_ = 0;
  std::unordered_map<uint64_t, double> latency_cache_;
  std::vector<HostPair> pairs_;          // next_phase scratch
  std::vector<sg::Host*> task_hosts_;    // next_phase scratch
  LinkForms link_forms_{platform_.fabric()};  // keyed by phases, which planned_ keeps
  std::set<std::string> algorithms_;
  // Flow memoization.
  size_t net_users_ = 0;  // running chains and memo timers
  std::vector<std::shared_ptr<Instance>> clean_;
  std::vector<Timed> timed_;
  LinkUsers real_links_, timer_links_;
  std::vector<char> mine_;  // before_real_traffic: the links of the traffic about to start
  std::map<CollKey, double> memo_;
  std::unordered_map<const std::vector<double>*, uint32_t> matrix_ids_;
  std::map<CollKey, Planned> planned_;
  // Closed forms and link accounting.
  ClosedForm closed_;
  std::map<CollKey, Evaluation> evaluations_;
  std::map<P2PKey, Evaluation> p2p_memo_;
  std::map<CollKey, std::pair<size_t, const workloads::CollectiveOp*>> uses_;
  std::map<P2PKey, size_t> p2p_uses_;
  // Analytical clock.
  double clock_ = 0;
  uint64_t next_seq_ = 0;
  std::priority_queue<Event, std::vector<Event>, std::greater<>> queue_;
  std::multiset<double> alarms_;  // flow: pending alarm times
  bool draining_ = false;
  bool in_simgrid_ = false;  // flow: inside Engine::run/run_until (SimGrid callbacks)
  double target_ = 0;        // flow: the time SimGrid runs until
  // Progress.
  size_t events_ = 0, ops_total_ = 0;
  std::chrono::steady_clock::time_point wall0_, last_progress_;
  ExecutionTrace trace_;
};

}  // namespace

const char* to_string(Fidelity f) { return f == Fidelity::Analytical ? "analytical" : "flow"; }

Fidelity parse_fidelity(const std::string& text, const std::string& where) {
  if (text == "flow") return Fidelity::Flow;
  if (text == "analytical") return Fidelity::Analytical;
  throw core::InputError(where, "unknown fidelity '" + text + "'; valid: flow (SimGrid flows, the default), analytical (closed forms)");
}

ExecutionTrace execute(const Platform& platform, const Program& program, const CostModel& cost,
                       const AlgorithmSelector& selector, const ExecutorOptions& options) {
  Engine engine(platform, program, cost, selector, options);
  return engine.run();
}

}  // namespace tcsim::sim
