// The process heap on transparent huge pages.
//
// On the project's VM (a paravirtualised guest) the first write to each 4 KiB page costs
// about 10 us (core/prefault.hpp), so a run that touches 40 MiB of fresh memory spends
// 0.1 s in page faults: more than the analytical fidelity's whole S1 step (docs/
// PERFORMANCE.md). A 2 MiB huge page is one fault for 512 of them. Debian's kernels leave
// transparent huge pages to madvise(MADV_HUGEPAGE) and glibc's malloc only asks for them
// under GLIBC_TUNABLES=glibc.malloc.hugetlb=1, which must be set before the process starts.
// This does the same from inside: it grows the brk heap once (virtual memory only, nothing
// is touched), marks it MADV_HUGEPAGE, and keeps malloc from giving it back or serving
// blocks under 32 MiB from separate mappings. Measured (bench scale, analytical): S1
// 0.12 -> 0.06 s, S3 0.16 -> 0.06 s; flow S1 7.5 -> 5.7-7.7 s.
#pragma once

#include <cstdint>

namespace tcsim::core {

/// Addresses [begin, end) of the heap marked for huge pages.
struct HeapRange {
  uintptr_t begin = 0, end = 0;
};

/// Call first thing in main(), before threads start. Returns the heap marked for huge
/// pages: empty where the kernel or the allocator refused, or the process's address space
/// is limited (RLIMIT_AS); malloc then works as before.
HeapRange back_heap_with_huge_pages() noexcept;

/// Call first thing in a forked child: moves malloc's free top to the next 2 MiB boundary
/// of the marked heap (the skipped bytes are never touched), so that the child's new blocks
/// lie in huge pages its parent never mapped. Otherwise they start in the parent's last,
/// partly used huge page, which the kernel splits on the child's first write and copies
/// 4 KiB page by page (about 10 us a fault on the project's VM: 2.5 ms of S1's 4 ms
/// platform stage). Returns the boundary, or 0 where the heap is not marked (nothing done).
uintptr_t start_child_heap_on_fresh_huge_page() noexcept;

}  // namespace tcsim::core
