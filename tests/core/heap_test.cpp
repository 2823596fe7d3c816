#include "core/heap.hpp"

#include <gtest/gtest.h>
#include <sys/resource.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

namespace {

// The VmFlags line of the /proc/self/smaps mapping that holds address a.
std::string vm_flags_of(uintptr_t a) {
  std::ifstream smaps("/proc/self/smaps");
  std::string line;
  bool inside = false;
  while (std::getline(smaps, line)) {
    unsigned long lo = 0, hi = 0;  // a mapping's first line: "lo-hi perms offset ..."
    if (line.find('-') < line.find(' ') && std::sscanf(line.c_str(), "%lx-%lx ", &lo, &hi) == 2) inside = a >= lo && a < hi;
    if (inside && line.rfind("VmFlags:", 0) == 0) return line;
  }
  return "";
}

TEST(HugePageHeap, MarksTheHeapAndMallocServesFromIt) {
  if (!std::filesystem::exists("/sys/kernel/mm/transparent_hugepage/enabled")) GTEST_SKIP() << "kernel without THP";
  struct rlimit as {};
  if (getrlimit(RLIMIT_AS, &as) != 0 || as.rlim_cur != RLIM_INFINITY) GTEST_SKIP() << "address space limited (ulimit -v)";
  const auto r = tcsim::core::back_heap_with_huge_pages();
  ASSERT_GT(r.end, r.begin);
  EXPECT_GE(r.end - r.begin, uintptr_t{512} << 20);  // most of the ~1 GiB grown
  // The kernel keeps the mark: "hg" in the mapping's VmFlags.
  EXPECT_NE(vm_flags_of(r.begin).find(" hg"), std::string::npos) << vm_flags_of(r.begin);
  // Large blocks under malloc's mmap threshold (32 MiB) now come from the marked heap (small
  // ones may still come from chunks freed earlier, below it).
  for (size_t bytes : {size_t{1} << 20, size_t{20} << 20}) {
    std::unique_ptr<char, decltype(&std::free)> p(static_cast<char*>(std::malloc(bytes)), &std::free);
    ASSERT_NE(p, nullptr);
    std::memset(p.get(), 1, bytes);
    const auto a = reinterpret_cast<uintptr_t>(p.get());
    EXPECT_TRUE(a >= r.begin && a + bytes <= r.end) << bytes << " bytes at " << a;
  }
}

// A forked child's new blocks start on a 2 MiB page of its own: the boundary returned is
// 2 MiB-aligned, above everything the parent allocated, and the child's next blocks lie
// right above it. (In a child: the heap is marked once per process.)
TEST(HugePageHeap, ForkedChildStartsOnAFreshHugePage) {
  if (!std::filesystem::exists("/sys/kernel/mm/transparent_hugepage/enabled")) GTEST_SKIP() << "kernel without THP";
  struct rlimit as {};
  if (getrlimit(RLIMIT_AS, &as) != 0 || as.rlim_cur != RLIM_INFINITY) GTEST_SKIP() << "address space limited (ulimit -v)";
  EXPECT_EXIT(
      {
        const auto r = tcsim::core::back_heap_with_huge_pages();
        if (r.end <= r.begin) std::exit(0);  // nothing marked: nothing to check
        auto* parents = static_cast<char*>(std::malloc(300000));  // the parent's last block
        std::memset(parents, 1, 300000);
        const auto parent_end = reinterpret_cast<uintptr_t>(parents) + 300000;
        const uintptr_t boundary = tcsim::core::start_child_heap_on_fresh_huge_page();
        if (boundary == 0 || boundary % (uintptr_t{2} << 20) != 0 || boundary < parent_end) std::exit(1);
        const auto next = reinterpret_cast<uintptr_t>(std::malloc(100000));
        if (next < boundary || next >= boundary + 4096) std::exit(2);
        std::exit(0);
      },
      ::testing::ExitedWithCode(0), "");
}

// Under ulimit -v the heap is left as it is (the test runs in a child with the limit set).
TEST(HugePageHeap, LeavesALimitedAddressSpaceAlone) {
  EXPECT_EXIT(
      {
        struct rlimit as {};
        getrlimit(RLIMIT_AS, &as);
        as.rlim_cur = as.rlim_max == RLIM_INFINITY ? (rlim_t{64} << 30) : as.rlim_max;
        setrlimit(RLIMIT_AS, &as);
        const auto r = tcsim::core::back_heap_with_huge_pages();
        std::exit(r.end == r.begin ? 0 : 1);
      },
      ::testing::ExitedWithCode(0), "");
}

}  // namespace
