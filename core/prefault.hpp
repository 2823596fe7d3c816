// Pre-faulting memory that is about to be written in full.
//
// On the project's VM (a paravirtualised guest) the first write to each 4 KiB page costs
// about 10 us, most of it the trap into the kernel and back rather than zeroing the page.
// madvise(MADV_POPULATE_WRITE) (Linux 5.14) maps a whole range in one call: 16 arrays of
// 600 KiB took 30-65 ms touched page by page and 17-40 ms pre-faulted on this VM
// (docs/PERFORMANCE.md). It does what the writes would do anyway, only sooner, so call it
// only on memory that will be written soon. A hint: where the kernel lacks it, nothing
// happens.
#pragma once

#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>

namespace tcsim::core {

/// Maps the whole pages inside [p, p + bytes) now, writable. Contents are unchanged.
inline void prefault_for_write(void* p, size_t bytes) noexcept {
#ifdef MADV_POPULATE_WRITE
  static const auto page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  const auto first = reinterpret_cast<uintptr_t>(p);
  const uintptr_t begin = (first + page - 1) & ~(page - 1), end = (first + bytes) & ~(page - 1);
  if (p != nullptr && end > begin) (void)madvise(reinterpret_cast<void*>(begin), end - begin, MADV_POPULATE_WRITE);
#else
  (void)p, (void)bytes;
#endif
}

}  // namespace tcsim::core
