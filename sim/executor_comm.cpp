// The executor's communication (sim/executor_engine.hpp): collective rendezvous, flow
// shortcuts (memo and closed-form timers), point-to-point, phases as SimGrid parallel
// tasks, plans and link accounting.

#include <algorithm>
#include <map>
#include <memory>
#include <cstdint>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include <simgrid/s4u.hpp>

#include "sim/executor_engine.hpp"
#include "sim/parallel_task.hpp"

namespace tcsim::sim::executor_detail {

// ---- collectives ----

void Engine::arrive_collective(uint32_t lane, uint32_t i) {
  const Op& op = op_of(lane, i);
  auto& st = lanes_[lane];
  uint64_t seq = st.coll_seq[op.coll.comm]++;
  // Its NCCL kernel is resident from here, spinning on its SMs while it waits for the
  // other members: compute this lane launches meanwhile runs on the remaining SMs. (Counting
  // from the start of the instance instead made replicas that arrive at the same instant
  // differ by the order in which they were issued.)
  st.active_comm++;
  auto fresh = [&] {
    auto inst = std::make_shared<Instance>();
    inst->comm = op.coll.comm;
    inst->seq = seq;
    inst->expected = participants_[op.coll.comm];
    return inst;
  };
  if (participants_[op.coll.comm] == 1) {
    // Every group of the communicator is in this lane (folded TP and EP groups): nothing to
    // wait for, no rendezvous entry.
    if (analytical_) {
      // Nor an instance or a handle: a timer of its closed form, the op itself the event
      // (as a compute op's), ended by Engine::dispatch as finish_collective would.
      const Use& use = use_of(op.coll);
      trace_.ops[lane][i].start = now();
      ++trace_.activities;
      queue_.push(Event{now() + use.ev->duration, next_seq_++, nullptr, lane, i | kCollectiveEnd});
      return;
    }
    auto inst = fresh();
    inst->members.emplace_back(lane, i);
    start_collective(inst);
    return;
  }
  auto key = std::make_pair(op.coll.comm, seq);
  auto& inst = instances_[key];
  if (!inst) inst = fresh();
  inst->members.emplace_back(lane, i);
  if (inst->members.size() < inst->expected) return;
  auto ready = inst;
  instances_.erase(key);
  start_collective(ready);
}

// Uneven all-to-all matrices are told apart by the order in which they first appear, not
// by address, so that every map keyed by CollKey iterates the same way in every run.
CollKey Engine::key_of(const workloads::CollectiveOp& c) {
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
// The use of coll's key, counted once more, evaluated when the fidelity needs its closed
// form. Looked up first among the keys seen on its communicator (a handful: the map
// lookup and key were a tenth of S3's analytical execution).
Engine::Use& Engine::use_of(const workloads::CollectiveOp& coll) {
  if (use_cache_.size() <= coll.comm) use_cache_.resize(coll.comm + 1);
  Use* found = nullptr;
  for (const auto& c : use_cache_[coll.comm]) {
    if (c.type == coll.type && c.bytes == coll.bytes && c.matrix == coll.matrix && c.max_nodes == coll.max_nodes) {
      found = c.use;
      break;
    }
  }
  if (found == nullptr) {
    const CollKey key = key_of(coll);  // numbers a new matrix in order of first appearance
    found = &uses_[key];               // a map: the address stays
    found->key = key;
    use_cache_[coll.comm].push_back(UseCache{coll.type, coll.bytes, coll.matrix, coll.max_nodes, found});
  }
  Use& use = *found;
  if (use.op == nullptr) use.op = &coll;
  ++use.count;
  if ((analytical_ || options_.memoize) && use.ev == nullptr) {
    use.ev = &evaluate(use.key, coll);  // evaluations_ is a map: the address stays
    if (analytical_ && !use.ev->algorithm.empty()) algorithms_.insert(use.ev->algorithm);
  }
  return use;
}

void Engine::start_collective(const std::shared_ptr<Instance>& inst) {
  auto [lane0, op0] = inst->members.front();
  const workloads::CollectiveOp& coll = op_of(lane0, op0).coll;
  for (auto [l, i] : inst->members) trace_.ops[l][i].start = now();
  const Use& use = use_of(coll);
  inst->key = use.key;
  if (analytical_) {
    auto h = std::make_unique<Handle>();
    h->kind = Handle::InstanceTimer;
    h->instance = inst;
    start_timer(use.ev->duration, std::move(h));
    return;
  }
  // Flow shortcuts. A collective whose links carry nothing else, and whose groups share
  // no link, takes exactly its closed form (each phase one L07 task, or blocks of one,
  // with nothing else on its links): a timer stands for it. On an idle network, an
  // identical collective that ran alone gives the duration of one whose groups do share
  // links. Any real transfer that later needs one of a timer's links turns the timer
  // back into transfers (before_real_traffic).
  const Evaluation* ev = use.ev;  // null without memoize
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
size_t Engine::start_chains(const std::shared_ptr<Instance>& inst, double remaining) {
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

void Engine::start_timed(const std::shared_ptr<Instance>& inst, const std::shared_ptr<Chain>& chain, const Evaluation& ev, double d) {
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

void Engine::timed_done(Handle* h) {
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
void Engine::before_real_traffic(const Evaluation* ev) {
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

void Engine::finish_collective(const std::shared_ptr<Instance>& inst) {
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
Phase Engine::p2p_phase(uint32_t src, uint32_t dst, double bytes) const {
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
void Engine::arrive_p2p(uint32_t lane, uint32_t i) {
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
  if (memo == p2p_memo_.end() && (analytical_ || options_.memoize)) memo = shifted_send(key);
  // Analytical: a send evaluated before, or one shifted from it (so with transfers),
  // needs no phase of its own.
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
    if (it == p2p_memo_.end()) {
      it = p2p_memo_.emplace(key, send_closed_form(lane, op.p2p.peer_lane, op.p2p.bytes, p)).first;
      ++trace_.evaluated_forms;
      if (options_.shifted_forms) {
        auto [shape, base] = shape_of(key);
        shifted_.insert(std::move(shape), base, it->second);
      }
    }
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

void Engine::attach_recv(P2PMsg& msg, uint32_t lane, uint32_t i) {
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

// A rank's position among the ranks marked so far (marked_, first seen first), marking it
// if new; clear_positions() unmarks them all. Replaces a hash map per phase (rehashing was
// 3% of S1's flow run at 2,048 GPUs).
uint32_t Engine::position_of(int rank) {
  if (position_.empty()) position_.assign(static_cast<size_t>(platform_.size()), -1);
  int32_t& p = position_[static_cast<size_t>(rank)];
  if (p < 0) {
    p = static_cast<int32_t>(marked_.size());
    marked_.push_back(rank);
  }
  return static_cast<uint32_t>(p);
}

void Engine::clear_positions() {
  for (int r : marked_) position_[static_cast<size_t>(r)] = -1;
  marked_.clear();
}

// Starts the next phase of a chain as parallel tasks, or finishes the chain.
void Engine::next_phase(const std::shared_ptr<Chain>& chain) {
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
  //
  // A sparse large phase (at most two transfers per host: a ring or a pairwise-exchange
  // step of a big data-parallel group) is not cut by nodes but into tasks of at most
  // split_above_hosts hosts, each holding whole transfers along the group's order
  // (pack_tasks). Cut by nodes, a 256-member ring step whose members are all on different
  // nodes was 256 tasks of one transfer each: 306,000 parallel tasks in a 32,768-GPU step
  // (Llama 3 405B, DP256), against 3,300 at DP128 (docs/PERFORMANCE.md, session 9).
  bool split = false, sparse = false;
  const std::vector<Transfer>& transfers = transfers_of(ph);
  if (options_.split_phases && transfers.size() > options_.split_above_hosts) {
    // Counted in full only while the phase can still be sparse.
    const bool may_be_sparse = transfers.size() <= 2 * static_cast<size_t>(platform_.size());
    for (const auto& t : transfers) {
      position_of(t.src);
      position_of(t.dst);
      if (!may_be_sparse && marked_.size() > options_.split_above_hosts) break;
    }
    const size_t hosts = marked_.size();
    clear_positions();
    split = hosts > options_.split_above_hosts;
    sparse = split && may_be_sparse && chain->instance && transfers.size() <= 2 * hosts;
  }
  std::map<std::pair<int, int>, std::vector<const Transfer*>> blocks;
  const bool by_node = split && !sparse;
  for (const auto& t : transfers) {
    const int sn = by_node ? platform_.gpus()[static_cast<size_t>(t.src)].node : 0;
    const int dn = by_node ? platform_.gpus()[static_cast<size_t>(t.dst)].node : 0;
    blocks[{sn, dn}].push_back(&t);
  }
  // Sends (one pair per replica of a folded lane) are cut into tasks of at most task_hosts
  // hosts, sparse large phases into tasks of at most split_above_hosts (above); any other
  // collective phase stays one task per block, so that its pair form and its link form
  // (and an in-memory cluster and its XML) stay the same model.
  const size_t max_hosts = !chain->instance ? options_.task_hosts : sparse ? options_.split_above_hosts : SIZE_MAX;
  std::vector<TaskSpec> tasks;
  for (const auto& [key, ts] : blocks) {
    // The link form for collective phases only: they live as long as the run (planned_),
    // so their address keys its cache; a send's phase is freed with its chain (and has
    // a pair per link anyway).
    const LinkForm* lf = !split && chain->instance && options_.link_form ? link_forms_.get(ph, ts) : nullptr;
    pairs_.clear();
    if (lf != nullptr) {
      for (const auto& [from, to, b] : lf->entries)
        pairs_.push_back(HostPair{from, to, b == LinkForm::kLatencyCarrier ? b : b * scale});
      const size_t before = tasks.size();
      pack_tasks(lf->hosts, pairs_, max_hosts, tasks);
      trace_.link_form_tasks += tasks.size() - before;
    } else {
      task_hosts_.clear();
      for (const Transfer* t : ts) {
        const uint32_t from = position_of(t->src), to = position_of(t->dst);
        pairs_.push_back(HostPair{from, to, t->bytes * scale});
      }
      for (int r : marked_) task_hosts_.push_back(platform_.gpus()[static_cast<size_t>(r)].host);
      clear_positions();
      pack_tasks(task_hosts_, pairs_, max_hosts, tasks);
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

bool Engine::same_phase(const Phase& a, const Phase& b) {
  if (transfer_count(a) != transfer_count(b) || a.byte_scale != b.byte_scale) return false;
  if (a.all_pairs && b.all_pairs) return a.all_pairs->members == b.all_pairs->members && a.all_pairs->bytes == b.all_pairs->bytes;
  const std::vector<Transfer> ea = a.all_pairs ? expand_transfers(a) : std::vector<Transfer>{},
                              eb = b.all_pairs ? expand_transfers(b) : std::vector<Transfer>{};
  const auto& ta = a.all_pairs ? ea : a.transfers;
  const auto& tb = b.all_pairs ? eb : b.transfers;
  for (size_t i = 0; i < ta.size(); ++i) {
    const auto &x = ta[i], &y = tb[i];
    if (x.src != y.src || x.dst != y.dst || x.bytes != y.bytes) return false;
  }
  return true;
}

// A collective phase's transfers as a list: all_pairs phases are expanded once, when the
// flow fidelity first runs one as parallel tasks (closed forms never need the list).
const std::vector<Transfer>& Engine::transfers_of(const Phase& ph) {
  if (!ph.all_pairs) return ph.transfers;
  auto [it, fresh] = expanded_.try_emplace(&ph);
  if (fresh) it->second = expand_transfers(ph);
  return it->second;
}

// Largest route latency among the transfers of a phase (routes cached per pair).
double Engine::phase_latency(const Phase& ph) {
  double worst = 0;
  for_each_transfer(ph, [&](int src, int dst, double) {
    const uint64_t key = (static_cast<uint64_t>(src) << 32) | static_cast<uint32_t>(dst);
    auto it = latency_cache_.find(key);
    if (it == latency_cache_.end()) it = latency_cache_.emplace(key, platform_.for_each_hop(src, dst, [](uint32_t) {})).first;
    worst = std::max(worst, it->second);
  });
  return worst;
}

void Engine::start_delay(const std::shared_ptr<Chain>& chain) {
  const double d = chain->delay_after;
  chain->delay_after = 0;
  auto h = std::make_unique<Handle>();
  h->kind = Handle::PhaseDelay;
  h->chain = chain;
  start_timer(d, std::move(h));
}

void Engine::finish_chain(const std::shared_ptr<Chain>& chain) {
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

Engine::Planned Engine::plan_phases(uint32_t comm, const workloads::CollectiveOp& coll) const {
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

const Engine::Planned& Engine::plan(const CollKey& key, const workloads::CollectiveOp& coll) {
  auto [slot, fresh] = planned_.try_emplace(key);
  if (fresh) slot->second = plan_phases(key.comm, coll);
  return slot->second;
}

const Evaluation& Engine::evaluate(const CollKey& key, const workloads::CollectiveOp& coll) {
  auto it = evaluations_.find(key);
  if (it != evaluations_.end()) return it->second;
  EvaluationCache* cache = options_.evaluations.get();
  EvaluationCache::Collective shared;
  if (cache != nullptr) {
    shared = {program_.comms[key.comm].groups, key.type, key.bytes, coll.matrix != nullptr ? *coll.matrix : std::vector<double>{},
              key.max_nodes};
    if (const Evaluation* hit = cache->find(shared)) return evaluations_.emplace(key, *hit).first->second;
  }
  std::pair<ShiftedForms::Shape, int> shape;
  Evaluation ev;
  if (options_.shifted_forms) {
    shape = shape_of(key);
    if (shifted_.find(shape.first, shape.second, ev, needs_links())) {
      ++trace_.shifted_forms;
      if (cache != nullptr) cache->insert(std::move(shared), ev);
      return evaluations_.emplace(key, std::move(ev)).first->second;
    }
  }
  // Flow keeps the phases for the instances to come; analytical evaluates each key once.
  Planned dropped;
  const Planned& planned = analytical_ ? (dropped = plan_phases(key.comm, coll)) : plan(key, coll);
  ev = closed().collective(planned.groups, planned.algorithm);
  ++trace_.evaluated_forms;
  if (cache != nullptr) cache->insert(std::move(shared), ev);
  const Evaluation& kept = evaluations_.emplace(key, std::move(ev)).first->second;
  if (options_.shifted_forms) shifted_.insert(std::move(shape.first), shape.second, kept);
  return kept;
}

std::pair<ShiftedForms::Shape, int> Engine::shape_of(const CollKey& key) const {
  std::pair<ShiftedForms::Shape, int> out;
  auto& [shape, base] = out;
  const auto& groups = program_.comms[key.comm].groups;
  base = !groups.empty() && !groups.front().empty() ? groups.front().front() : 0;
  shape.kind = 0;
  shape.type = key.type;
  shape.bytes = key.bytes;
  shape.matrix = key.matrix;
  shape.max_nodes = key.max_nodes;
  size_t n = groups.size();
  for (const auto& g : groups) n += g.size();
  shape.ranks.reserve(n);
  for (const auto& g : groups) ShiftedForms::add_group(shape, g, base);
  return out;
}

std::pair<ShiftedForms::Shape, int> Engine::shape_of(const P2PKey& key) const {
  std::pair<ShiftedForms::Shape, int> out;
  auto& [shape, base] = out;
  const auto& src = program_.lanes[std::get<0>(key)].ranks;
  const auto& dst = program_.lanes[std::get<1>(key)].ranks;
  base = !src.empty() ? src.front() : 0;
  shape.kind = 1;
  shape.bytes = std::get<2>(key);
  shape.ranks.reserve(2 + src.size() + dst.size());
  ShiftedForms::add_group(shape, src, base);
  ShiftedForms::add_group(shape, dst, base);
  return out;
}

std::map<P2PKey, Evaluation>::iterator Engine::shifted_send(const P2PKey& key) {
  if (!options_.shifted_forms) return p2p_memo_.end();
  auto [shape, base] = shape_of(key);
  Evaluation ev;
  if (!shifted_.find(shape, base, ev, needs_links())) return p2p_memo_.end();
  ++trace_.shifted_forms;
  return p2p_memo_.emplace(key, std::move(ev)).first;
}

Evaluation Engine::send_closed_form(uint32_t src, uint32_t dst, double bytes, const Phase& p) {
  EvaluationCache* cache = options_.evaluations.get();
  if (cache == nullptr) return closed().send(p);
  EvaluationCache::Send key{program_.lanes[src].ranks, program_.lanes[dst].ranks, bytes};
  if (const Evaluation* hit = cache->find(key)) return *hit;
  Evaluation ev = closed().send(p);
  cache->insert(std::move(key), ev);
  return ev;
}

// Bytes per link over the step (and the transfers): each distinct collective and send,
// times its uses.
void Engine::account_links() {
  // Without link_bytes, the transfers only (the closed forms may hold no links then).
  const bool per_link = options_.link_bytes;
  const size_t links = per_link ? platform_.all_links().size() : 0;
  std::vector<double> total(links, 0.0);
  std::vector<char> used(links, 0);  // a link may carry 0 bytes and still be listed
  auto add = [&](const Evaluation& ev, size_t uses) {
    if (per_link) {
      for (const auto& [id, b] : ev.link_bytes) {
        total[id] += b * static_cast<double>(uses);
        used[id] = 1;
      }
    }
    trace_.transfers += ev.transfers * uses;
  };
  for (const auto& [key, use] : uses_) {
    if (use.op == nullptr) continue;
    add(evaluate(key, *use.op), use.count);
  }
  for (const auto& [key, n] : p2p_uses_) {
    auto it = p2p_memo_.find(key);
    if (it == p2p_memo_.end())
      it = p2p_memo_.emplace(key, closed().send(p2p_phase(std::get<0>(key), std::get<1>(key), std::get<2>(key)))).first;
    add(it->second, n);
  }
  trace_.link_bytes.clear();
  if (!per_link) return;
  // By link name: link ids are positions in the platform's name order.
  trace_.link_bytes.reserve(static_cast<size_t>(std::count(used.begin(), used.end(), 1)));
  for (uint32_t id = 0; id < links; ++id)
    if (used[id] != 0) trace_.link_bytes.emplace_back(id, total[id]);
}

}  // namespace tcsim::sim::executor_detail
