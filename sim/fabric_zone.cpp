#include "sim/fabric_zone.hpp"

#include <algorithm>
#include <stdexcept>
#include <string>

#include <simgrid/kernel/routing/NetPoint.hpp>

namespace tcsim::sim {
namespace sg = simgrid::s4u;

FabricZone::FabricZone(const std::string& name, std::shared_ptr<const topology::Cluster> cluster, sg::NetZone* parent,
                       bool switch_hosts)
    : NetZoneImpl(name), cluster_(std::move(cluster)), link_form_(switch_hosts) {
  sg::NetZone* zone = get_iface();
  zone->set_parent(parent);
  const auto& c = *cluster_;
  const auto props = topology::to_properties(c.gpu);
  for (int r = 0; r < c.gpu_count(); ++r) {
    sg::Host* h = zone->create_host(c.host_name(r), c.gpu.bf16_flops.value());
    h->set_property("tcsim.role", "gpu");
    h->set_property("tcsim.rank", std::to_string(r));
    h->set_property("tcsim.node", std::to_string(c.node_of(r)));
    h->set_property("tcsim.index", std::to_string(c.index_of(r)));
    h->set_property("tcsim.domain", std::to_string(c.domain_of(r)));
    // The GPU spec on the first GPU only: every GPU of a generated cluster is the same one,
    // and Platform::collect reads the spec from the first GPU host (and compares the
    // gpu.name of the others where they have one). On all 16,384 GPUs of S3 these ~25
    // properties per host were most of the platform's build time and memory.
    if (r == 0)
      for (const auto& [k, v] : props) h->set_property(k, v);
    h->seal();
    hosts_.push_back(h);
  }
  // Switch hosts, created after the GPUs: netpoint id = vertex id (GPUs first, then switches).
  vertex_hosts_ = hosts_;
  for (size_t v = hosts_.size(); switch_hosts && v < static_cast<size_t>(c.vertex_count()); ++v) {
    sg::Host* h = zone->create_host("switch-" + c.vertex_name(static_cast<int>(v)), 1.0);
    h->set_property("tcsim.role", "switch");
    h->seal();
    vertex_hosts_.push_back(h);
  }
  if (switch_hosts) adjacent_.resize(static_cast<size_t>(c.vertex_count()));
  for (const auto& l : c.links) {
    auto* sd = zone->create_split_duplex_link(l.name, l.bandwidth.value());
    sd->set_latency(l.latency.value());
    sd->seal();
    up_.push_back(sd->get_link_up());
    down_.push_back(sd->get_link_down());
    up_impl_.push_back(up_.back()->get_impl());
    down_impl_.push_back(down_.back()->get_impl());
    latency_.push_back(l.latency.value());
    if (switch_hosts) {
      const int idx = static_cast<int>(up_.size() - 1);
      adjacent_[static_cast<size_t>(l.a)].emplace_back(l.b, 2 * idx);      // a -> b: up
      adjacent_[static_cast<size_t>(l.b)].emplace_back(l.a, 2 * idx + 1);  // b -> a: down
    }
    all_links_.emplace_back(sd->get_link_up(), l.kind);
    all_links_.emplace_back(sd->get_link_down(), l.kind);
  }
  for (auto& neighbours : adjacent_) {
    std::sort(neighbours.begin(), neighbours.end());
    // Two links between the same vertices: a pair of hosts could not name one of them.
    for (size_t i = 1; i < neighbours.size(); ++i) link_form_ = link_form_ && neighbours[i].first != neighbours[i - 1].first;
  }
  zone->seal();
}

void FabricZone::get_local_route(const simgrid::kernel::routing::NetPoint* src,
                                 const simgrid::kernel::routing::NetPoint* dst, simgrid::kernel::routing::Route* into,
                                 double* latency) {
  const auto s = static_cast<int>(src->id()), d = static_cast<int>(dst->id());
  if (s == d) return;
  const int gpus = static_cast<int>(hosts_.size());
  if (s >= gpus || d >= gpus) {  // only with switch hosts
    // A switch host: the one link between two adjacent vertices, no latency (the link form
    // carries the phase's latency on one real GPU pair, sim/link_form.hpp).
    const auto& from = adjacent_[static_cast<size_t>(s)];
    auto it = std::lower_bound(from.begin(), from.end(), std::make_pair(d, -1));
    if (it == from.end() || it->first != d) {
      throw std::logic_error("FabricZone: no link between vertices " + std::to_string(s) + " and " + std::to_string(d));
    }
    const auto idx = static_cast<size_t>(it->second / 2);
    into->link_list_.push_back(it->second % 2 == 0 ? up_impl_[idx] : down_impl_[idx]);
    return;
  }
  cluster_->route(s, d, scratch_);
  for (const auto& hop : scratch_) {
    auto idx = static_cast<size_t>(hop.link);
    into->link_list_.push_back(hop.up ? up_impl_[idx] : down_impl_[idx]);
    if (latency != nullptr) *latency += latency_[idx];
  }
}

}  // namespace tcsim::sim
