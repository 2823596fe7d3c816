// Parallel tasks for a phase of transfers (flow fidelity).
//
// SimGrid's parallel task takes a dense hosts x hosts matrix of bytes, and L07 scans all of
// it twice when the task starts, so a task costs hosts^2 even when it has one pair per
// host. A send between folded lanes is such a task: one pair per replica (S1 at 2,048 GPUs:
// 128 pairs among 256 hosts, 65,536 matrix entries, for each of 2,685 sends; 176 million
// entries in all, against 28 million for every collective phase). Measured (session 7):
// with the sends cut into tasks of at most 32 hosts, S1's flow run went from 4.3 to 3.0 s
// and the growth of its cost with ranks from ^1.4 to ^1.2 (docs/PERFORMANCE.md).
//
// pack_tasks cuts a sparse set of pairs (at most two pairs per host) with more than
// max_hosts hosts into tasks of at most max_hosts hosts, each pair in exactly one task, so
// every link carries the same load. The tasks progress independently, each at its own max-min rate, and the phase ends with the
// last: on links that carry nothing else that is exactly the one-task time (the most
// loaded link sets both); under contention a task off the congested links no longer waits
// for the others, as the replicas' transfers would not. Dense sets stay one task.
#pragma once

#include <cstdint>
#include <vector>

#include <simgrid/s4u.hpp>

namespace tcsim::sim {

/// Bytes from hosts[from] to hosts[to].
struct HostPair {
  uint32_t from = 0, to = 0;
  double bytes = 0;
};

/// One SimGrid parallel task: its hosts and their dense bytes matrix (row = source).
struct TaskSpec {
  std::vector<simgrid::s4u::Host*> hosts;
  std::vector<double> bytes;
};

/// Appends the tasks for `pairs` over `hosts` to out (see above); hosts absent from every
/// pair are left out. Pairs of the same two hosts in one task add up.
void pack_tasks(const std::vector<simgrid::s4u::Host*>& hosts, const std::vector<HostPair>& pairs, size_t max_hosts,
                std::vector<TaskSpec>& out);

}  // namespace tcsim::sim
