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
// A program that cannot finish (a collective some member never reaches, a receive
// without a send) is reported with who waits on what, as an InputError.
#pragma once

#include <string>
#include <vector>

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

struct ExecutionTrace {
  double step_time = 0;
  std::vector<std::vector<OpRecord>> ops;  ///< [lane][op]
  /// Algorithm chosen per collective instance, by label, for reports.
  std::vector<std::string> algorithms_used;
  size_t ptasks = 0;       ///< SimGrid parallel tasks started
  size_t activities = 0;   ///< all SimGrid activities started
};

struct ExecutorOptions {
  bool sm_contention = true;
  /// One parallel task per (source node, destination node) block of a phase (see
  /// executor.cpp); false runs each phase as one task over all its hosts.
  bool split_phases = true;
};

/// Runs program on platform in the current SimGrid engine. Call once per process.
ExecutionTrace execute(const Platform& platform, const workloads::Program& program, const CostModel& cost,
                       const AlgorithmSelector& selector, const ExecutorOptions& options = {});

}  // namespace tcsim::sim
