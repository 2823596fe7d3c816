#include "workloads/segment.hpp"

#include <algorithm>

namespace tcsim::workloads::segment {
namespace {

// DualPipe's overlapped forward & backward pair (arXiv 2412.19437 Fig. 4): each pass is cut
// after each of its EP all-to-alls into stretches of compute ending in one all-to-all, and
// the stretches alternate, backward first: B1 b1 | F1 f1 | B2 b2 | F2 f2 | ... On the
// in-order compute stream that is backward combine-gradient prep, forward attention,
// backward MLP, forward MLP, backward attention ..., and each all-to-all runs under the
// other pass's next stretch: the backward combine under the forward attention, the
// forward dispatch under the backward MLP, the backward dispatch under the forward MLP,
// the forward combine under the backward attention. segs[0] is the forward (the step
// with overlap_next), segs[1] the backward. False when either has no all-to-all (dense
// models keep the layer-by-layer interleave).
bool dualpipe_order(const std::vector<const Seg*>& segs, std::vector<std::pair<size_t, size_t>>& order) {
  if (segs.size() != 2) return false;
  std::vector<std::vector<std::pair<size_t, size_t>>> stretches(2);  // [begin, end) per segment
  for (size_t k = 0; k < 2; ++k) {
    size_t begin = 0;
    for (size_t i = 0; i < segs[k]->ops.size(); ++i) {
      if (segs[k]->ops[i].category == CommCategory::EpAllToAll) {
        stretches[k].emplace_back(begin, i + 1);
        begin = i + 1;
      }
    }
    if (stretches[k].empty()) return false;
    if (begin < segs[k]->ops.size()) stretches[k].emplace_back(begin, segs[k]->ops.size());
  }
  for (size_t u = 0; u < std::max(stretches[0].size(), stretches[1].size()); ++u)
    for (size_t k : {size_t{1}, size_t{0}})
      if (u < stretches[k].size())
        for (size_t i = stretches[k][u].first; i < stretches[k][u].second; ++i) order.emplace_back(k, i);
  return true;
}

}  // namespace

std::vector<std::pair<size_t, size_t>> emission_order(const std::vector<const Seg*>& segs) {
  std::vector<std::pair<size_t, size_t>> order;  // (segment, op)
  if (dualpipe_order(segs, order)) return order;
  // Unit by unit: the ops of unit u of each segment, then unit u + 1.
  std::vector<std::vector<size_t>> bounds(segs.size());
  size_t units = 0;
  for (size_t k = 0; k < segs.size(); ++k) {
    auto& b = bounds[k];
    b = segs[k]->units;
    b.push_back(0);
    b.push_back(segs[k]->ops.size());
    std::sort(b.begin(), b.end());
    b.erase(std::unique(b.begin(), b.end()), b.end());
    units = std::max(units, b.size() - 1);
  }
  for (size_t u = 0; u < units; ++u)
    for (size_t k = 0; k < segs.size(); ++k)
      if (u + 1 < bounds[k].size())
        for (size_t i = bounds[k][u]; i < bounds[k][u + 1]; ++i) order.emplace_back(k, i);
  return order;
}

}  // namespace tcsim::workloads::segment
