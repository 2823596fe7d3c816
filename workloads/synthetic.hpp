// Synthetic programs for benchmarks and engine tests (issue 6 scenarios S4, S5): fixed
// compute durations and collectives of given sizes, hardware independent.
#pragma once

#include "workloads/program.hpp"

namespace tcsim::workloads {

/// S4: per rank `layers` x (compute, all-to-all, compute, all-to-all) forward and the same
/// backward, then one all-reduce over all ranks. The all-to-alls run over groups of
/// `a2a_group` consecutive ranks (0 = all ranks). One lane stands for all ranks when fold.
Program synthetic_moe(int ranks, int layers, double compute_s, double a2a_bytes, double allreduce_bytes,
                      int a2a_group = 0, bool fold = true);

/// S5: one collective of `bytes` per rank over all ranks.
Program single_collective(int ranks, CollectiveType type, double bytes, bool fold = true);

}  // namespace tcsim::workloads
