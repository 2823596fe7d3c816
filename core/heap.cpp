#include "core/heap.hpp"

#include <malloc.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include <array>
#include <cstdint>
#include <cstdlib>

namespace tcsim::core {

HeapRange back_heap_with_huge_pages() noexcept {
#ifdef MADV_HUGEPAGE
  // glibc's largest mmap threshold is 32 MiB; blocks under it come from the heap, which
  // then keeps freed memory (already faulted in) for the next allocation.
  constexpr size_t kChunk = 31u << 20, kChunks = 32;  // ~1 GiB of address space, not of memory
  // Under a limit on address space (ulimit -v, as some batch systems set) the ~1 GiB kept
  // for the heap would count against it for the process's life: leave malloc alone there.
  struct rlimit as {};
  if (getrlimit(RLIMIT_AS, &as) != 0 || as.rlim_cur != RLIM_INFINITY) return {};
  if (mallopt(M_MMAP_THRESHOLD, 32 << 20) == 0 || mallopt(M_TRIM_THRESHOLD, 1 << 30) == 0) return {};
  std::array<void*, kChunks> grow{};
  for (auto& p : grow) p = std::malloc(kChunk);  // contiguous: the heap grows by brk
  // The first chunk starts where the heap's free top did, below the old break.
  const auto lo = reinterpret_cast<uintptr_t>(grow[0]);
  for (void* p : grow) std::free(p);  // back into the heap's top, not trimmed
  if (lo == 0) return {};
  auto* hi = static_cast<char*>(sbrk(0));
  // Page-aligned: the kernel maps huge pages where a whole aligned 2 MiB lies in the
  // marked mapping.
  const auto page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  const uintptr_t begin = lo & ~(page - 1);
  const auto end = reinterpret_cast<uintptr_t>(hi);
  if (hi == reinterpret_cast<char*>(-1) || end <= begin) return {};
  if (madvise(reinterpret_cast<void*>(begin), end - begin, MADV_HUGEPAGE) != 0) return {};
  return {begin, end};
#else
  return {};
#endif
}

}  // namespace tcsim::core
