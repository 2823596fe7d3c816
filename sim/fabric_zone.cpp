#include "sim/fabric_zone.hpp"

#include <simgrid/kernel/routing/NetPoint.hpp>

namespace tcsim::sim {
namespace sg = simgrid::s4u;

FabricZone::FabricZone(const std::string& name, std::shared_ptr<const topology::Cluster> cluster, sg::NetZone* parent)
    : NetZoneImpl(name), cluster_(std::move(cluster)) {
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
  for (const auto& l : c.links) {
    auto* sd = zone->create_split_duplex_link(l.name, l.bandwidth.value());
    sd->set_latency(l.latency.value());
    sd->seal();
    up_.push_back(sd->get_link_up());
    down_.push_back(sd->get_link_down());
    latency_.push_back(l.latency.value());
    all_links_.emplace_back(sd->get_link_up(), l.kind);
    all_links_.emplace_back(sd->get_link_down(), l.kind);
  }
  zone->seal();
}

void FabricZone::get_local_route(const simgrid::kernel::routing::NetPoint* src,
                                 const simgrid::kernel::routing::NetPoint* dst, simgrid::kernel::routing::Route* into,
                                 double* latency) {
  const auto s = static_cast<int>(src->id()), d = static_cast<int>(dst->id());
  if (s == d) return;
  cluster_->route(s, d, scratch_);
  for (const auto& hop : scratch_) {
    auto idx = static_cast<size_t>(hop.link);
    into->link_list_.push_back((hop.up ? up_[idx] : down_[idx])->get_impl());
    if (latency != nullptr) *latency += latency_[idx];
  }
}

void FabricZone::route(int src, int dst, std::vector<sg::Link*>& into, double* latency) {
  if (src == dst) return;
  cluster_->route(src, dst, scratch_);
  for (const auto& hop : scratch_) {
    auto idx = static_cast<size_t>(hop.link);
    into.push_back(hop.up ? up_[idx] : down_[idx]);
    if (latency != nullptr) *latency += latency_[idx];
  }
}

void FabricZone::route(int src, int dst, const std::vector<uint32_t>& ids, std::vector<uint32_t>& into, double* latency) {
  if (src == dst) return;
  cluster_->route(src, dst, scratch_);
  for (const auto& hop : scratch_) {
    auto idx = static_cast<size_t>(hop.link);
    into.push_back(ids[2 * idx + (hop.up ? 0 : 1)]);
    if (latency != nullptr) *latency += latency_[idx];
  }
}

}  // namespace tcsim::sim
