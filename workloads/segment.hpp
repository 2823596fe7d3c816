// Segments: the ops of one pass of a model chunk (or of anything the generator emits as a
// block), with dependencies local to the segment, and the order in which one or two
// segments are emitted onto a lane. Used by workloads/generator.cpp only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <utility>
#include <vector>

#include "workloads/program.hpp"

namespace tcsim::workloads::segment {

constexpr uint32_t kNone = UINT32_MAX;
constexpr uint32_t kGlobal = 0x80000000u;  // marks a dep on an already emitted lane op

// Ops of one pass (or of anything emitted as a block), with deps local to the segment
// (or global lane indices | kGlobal). Units (layers) let two segments interleave.
struct Seg {
  std::vector<Op> ops;
  std::vector<size_t> units;  // op index where each unit starts
  uint32_t last = kNone;
  std::vector<uint32_t> pending_ext;  // global deps for the next chained op
  std::vector<uint32_t> grads;        // gradient reductions (the optimizer waits for them)

  void unit() { units.push_back(ops.size()); }
  uint32_t add(Op op, Deps deps) {
    op.deps = std::move(deps);
    ops.push_back(std::move(op));
    return static_cast<uint32_t>(ops.size() - 1);
  }
  uint32_t add(Op op, std::initializer_list<uint32_t> deps) { return add(std::move(op), Deps(deps)); }
  uint32_t add(Op op, const std::vector<uint32_t>& deps) { return add(std::move(op), Deps(deps)); }
  // Appends op after the current tail (and any pending external deps); becomes the tail.
  uint32_t chain(Op op) {
    op.deps.clear();
    if (last != kNone) op.deps.push_back(last);
    for (uint32_t g : pending_ext) op.deps.push_back(g | kGlobal);
    pending_ext.clear();
    ops.push_back(std::move(op));
    last = static_cast<uint32_t>(ops.size() - 1);
    return last;
  }
};

/// The (segment, op) pairs of segs in the order they go onto the lane: a single segment in
/// order; two segments layer by layer (unit by unit), or, when both have EP all-to-alls,
/// as DualPipe's overlapped forward & backward pair (segment.cpp).
std::vector<std::pair<size_t, size_t>> emission_order(const std::vector<const Seg*>& segs);

}  // namespace tcsim::workloads::segment
