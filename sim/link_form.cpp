#include "sim/link_form.hpp"

#include <algorithm>

#include "sim/fabric_zone.hpp"

namespace tcsim::sim {

const LinkForm* LinkForms::get(const Phase& ph, const std::vector<const Transfer*>& ts) {
  const FabricZone* fz = fabric_;
  if (fz == nullptr || !fz->link_form()) return nullptr;
  auto [it, fresh] = forms_.try_emplace(&ph);
  if (!fresh) return it->second ? &*it->second : nullptr;
  if (load_.empty()) {
    load_.assign(2 * fz->link_count(), 0.0);
    used_.assign(2 * fz->link_count(), 0);
    pos_.assign(fz->vertex_count(), -1);
  }
  std::vector<size_t> touched;
  const Transfer* longest = nullptr;
  double longest_lat = -1;
  size_t pairs = 0;
  for (const Transfer* t : ts) {
    if (t->bytes <= 0) continue;  // SimGrid skips them too
    ++pairs;
    fz->hops(t->src, t->dst, hops_);
    double lat = 0;
    for (const auto& h : hops_) {
      lat += fz->hop_latency(h);
      const size_t id = 2 * static_cast<size_t>(h.link) + (h.up ? 0 : 1);
      if (!used_[id]) {
        used_[id] = 1;
        touched.push_back(id);
      }
      load_[id] += t->bytes;
    }
    if (lat > longest_lat) {
      longest_lat = lat;
      longest = t;
    }
  }
  // SimGrid's latency is the longest route's: summed hop by hop as FabricZone sums it.
  std::optional<LinkForm> form;
  if (longest != nullptr && touched.size() + 1 < pairs) {
    form.emplace();
    std::sort(touched.begin(), touched.end());  // deterministic host order
    std::vector<int> vertices;
    auto pos = [&](int vertex) {
      int& p = pos_[static_cast<size_t>(vertex)];
      if (p < 0) {
        p = static_cast<int>(vertices.size());
        vertices.push_back(vertex);
        form->hosts.push_back(fz->vertex_host(vertex));
      }
      return static_cast<uint32_t>(p);
    };
    for (size_t id : touched) {
      const auto [from, to] = fz->hop_ends(topology::Hop{static_cast<int>(id / 2), id % 2 == 0});
      form->entries.emplace_back(pos(from), pos(to), load_[id]);
    }
    form->entries.emplace_back(pos(longest->src), pos(longest->dst), LinkForm::kLatencyCarrier);
    for (int v : vertices) pos_[static_cast<size_t>(v)] = -1;
  }
  for (size_t id : touched) {
    load_[id] = 0;
    used_[id] = 0;
  }
  it->second = std::move(form);
  return it->second ? &*it->second : nullptr;
}

}  // namespace tcsim::sim
