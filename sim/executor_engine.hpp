// The executor's engine (private to sim/executor*.cpp; the interface is sim/executor.hpp).
// Split by theme: sim/executor.cpp holds the run loop, the clock (SimGrid activities or
// the executor's own queue), ops and stream issue, and the deadlock report;
// sim/executor_comm.cpp the collectives, flow shortcuts, point-to-point, phases as SimGrid
// parallel tasks, plans and link accounting.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <unordered_map>
#include <utility>
#include <vector>

#include <simgrid/s4u.hpp>

#include "sim/closed_form.hpp"
#include "sim/event_queue.hpp"
#include "sim/executor.hpp"
#include "sim/link_form.hpp"
#include "sim/parallel_task.hpp"

namespace tcsim::sim::executor_detail {
namespace sg = simgrid::s4u;
using workloads::Op;
using workloads::OpKind;
using workloads::Program;

constexpr int kStreams = workloads::kStreamCount;

struct LaneState {
  std::vector<int> pending;                       // unfinished deps per op
  // Successors of op i: succ[succ_begin[i] .. succ_begin[i + 1]), in program order. One
  // flat array per lane instead of a vector per op (S1: 123,440 heap blocks).
  std::vector<uint32_t> succ_begin, succ;
  std::vector<uint32_t> stream_order[kStreams];   // op indices per stream, program order
  size_t cursor[kStreams] = {};
  bool busy[kStreams] = {};
  std::vector<uint32_t> coll_seq;  // per communicator: collectives issued so far
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
        analytical_(options.fidelity == Fidelity::Analytical) {}

  ExecutionTrace run();

private:
  const Op& op_of(uint32_t lane, uint32_t op) const { return program_.lanes[lane].ops[op]; }
  double now() const { return analytical_ ? clock_ : sg::Engine::get_clock(); }

  // ---- the clock: SimGrid activities (flow) or the executor's own queue (analytical) ----

  void start_timer(double seconds, std::unique_ptr<Handle> h);
  void start_compute_timer(double seconds, uint32_t lane, uint32_t op);
  void run_flow();
  void arm();
  void drain(double alarm_time);
  void expire_due();

  // SimGrid's own timing precision (precision/timing, 1e-9 s): a timer due within it of an
  // alarm expires with that alarm.
  static constexpr double kTimerTolerance = 1e-9;

  void launch(const sg::ExecPtr& exec, std::unique_ptr<Handle> h);

  struct Event {
    double time;
    uint64_t seq;
    Handle* handle;         // null: op `op` of lane `lane` ends (a compute op, or a
                            // one-lane collective when op has kCollectiveEnd set)
    uint32_t lane = 0, op = 0;
  };


  static constexpr uint32_t kCollectiveEnd = 1u << 31;

  void run_queue();
  void dispatch(const Event& e);
  void count_event();
  void on_complete(const sg::Activity& a);
  void dispatch(std::unique_ptr<Handle> h);
  void report_progress();

  // ---- ops ----

  void try_issue(uint32_t lane, int stream);
  void start_compute(uint32_t lane, uint32_t i);
  double compute_seconds(const workloads::ComputeOp& c);
  void complete_op(uint32_t lane, uint32_t i);

  // ---- collectives ----

  void arrive_collective(uint32_t lane, uint32_t i);
  CollKey key_of(const workloads::CollectiveOp& c);
  struct Use;
  Use& use_of(const workloads::CollectiveOp& coll);
  void start_collective(const std::shared_ptr<Instance>& inst);
  size_t start_chains(const std::shared_ptr<Instance>& inst, double remaining);

  // ---- flow shortcuts: timers for communication alone on its links ----

  struct Timed {
    std::shared_ptr<Instance> inst;  // a collective, or
    std::shared_ptr<Chain> chain;    // a send
    Handle* handle = nullptr;
    double end = 0, duration = 0;
    const Evaluation* ev = nullptr;
  };

  void start_timed(const std::shared_ptr<Instance>& inst, const std::shared_ptr<Chain>& chain, const Evaluation& ev, double d);
  void timed_done(Handle* h);
  void before_real_traffic(const Evaluation* ev);
  void finish_collective(const std::shared_ptr<Instance>& inst);

  // ---- point-to-point ----

  Phase p2p_phase(uint32_t src, uint32_t dst, double bytes) const;
  void arrive_p2p(uint32_t lane, uint32_t i);
  void attach_recv(P2PMsg& msg, uint32_t lane, uint32_t i);

  // ---- phases as SimGrid parallel tasks (flow fidelity) ----

  void next_phase(const std::shared_ptr<Chain>& chain);
  uint32_t position_of(int rank);
  void clear_positions();
  static bool same_phase(const Phase& a, const Phase& b);
  double phase_latency(const Phase& ph);
  const std::vector<Transfer>& transfers_of(const Phase& ph);
  void start_delay(const std::shared_ptr<Chain>& chain);
  void finish_chain(const std::shared_ptr<Chain>& chain);

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
  Planned plan_phases(uint32_t comm, const workloads::CollectiveOp& coll) const;
  const Planned& plan(const CollKey& key, const workloads::CollectiveOp& coll);
  const Evaluation& evaluate(const CollKey& key, const workloads::CollectiveOp& coll);
  // The closed form of a send of p's transfers from lane src to lane dst (from the shared
  // cache when there is one).
  Evaluation send_closed_form(uint32_t src, uint32_t dst, double bytes, const Phase& p);
  void account_links();

  void check_finished();

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
  std::unordered_map<const Phase*, std::vector<Transfer>> expanded_;  // transfers_of, keyed as link_forms_
  std::vector<HostPair> pairs_;          // next_phase scratch
  std::vector<sg::Host*> task_hosts_;    // next_phase scratch
  std::vector<int32_t> position_;        // position_of: per rank, -1 or its position in marked_
  std::vector<int> marked_;              // position_of: marked ranks, first seen first
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
  // Made on first use: its per-link arrays (S3: 100,000 links) are not needed by a run
  // whose closed forms all come from a shared EvaluationCache.
  std::optional<ClosedForm> closed_;
  ClosedForm& closed() {
    if (!closed_) closed_.emplace(platform_);
    return *closed_;
  }
  std::map<CollKey, Evaluation> evaluations_;
  std::map<P2PKey, Evaluation> p2p_memo_;
  // Closed forms by shape (ExecutorOptions::shifted_forms); they point into evaluations_
  // and p2p_memo_.
  ShiftedForms shifted_{platform_};
  // The shape of a collective key's communicator or of a send between two lanes, and the
  // rank it is relative to (ShiftedForms::Shape).
  std::pair<ShiftedForms::Shape, int> shape_of(const CollKey& key) const;
  std::pair<ShiftedForms::Shape, int> shape_of(const P2PKey& key) const;
  // p2p_memo_'s entry for a send shifted from one evaluated before (added now), or end().
  std::map<P2PKey, Evaluation>::iterator shifted_send(const P2PKey& key);
  // Whether closed forms need their per-link bytes: for the flow fidelity's link sharing
  // and for link accounting.
  bool needs_links() const { return !analytical_ || options_.link_bytes; }
  // Per collective key: instances started, the op (for account_links) and its evaluation
  // once made (one map lookup per instance instead of two).
  struct Use {
    size_t count = 0;
    const workloads::CollectiveOp* op = nullptr;
    const Evaluation* ev = nullptr;
    CollKey key;
  };
  std::map<CollKey, Use> uses_;
  // Per communicator, the keys seen on it (Engine::use_of).
  struct UseCache {
    workloads::CollectiveType type;
    double bytes;
    const std::vector<double>* matrix;
    uint32_t max_nodes;
    Use* use;
  };
  std::vector<std::vector<UseCache>> use_cache_;
  std::map<P2PKey, size_t> p2p_uses_;
  // compute_seconds: durations by op shape, direct-mapped.
  struct SecondsMemo {
    bool valid = false;
    double flops = 0, hbm_bytes = 0, fixed_seconds = 0;
    workloads::ComputeClass cls{};
    workloads::Precision precision{};
    double seconds = 0;
  };
  static constexpr int kSecondsMemoBits = 8;
  std::vector<SecondsMemo> seconds_memo_ = std::vector<SecondsMemo>(size_t{1} << kSecondsMemoBits);
  // Analytical clock.
  double clock_ = 0;
  uint64_t next_seq_ = 0;
  EventQueue<Event> queue_;  // sim/event_queue.hpp
  std::multiset<double> alarms_;  // flow: pending alarm times
  bool draining_ = false;
  bool in_simgrid_ = false;  // flow: inside Engine::run/run_until (SimGrid callbacks)
  double target_ = 0;        // flow: the time SimGrid runs until
  // Progress.
  size_t events_ = 0, ops_total_ = 0;
  std::chrono::steady_clock::time_point wall0_, last_progress_;
  ExecutionTrace trace_;
};

}  // namespace tcsim::sim::executor_detail
