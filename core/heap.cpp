#include "core/heap.hpp"

#include <malloc.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include <array>
#include <cstdint>
#include <cstdlib>

namespace tcsim::core {

namespace {
HeapRange marked;  // what back_heap_with_huge_pages marked
}  // namespace

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
  marked = {begin, end};
  return marked;
#else
  return {};
#endif
}

uintptr_t start_child_heap_on_fresh_huge_page() noexcept {
  if (marked.end <= marked.begin) return 0;
  // The free top chunk runs from here to the break (freed memory is never trimmed: see
  // back_heap_with_huge_pages); a block taken from its start moves it.
  const struct mallinfo2 info = mallinfo2();
  const auto brk_end = reinterpret_cast<uintptr_t>(sbrk(0));
  if (brk_end == static_cast<uintptr_t>(-1) || info.keepcost > brk_end) return 0;
  const uintptr_t top = brk_end - info.keepcost;
  constexpr uintptr_t kHuge = uintptr_t{2} << 20, kSlack = uintptr_t{64} << 10;  // room for chunk headers
  const uintptr_t next = (top + kSlack + kHuge - 1) & ~(kHuge - 1);
  if (top < marked.begin || next + kHuge > brk_end) return 0;
  // Never freed: the child leaves with its results; only the block's header is written.
  if (std::malloc(next - top - 2 * sizeof(size_t)) == nullptr) return 0;
  return next;
}

}  // namespace tcsim::core
