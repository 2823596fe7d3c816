#include "sim/platform.hpp"

#include <algorithm>
#include <filesystem>
#include <iterator>
#include <map>
#include <stdexcept>

#include "core/error.hpp"
#include "core/log.hpp"
#include "core/quantity.hpp"
#include "sim/fabric_zone.hpp"

namespace tcsim::sim {
namespace sg = simgrid::s4u;
using core::InputError;

void configure_engine(sg::Engine& engine) {
  // L07 parallel tasks: one multi-host activity per collective phase, links shared
  // max-min fairly by all concurrent phases. No TCP window, gamma or cross traffic in
  // this model (measured: 1 GB over 450 GB/s + 5 us takes exactly the ideal time).
  engine.set_config("host/model:ptask_L07");
  // L07 also bounds a task's rate by a TCP window (gamma / (2 x latency x bytes)); RDMA has
  // none. 1e30 keeps the bound finite and out of reach (no change to any result measured).
  engine.set_config("network/TCP-gamma:1e30");
}

namespace {

std::string link_kind(sg::Link* link) {
  if (const char* k = link->get_property("tcsim.kind")) return k;
  std::string name = link->get_name();
  if (name.rfind("nvl-", 0) == 0) return "nvlink";
  if (name.rfind("nic-", 0) == 0) return "nic";
  if (name.rfind("fab-", 0) == 0) return "fabric";
  return "other";
}

int int_prop(sg::Host* h, const char* key, const std::string& where) {
  const char* v = h->get_property(key);
  if (v == nullptr) {
    throw InputError(where, "GPU host '" + h->get_name() + "' lacks property " + key +
                                " (see platforms/README.md for the properties a GPU host carries)");
  }
  return static_cast<int>(core::parse_integer(v, where + ": host " + h->get_name() + " property " + key));
}

}  // namespace

void Platform::route(int src, int dst, std::vector<sg::Link*>& links, double* latency) const {
  if (fabric_ != nullptr) {
    fabric_->route(src, dst, links, latency);
    return;
  }
  gpus_[static_cast<size_t>(src)].host->route_to(gpus_[static_cast<size_t>(dst)].host, links, latency);
}

void Platform::route_ids(int src, int dst, std::vector<uint32_t>& ids, double* latency) const {
  if (fabric_ != nullptr) {
    fabric_->route(src, dst, zone_link_ids_, ids, latency);
    return;
  }
  std::vector<sg::Link*> links;
  route(src, dst, links, latency);
  for (sg::Link* l : links) {
    auto it = link_ids_.find(l);
    if (it == link_ids_.end()) throw std::logic_error("platform: a route uses link '" + l->get_name() + "' that the platform does not list");
    ids.push_back(it->second);
  }
}

const std::vector<sg::Link*>& Platform::links(const std::string& kind) const {
  if (kind == "nvlink") return nvlink_links_;
  if (kind == "nic") return nic_links_;
  if (kind == "fabric") return fabric_links_;
  return other_links_;
}

Platform Platform::build(sg::Engine& engine, const topology::Cluster& cluster, core::Overrides& overrides, bool switch_hosts) {
  // The zone registers itself with the engine; SimGrid owns it from here on.
  auto shared = std::make_shared<const topology::Cluster>(cluster);
  auto* root = sg::create_full_zone("tcsim");
  auto* zone = new FabricZone("tcsim-" + cluster.fabric, shared, root, switch_hosts);
  std::string name = std::to_string(cluster.gpu_count()) + " x " + cluster.gpu.name + " (" + cluster.fabric + ", in memory)";
  Platform p = collect(engine, name, overrides, root);
  p.fabric_ = zone;
  // Routes come from the zone by position: number those once, and drop the map by address.
  p.zone_link_ids_.reserve(zone->links().size());
  for (const auto& [link, kind] : zone->links()) p.zone_link_ids_.push_back(p.link_ids_.at(link));
  p.link_ids_ = {};
  root->seal();
  return p;
}

Platform Platform::load(sg::Engine& engine, const std::string& path, core::Overrides& overrides) {
  if (!std::filesystem::exists(path)) {
    throw InputError(path, "platform file does not exist; write one with `tcsim topo gen` or see platforms/README.md");
  }
  try {
    engine.load_platform(path);
  } catch (const std::exception& e) {
    std::string msg = e.what();
    throw InputError(path, "not a loadable SimGrid platform: " + msg +
                               " (a platform is SimGrid 4.1 XML with the <!DOCTYPE platform ...> line; see platforms/README.md)");
  }
  return collect(engine, path, overrides, engine.get_netzone_root());
}

Platform Platform::collect(sg::Engine& engine, const std::string& path, core::Overrides& overrides, sg::NetZone* parent) {
  Platform p;
  p.path_ = path;
  std::vector<sg::Host*> hosts = engine.get_all_hosts();
  // Timers live on their own host in their own zone (no routes: it never communicates).
  auto* timers = sg::create_full_zone("tcsim-timers");
  timers->set_parent(parent);
  p.timer_host_ = timers->create_host("tcsim-timer", 1.0)->set_core_count(1000000)->seal();
  timers->seal();
  for (sg::Host* h : hosts) {
    const char* role = h->get_property("tcsim.role");
    if (role == nullptr || std::string(role) != "gpu") continue;
    GpuHost g;
    g.host = h;
    g.rank = int_prop(h, "tcsim.rank", path);
    g.node = int_prop(h, "tcsim.node", path);
    g.index = int_prop(h, "tcsim.index", path);
    // NVLink domain: a node, or a rack-scale domain (nvl72) when the platform says so.
    g.domain = h->get_property("tcsim.domain") != nullptr ? int_prop(h, "tcsim.domain", path) : g.node;
    p.gpus_.push_back(g);
  }
  if (p.gpus_.empty()) {
    throw InputError(path, "no GPU hosts: a GPU is a <host> with <prop id=\"tcsim.role\" value=\"gpu\"/> (see platforms/README.md)");
  }
  // get_all_hosts() is not sorted: order by rank, then check ranks are 0..N-1.
  std::sort(p.gpus_.begin(), p.gpus_.end(), [](const GpuHost& a, const GpuHost& b) { return a.rank < b.rank; });
  for (size_t i = 0; i < p.gpus_.size(); ++i) {
    if (p.gpus_[i].rank != static_cast<int>(i)) {
      throw InputError(path, "GPU ranks must be 0.." + std::to_string(p.gpus_.size() - 1) + " without gaps; host '" +
                                 p.gpus_[i].host->get_name() + "' has tcsim.rank " + std::to_string(p.gpus_[i].rank));
    }
  }
  std::map<int, int> per_node;
  for (const auto& g : p.gpus_) per_node[g.node]++;
  p.nodes_ = static_cast<int>(per_node.size());
  p.gpus_per_node_ = per_node.begin()->second;
  for (const auto& [node, count] : per_node) {
    if (count != p.gpus_per_node_) {
      throw InputError(path, "node " + std::to_string(node) + " has " + std::to_string(count) + " GPUs but node " +
                                 std::to_string(per_node.begin()->first) + " has " + std::to_string(p.gpus_per_node_) +
                                 "; every node must have the same GPU count");
    }
  }

  // All GPUs must be of one spec (mixed clusters are not modelled yet).
  auto props_of = [](sg::Host* h) {
    std::map<std::string, std::string> m;
    for (const auto& [k, v] : *h->get_properties()) m[k] = v;
    return m;
  };
  auto first_props = props_of(p.gpus_.front().host);
  p.spec_ = topology::from_properties(first_props, path + ": host " + p.gpus_.front().host->get_name());
  // Only the name is compared: copying every host's properties was a map per GPU.
  const std::string first_name = first_props["gpu.name"];
  for (const auto& g : p.gpus_) {
    const char* name = g.host->get_property("gpu.name");
    if (name != nullptr && name != first_name) {
      throw InputError(path, "host '" + g.host->get_name() + "' is a " + name + " but host '" +
                                 p.gpus_.front().host->get_name() + "' is a " + first_name +
                                 "; mixed GPU types in one platform are not supported yet");
    }
  }
  const topology::GpuSpec before = p.spec_;
  topology::apply_gpu_overrides(p.spec_, overrides);
  p.calibration_ = calibration_for(p.spec_.family);
  if (!p.calibration_.borrowed_from.empty()) {
    core::logger("sim")->warn("GPU family '{}' has no calibration of its own; using the '{}' table", p.spec_.family,
                              p.calibration_.borrowed_from);
  }

  for (sg::Link* l : engine.get_all_links()) {
    std::string kind = link_kind(l);
    if (kind == "nvlink") p.nvlink_links_.push_back(l);
    else if (kind == "nic") p.nic_links_.push_back(l);
    else if (kind == "fabric") p.fabric_links_.push_back(l);
    else p.other_links_.push_back(l);
    if (l->get_bandwidth() <= 0) {
      throw InputError(path, "link '" + l->get_name() + "' has bandwidth " + std::to_string(l->get_bandwidth()) +
                                 "; every link needs a positive bandwidth");
    }
  }
  auto by_name = [](sg::Link* a, sg::Link* b) { return a->get_name() < b->get_name(); };
  std::sort(p.nvlink_links_.begin(), p.nvlink_links_.end(), by_name);
  std::sort(p.nic_links_.begin(), p.nic_links_.end(), by_name);
  std::sort(p.fabric_links_.begin(), p.fabric_links_.end(), by_name);
  std::sort(p.other_links_.begin(), p.other_links_.end(), by_name);
  // All links by name, merged from the sorted kinds (linear): the executor reports link
  // loads in this order instead of sorting them by name again (that sort was 4% of S3's
  // analytical run; one sort of all links here instead of these four cost more than both).
  std::vector<sg::Link*> nv_nic, fab_other;
  std::merge(p.nvlink_links_.begin(), p.nvlink_links_.end(), p.nic_links_.begin(), p.nic_links_.end(), std::back_inserter(nv_nic), by_name);
  std::merge(p.fabric_links_.begin(), p.fabric_links_.end(), p.other_links_.begin(), p.other_links_.end(), std::back_inserter(fab_other), by_name);
  p.links_by_name_.reserve(nv_nic.size() + fab_other.size());
  std::merge(nv_nic.begin(), nv_nic.end(), fab_other.begin(), fab_other.end(), std::back_inserter(p.links_by_name_), by_name);
  p.link_ids_.reserve(p.links_by_name_.size());
  for (uint32_t id = 0; id < p.links_by_name_.size(); ++id) p.link_ids_.emplace(p.links_by_name_[id], id);

  // --set gpu.nvlink_bw / gpu.nic_bw re-rate the per-GPU links of an existing platform.
  if (p.spec_.nvlink_bw != before.nvlink_bw) {
    for (sg::Link* l : p.nvlink_links_) l->set_bandwidth(p.spec_.nvlink_bw.value());
  }
  if (p.spec_.nic_bw != before.nic_bw) {
    for (sg::Link* l : p.nic_links_) l->set_bandwidth(p.spec_.nic_bw.value());
  }
  // Effective bandwidth = line rate x calibrated efficiency (platforms/calibration.textproto).
  for (sg::Link* l : p.nvlink_links_) l->set_bandwidth(l->get_bandwidth() * p.calibration_.nvlink_efficiency);
  for (sg::Link* l : p.nic_links_) l->set_bandwidth(l->get_bandwidth() * p.calibration_.nic_efficiency);
  for (sg::Link* l : p.fabric_links_) l->set_bandwidth(l->get_bandwidth() * p.calibration_.fabric_efficiency);
  return p;
}

}  // namespace tcsim::sim
