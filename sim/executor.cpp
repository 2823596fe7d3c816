#include "sim/executor.hpp"

#include <algorithm>
#include <deque>
#include <map>
#include <memory>
#include <set>
#include <tuple>
#include <unordered_map>

#include <simgrid/s4u.hpp>

#include "core/error.hpp"
#include "core/log.hpp"

namespace tcsim::sim {
namespace sg = simgrid::s4u;
using workloads::Op;
using workloads::OpKind;
using workloads::Program;

namespace {

constexpr int kStreams = workloads::kStreamCount;

struct LaneState {
  std::vector<int> pending;                       // unfinished deps per op
  std::vector<std::vector<uint32_t>> successors;  // per op
  std::vector<uint32_t> stream_order[kStreams];   // op indices per stream, program order
  size_t cursor[kStreams] = {};
  bool busy[kStreams] = {};
  std::map<uint32_t, uint32_t> coll_seq;  // comm -> collectives issued so far
  int active_comm = 0;                    // communication transfers in flight
  size_t done = 0;
};

// A collective instance waiting for, or running with, its member lanes.
struct Instance {
  uint32_t comm = 0;
  uint64_t seq = 0;
  size_t expected = 0;
  std::vector<std::pair<uint32_t, uint32_t>> members;  // (lane, op) arrived
  size_t groups_left = 0;
};

// One message of a send: its transfer may arrive before the receive is issued.
struct P2PMsg {
  std::pair<uint32_t, uint32_t> send, recv;  // (lane, op)
  bool has_recv = false;
  bool arrived = false;
};

// A running chain of phases for one group of one collective (or one p2p transfer).
struct Chain {
  std::vector<Phase> phases;
  size_t next = 0;
  std::shared_ptr<Instance> instance;  // for collectives
  std::shared_ptr<struct P2PMsg> msg;  // for point-to-point transfers
  double delay_after = 0;  // latency of coalesced steps, paid after the current task
  size_t tasks_left = 0;   // parallel tasks of the current phase still running
};

struct Handle {
  enum Kind { ComputeTimer, PhaseTask, PhaseDelay } kind = ComputeTimer;
  uint32_t lane = 0, op = 0;  // ComputeTimer
  std::shared_ptr<Chain> chain;  // PhaseTask
};

class Engine {
public:
  Engine(const Platform& platform, const Program& program, const CostModel& cost, const AlgorithmSelector& selector,
         const ExecutorOptions& options)
      : platform_(platform), program_(program), cost_(cost), selector_(selector), options_(options) {}

  ExecutionTrace run() {
    if (program_.world_size > platform_.size()) {
      throw core::InputError("program", "needs " + std::to_string(program_.world_size) + " GPUs but platform " +
                                            platform_.path() + " has " + std::to_string(platform_.size()));
    }
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
      st.successors.resize(ops.size());
      trace_.ops[l].resize(ops.size());
      for (uint32_t i = 0; i < ops.size(); ++i) {
        st.pending[i] = static_cast<int>(ops[i].deps.size());
        for (uint32_t d : ops[i].deps) st.successors[d].push_back(i);
        st.stream_order[static_cast<int>(ops[i].stream)].push_back(i);
      }
    }

    sg::Activity::on_completion_cb([this](const sg::Activity& a) { on_complete(a); });
    for (uint32_t l = 0; l < nl; ++l)
      for (int s = 0; s < kStreams; ++s) try_issue(l, s);
    sg::Engine::get_instance()->run();

    check_finished();
    trace_.step_time = sg::Engine::get_clock();
    return std::move(trace_);
  }

private:
  const Op& op_of(uint32_t lane, uint32_t op) const { return program_.lanes[lane].ops[op]; }
  double now() const { return sg::Engine::get_clock(); }

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
    auto exec = sg::Exec::init()->set_host(platform_.timer_host())->set_flops_amount(seconds);
    auto h = std::make_unique<Handle>();
    h->kind = Handle::ComputeTimer;
    h->lane = lane;
    h->op = i;
    launch(exec, std::move(h));
  }

  void launch(const sg::ExecPtr& exec, std::unique_ptr<Handle> h) {
    Handle* key = h.get();
    exec->set_data(key);
    handles_.emplace(key, std::make_pair(std::move(h), exec));
    ++trace_.activities;
    exec->start();
  }

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
    if (inst->members.size() < inst->expected) return;
    auto ready = inst;
    instances_.erase(key);
    start_collective(ready);
  }

  void start_collective(const std::shared_ptr<Instance>& inst) {
    auto [lane0, op0] = inst->members.front();
    const workloads::CollectiveOp& coll = op_of(lane0, op0).coll;
    const auto& comm = program_.comms[inst->comm];
    for (auto [l, i] : inst->members) {
      trace_.ops[l][i].start = now();
      lanes_[l].active_comm++;
    }
    std::vector<std::shared_ptr<Chain>> chains;
    for (const auto& group : comm.groups) {
      if (group.size() < 2) continue;
      const Algorithm& algo = selector_.select(group, coll, topo_);
      auto chain = std::make_shared<Chain>();
      chain->phases = algo.phases(group, coll, topo_);
      chain->instance = inst;
      if (chain->phases.empty()) continue;
      if (chains.empty()) trace_.algorithms_used.push_back(std::string(workloads::to_string(coll.type)) + ":" + algo.name);
      chains.push_back(std::move(chain));
    }
    inst->groups_left = chains.size();
    if (chains.empty()) {
      finish_collective(inst);
      return;
    }
    for (auto& c : chains) next_phase(c);
  }

  void finish_collective(const std::shared_ptr<Instance>& inst) {
    for (auto [l, i] : inst->members) {
      lanes_[l].active_comm--;
      complete_op(l, i);
    }
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
    auto& q = p2p_[std::make_tuple(src, dst, op.p2p.tag)];
    trace_.ops[lane][i].start = now();
    if (!is_send) {
      if (q.unmatched.empty()) {
        q.recvs.emplace_back(lane, i);
        return;
      }
      auto msg = q.unmatched.front();
      q.unmatched.pop_front();
      attach_recv(*msg, lane, i);
      return;
    }
    auto msg = std::make_shared<P2PMsg>();
    msg->send = {lane, i};
    lanes_[lane].active_comm++;
    if (!q.recvs.empty()) {
      auto [rl, ri] = q.recvs.front();
      q.recvs.pop_front();
      attach_recv(*msg, rl, ri);
    } else {
      q.unmatched.push_back(msg);
    }
    auto chain = std::make_shared<Chain>();
    chain->msg = msg;
    Phase p;
    const auto& sr = program_.lanes[lane].ranks;
    const auto& dr = program_.lanes[op.p2p.peer_lane].ranks;
    for (size_t k = 0; k < std::max(sr.size(), dr.size()); ++k) {
      int a = sr[k % sr.size()], b = dr[k % dr.size()];
      if (a != b && op.p2p.bytes > 0) p.transfers.push_back({a, b, op.p2p.bytes});
    }
    if (!p.transfers.empty()) chain->phases.push_back(std::move(p));
    next_phase(chain);
  }

  void attach_recv(P2PMsg& msg, uint32_t lane, uint32_t i) {
    msg.recv = {lane, i};
    msg.has_recv = true;
    if (msg.arrived) {
      complete_op(lane, i);
    } else {
      lanes_[lane].active_comm++;
    }
  }

  // Starts the next phase of a chain as one parallel task, or finishes the chain.
  void next_phase(const std::shared_ptr<Chain>& chain) {
    if (chain->next >= chain->phases.size()) {
      finish_chain(chain);
      return;
    }
    const Phase& ph = chain->phases[chain->next++];
    // Coalescing: m consecutive identical phases (the 2(n-1) steps of a ring) run as one
    // parallel task of m times the bytes, followed by (m-1) x the phase's route latency.
    // On an idle fabric this is exact; under contention each step would see the same
    // sharing anyway, only the latency gaps move to the end (ARCHITECTURE.md).
    size_t repeat = 1;
    while (chain->next < chain->phases.size() && same_phase(chain->phases[chain->next], ph)) {
      ++repeat;
      ++chain->next;
    }
    chain->delay_after = repeat > 1 ? static_cast<double>(repeat - 1) * phase_latency(ph) : 0.0;
    const double scale = ph.byte_scale * static_cast<double>(repeat);
    // Sparse phases: one parallel task per (source node, destination node) block of the
    // phase, so a task's dense k x k matrix stays small (a 4,096-rank ring step is ~1,000
    // tasks of a few hosts, not one task of 4,096^2 entries). Blocks progress
    // independently, sharing links max-min fairly; the phase ends when the last one ends.
    std::map<std::pair<int, int>, std::vector<const Transfer*>> blocks;
    for (const auto& t : ph.transfers) {
      const int sn = options_.split_phases ? platform_.gpus()[static_cast<size_t>(t.src)].node : 0;
      const int dn = options_.split_phases ? platform_.gpus()[static_cast<size_t>(t.dst)].node : 0;
      blocks[{sn, dn}].push_back(&t);
    }
    chain->tasks_left = blocks.size();
    for (const auto& [key, ts] : blocks) {
      std::vector<sg::Host*> hosts;
      std::unordered_map<int, size_t> index;
      for (const Transfer* t : ts) {
        for (int r : {t->src, t->dst}) {
          if (index.emplace(r, hosts.size()).second) hosts.push_back(platform_.gpus()[static_cast<size_t>(r)].host);
        }
      }
      const size_t k = hosts.size();
      std::vector<double> bytes(k * k, 0.0);
      for (const Transfer* t : ts) bytes[index[t->src] * k + index[t->dst]] += t->bytes * scale;
      auto exec = sg::Exec::init()->set_hosts(hosts)->set_flops_amounts(std::vector<double>(k, 0.0))->set_bytes_amounts(bytes);
      auto h = std::make_unique<Handle>();
      h->kind = Handle::PhaseTask;
      h->chain = chain;
      ++trace_.ptasks;
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
        std::vector<sg::Link*> links;
        double lat = 0;
        platform_.gpus()[static_cast<size_t>(t.src)].host->route_to(platform_.gpus()[static_cast<size_t>(t.dst)].host, links, &lat);
        it = latency_cache_.emplace(key, lat).first;
      }
      worst = std::max(worst, it->second);
    }
    return worst;
  }

  void start_delay(const std::shared_ptr<Chain>& chain) {
    const double d = chain->delay_after;
    chain->delay_after = 0;
    auto exec = sg::Exec::init()->set_host(platform_.timer_host())->set_flops_amount(d);
    auto h = std::make_unique<Handle>();
    h->kind = Handle::PhaseDelay;
    h->chain = chain;
    launch(exec, std::move(h));
  }

  void finish_chain(const std::shared_ptr<Chain>& chain) {
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

  void on_complete(const sg::Activity& a) {
    // Activities finished in earlier callbacks are no longer referenced by SimGrid.
    retired_.clear();
    auto* h = a.get_data<Handle>();
    auto it = handles_.find(h);
    if (h == nullptr || it == handles_.end()) return;
    auto owned = std::move(it->second.first);
    retired_.push_back(std::move(it->second.second));  // keep alive until this signal returns
    handles_.erase(it);
    if (owned->kind == Handle::ComputeTimer) {
      complete_op(owned->lane, owned->op);
    } else if (owned->kind == Handle::PhaseTask && --owned->chain->tasks_left > 0) {
      return;  // other blocks of this phase still run
    } else if (owned->kind == Handle::PhaseTask && owned->chain->delay_after > 0) {
      start_delay(owned->chain);
    } else {
      next_phase(owned->chain);
    }
  }

  void complete_op(uint32_t lane, uint32_t i) {
    auto& st = lanes_[lane];
    trace_.ops[lane][i].end = now();
    st.done++;
    int stream = static_cast<int>(op_of(lane, i).stream);
    st.busy[stream] = false;
    st.cursor[stream]++;
    for (uint32_t s : st.successors[i]) st.pending[s]--;
    // Issue whatever became ready: this stream's next op, and successors' streams.
    try_issue(lane, stream);
    for (uint32_t s : st.successors[i]) try_issue(lane, static_cast<int>(op_of(lane, s).stream));
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
  TopologyView topo_;
  double contention_ = 1.0;
  std::vector<LaneState> lanes_;
  std::vector<uint32_t> lane_of_rank_;
  std::vector<size_t> participants_;
  std::map<std::pair<uint32_t, uint64_t>, std::shared_ptr<Instance>> instances_;
  struct P2PQueue {
    std::deque<std::shared_ptr<P2PMsg>> unmatched;        // sent, no receive issued yet
    std::deque<std::pair<uint32_t, uint32_t>> recvs;      // receives waiting for a send
  };
  std::map<std::tuple<uint32_t, uint32_t, uint32_t>, P2PQueue> p2p_;
  std::unordered_map<Handle*, std::pair<std::unique_ptr<Handle>, sg::ExecPtr>> handles_;
  std::vector<sg::ExecPtr> retired_;
  std::unordered_map<uint64_t, double> latency_cache_;
  ExecutionTrace trace_;
};

}  // namespace

ExecutionTrace execute(const Platform& platform, const Program& program, const CostModel& cost,
                       const AlgorithmSelector& selector, const ExecutorOptions& options) {
  Engine engine(platform, program, cost, selector, options);
  return engine.run();
}

}  // namespace tcsim::sim
