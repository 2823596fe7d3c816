// How many CPUs this process may use: the default for commands that run work in parallel
// processes (`tcsim sweep run --jobs`, `tcsim plan search --jobs`).
#pragma once

#include <sched.h>
#include <unistd.h>

#include <algorithm>

namespace tcsim::core {

/// The CPUs this process may run on (sched_getaffinity: a Slurm allocation or taskset
/// limits it), at least 1.
inline int available_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (::sched_getaffinity(0, sizeof set, &set) == 0) return std::max(1, CPU_COUNT(&set));
  const long n = ::sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? static_cast<int>(n) : 1;
}

}  // namespace tcsim::core
