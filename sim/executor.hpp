// The executor: runs a Program on a loaded Platform with SimGrid as the clock and the
// network. No actors: activities are started from SimGrid's completion callbacks, so the
// whole step is one engine.run().
//
// Semantics, as on a GPU with CUDA streams and NCCL communicators:
//  - each lane has one queue per stream; an op starts when it is at the head of its
//    stream's queue and its dependencies are done (ops never overtake on a stream);
//  - compute ops are timers of the cost model's duration on the lane's GPU host,
//    slowed by SM contention while a communication kernel of that lane is running;
//  - a collective starts when every lane of its communicator has reached it (the k-th
//    collective issued on a communicator is the same instance on every member), then
//    runs its algorithm's phases, each phase one SimGrid parallel task carrying the
//    transfers of every group of the communicator;
//  - a send and its receive (same lanes, same tag, in order) rendezvous and move the
//    bytes of every replica pair in one parallel task.
// With ExecutorOptions::fidelity = analytical the same semantics run on the executor's own
// event queue, each collective a closed form over the platform's routes (see Fidelity).
// A program that cannot finish (a collective some member never reaches, a receive
// without a send) is reported with who waits on what, as an InputError.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "sim/closed_form.hpp"
#include "sim/collectives.hpp"
#include "sim/cost_model.hpp"
#include "sim/platform.hpp"
#include "workloads/program.hpp"

namespace tcsim::sim {

struct OpRecord {
  double ready = -1;  ///< reached the head of its stream with dependencies done
  double start = -1;  ///< started computing / transferring
  double end = -1;
};

/// How communication is timed.
///  - flow: every collective phase is SimGrid parallel tasks sharing the real links
///    max-min fairly with everything else in flight (the default);
///  - analytical: each collective (and each send) takes the closed form of its phases over
///    the same routes: per phase, the largest route latency plus the most loaded link's
///    bytes over its bandwidth, times the phase's repeat count; concurrent collectives do
///    not slow each other. No SimGrid activity runs; for plan search.
enum class Fidelity { Flow, Analytical };
const char* to_string(Fidelity f);
/// "flow" or "analytical"; anything else is an InputError naming both.
Fidelity parse_fidelity(const std::string& text, const std::string& where);

/// What a progress callback sees.
struct Progress {
  double sim_time = 0;    ///< simulated seconds so far
  size_t ops_done = 0, ops_total = 0;
  size_t events = 0;      ///< activities completed so far
  double wall_s = 0;      ///< since the executor started
};

struct ExecutionTrace {
  double step_time = 0;
  std::vector<std::vector<OpRecord>> ops;  ///< [lane][op]
  /// Algorithms chosen, "type:name", sorted, each once.
  std::vector<std::string> algorithms_used;
  size_t ptasks = 0;       ///< SimGrid parallel tasks started
  size_t link_form_tasks = 0;  ///< of which in link form (one host pair per link)
  size_t activities = 0;   ///< all SimGrid activities started (events, in analytical mode)
  /// flow: SimGrid execs started to stop the run at a timer (a timer queued by a transfer's
  /// completion before the time SimGrid runs until); other timers need none.
  size_t alarms = 0;
  size_t memo_hits = 0;     ///< flow: collectives and sends that ran as timers to the end
  size_t memo_replaced = 0; ///< flow: such timers turned back into transfers (traffic shared a link)
  /// Closed forms (collectives and sends) taken from a shifted one instead of evaluated
  /// (ExecutorOptions::shifted_forms); evaluated_forms: those evaluated.
  size_t shifted_forms = 0;
  size_t evaluated_forms = 0;
  /// Point-to-point transfers the step's collectives and sends comprise (repeats included),
  /// whatever the fidelity: the size of the communication a run simulates.
  size_t transfers = 0;
  /// (link id, bytes) for each link that carried traffic in the step (collectives and
  /// sends, byte_scale included), by id (Platform::all_links(), i.e. by name), for the
  /// per-tier utilisation report; links that carried nothing are absent. Empty when
  /// ExecutorOptions::link_bytes is off.
  std::vector<std::pair<uint32_t, double>> link_bytes;
};

struct ExecutorOptions {
  bool sm_contention = true;
  /// One parallel task per (source node, destination node) block of a phase whose
  /// transfers touch more than split_above_hosts hosts (see executor.cpp); smaller phases,
  /// and all phases when false, run as one task over all their hosts.
  bool split_phases = true;
  size_t split_above_hosts = 128;
  /// A send whose transfers have more hosts than this (a send between folded lanes moves
  /// one pair per replica) runs as parallel tasks of at most this many hosts each
  /// (sim/parallel_task.hpp).
  size_t task_hosts = 32;
  Fidelity fidelity = Fidelity::Flow;
  /// Flow fidelity: a collective (whose groups share no link) or a send whose links
  /// carry nothing else is a timer of its closed form, exact for one L07 task per phase;
  /// on an idle network, a collective identical to one that ran alone is a timer of that
  /// one's measured duration. When other traffic needs one of its links, the timer turns
  /// back into real transfers for its remaining bytes (executor.cpp, before_real_traffic).
  bool memoize = true;
  /// Flow fidelity on an in-memory fabric: a phase runs as one parallel task with one host
  /// pair per link it crosses (switches are hosts there) instead of one pair per transfer,
  /// when that has fewer pairs; same link loads and latency, much less SimGrid work
  /// (executor.cpp, link form).
  bool link_form = true;
  /// Closed forms of collectives and sends whose ranks are an evaluated one's shifted by
  /// a multiple of the fabric's route period are that one's, on the shifted links
  /// (ShiftedForms, sim/closed_form.hpp): the same numbers, without planning or routing
  /// them again. False: every one evaluated (for checking; results are the same).
  bool shifted_forms = true;
  /// Account the bytes every link carries over the step (ExecutionTrace::link_bytes, for
  /// the per-tier utilisation report). Callers that read only step times (plan search,
  /// `bench scale`) turn it off: an analytical run then keeps no per-link bytes at all
  /// (a closed form taken from a moved one is not moved link by link). The transfer count
  /// is kept either way.
  bool link_bytes = true;
  /// Closed forms shared with other runs on the same platform (plan search); nullptr:
  /// computed for this run only. Results are the same either way.
  std::shared_ptr<EvaluationCache> evaluations;
  /// Called at most every progress_interval_s of wall time while the step runs.
  std::function<void(const Progress&)> progress;
  double progress_interval_s = 0.5;
};

/// The SimGrid objects a platform built from a cluster needs for runs with these options:
/// none for the analytical fidelity, switch hosts too for the flow fidelity's link form.
inline SimgridObjects simgrid_objects(const ExecutorOptions& o) {
  if (o.fidelity == Fidelity::Analytical) return SimgridObjects::None;
  return o.link_form ? SimgridObjects::GpusAndSwitches : SimgridObjects::Gpus;
}

/// Runs program on platform in the current SimGrid engine. Call once per process.
ExecutionTrace execute(const Platform& platform, const workloads::Program& program, const CostModel& cost,
                       const AlgorithmSelector& selector, const ExecutorOptions& options = {});

}  // namespace tcsim::sim
