#include "sim/platform.hpp"

#include <algorithm>
#include <filesystem>
#include <iterator>
#include <map>
#include <stdexcept>
#include <utility>

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

// A link's kind: its tcsim.kind property (XML platforms), else its name's prefix; "other"
// when neither says nvlink, nic or fabric.
std::string link_kind(const char* property, const std::string& name) {
  if (property != nullptr) {
    const std::string k = property;
    return k == "nvlink" || k == "nic" || k == "fabric" ? k : "other";
  }
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

// The links of a generated cluster as SimGrid's split-duplex links are named: per cluster
// link, "<name>_UP" then "<name>_DOWN" (the order of FabricZone::links()), with their
// SimGrid links when zone is given.
std::vector<LinkInfo> cluster_links(const topology::Cluster& c, const FabricZone* zone) {
  std::vector<LinkInfo> raw;
  raw.reserve(2 * c.links.size());
  for (const auto& l : c.links) {
    for (const char* dir : {"_UP", "_DOWN"}) {
      LinkInfo info;
      info.name = l.name + dir;
      info.kind = link_kind(nullptr, info.name);
      info.bandwidth = l.bandwidth.value();
      info.latency = l.latency.value();
      if (zone != nullptr) info.sg = zone->links()[raw.size()].first;
      raw.push_back(std::move(info));
    }
  }
  return raw;
}

}  // namespace

void Platform::route_ids(int src, int dst, std::vector<uint32_t>& ids, double* latency) const {
  if (cluster_ != nullptr) {
    // Hop by hop as FabricZone::get_local_route gives SimGrid the route, without SimGrid's
    // route resolution around it (common ancestors, a set of zones per call): closed forms
    // route every pair of a collective's phases (S1: 104,192).
    if (src == dst) return;
    cluster_->route(src, dst, hops_);
    for (const auto& hop : hops_) {
      const auto idx = static_cast<size_t>(hop.link);
      ids.push_back(hop_ids_[2 * idx + (hop.up ? 0 : 1)]);
      if (latency != nullptr) *latency += cluster_->links[idx].latency.value();
    }
    return;
  }
  std::vector<sg::Link*> links;
  gpus_[static_cast<size_t>(src)].host->route_to(gpus_[static_cast<size_t>(dst)].host, links, latency);
  for (sg::Link* l : links) {
    auto it = link_ids_.find(l);
    if (it == link_ids_.end()) throw std::logic_error("platform: a route uses link '" + l->get_name() + "' that the platform does not list");
    ids.push_back(it->second);
  }
}

Platform Platform::build(sg::Engine& engine, topology::Cluster cluster, core::Overrides& overrides, SimgridObjects objects) {
  Platform p;
  p.cluster_ = std::make_shared<const topology::Cluster>(std::move(cluster));
  const topology::Cluster& c = *p.cluster_;
  p.path_ = std::to_string(c.gpu_count()) + " x " + c.gpu.name + " (" + c.fabric + ", in memory)";
  sg::NetZone* root = nullptr;
  if (objects == SimgridObjects::None) {
    // The GPUs and spec as collect_hosts() would read them back from the zone's hosts.
    p.gpus_.reserve(static_cast<size_t>(c.gpu_count()));
    for (int r = 0; r < c.gpu_count(); ++r) p.gpus_.push_back(GpuHost{nullptr, r, c.node_of(r), c.index_of(r), c.domain_of(r)});
    p.nodes_ = c.nodes;
    p.gpus_per_node_ = c.gpus_per_node;
    p.spec_ = topology::from_properties(topology::to_properties(c.gpu), p.path_ + ": host " + c.host_name(0));
  } else {
    // The zone registers itself with the engine; SimGrid owns it from here on.
    root = sg::create_full_zone("tcsim");
    p.fabric_ = new FabricZone("tcsim-" + c.fabric, p.cluster_, root, objects == SimgridObjects::GpusAndSwitches);
    p.collect_hosts(engine, root);
  }
  const topology::GpuSpec before = p.spec_;
  p.apply_overrides(overrides);
  p.hop_ids_ = p.set_links(cluster_links(c, p.fabric_), before);
  if (root != nullptr) root->seal();
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
  Platform p;
  p.path_ = path;
  p.collect_hosts(engine, engine.get_netzone_root());
  const topology::GpuSpec before = p.spec_;
  p.apply_overrides(overrides);
  std::vector<LinkInfo> raw;
  for (sg::Link* l : engine.get_all_links()) {
    raw.push_back(LinkInfo{l->get_name(), link_kind(l->get_property("tcsim.kind"), l->get_name()), l->get_bandwidth(),
                           l->get_latency(), l->get_sharing_policy() == sg::Link::SharingPolicy::FATPIPE, l});
  }
  p.set_links(std::move(raw), before);
  p.link_ids_.reserve(p.links_.size());
  for (uint32_t id = 0; id < p.links_.size(); ++id) p.link_ids_.emplace(p.links_[id].sg, id);
  return p;
}

void Platform::collect_hosts(sg::Engine& engine, sg::NetZone* parent) {
  const std::string& path = path_;
  std::vector<sg::Host*> hosts = engine.get_all_hosts();
  // Timers live on their own host in their own zone (no routes: it never communicates).
  auto* timers = sg::create_full_zone("tcsim-timers");
  timers->set_parent(parent);
  timer_host_ = timers->create_host("tcsim-timer", 1.0)->set_core_count(1000000)->seal();
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
    gpus_.push_back(g);
  }
  if (gpus_.empty()) {
    throw InputError(path, "no GPU hosts: a GPU is a <host> with <prop id=\"tcsim.role\" value=\"gpu\"/> (see platforms/README.md)");
  }
  // get_all_hosts() is not sorted: order by rank, then check ranks are 0..N-1.
  std::sort(gpus_.begin(), gpus_.end(), [](const GpuHost& a, const GpuHost& b) { return a.rank < b.rank; });
  for (size_t i = 0; i < gpus_.size(); ++i) {
    if (gpus_[i].rank != static_cast<int>(i)) {
      throw InputError(path, "GPU ranks must be 0.." + std::to_string(gpus_.size() - 1) + " without gaps; host '" +
                                 gpus_[i].host->get_name() + "' has tcsim.rank " + std::to_string(gpus_[i].rank));
    }
  }
  std::map<int, int> per_node;
  for (const auto& g : gpus_) per_node[g.node]++;
  nodes_ = static_cast<int>(per_node.size());
  gpus_per_node_ = per_node.begin()->second;
  for (const auto& [node, count] : per_node) {
    if (count != gpus_per_node_) {
      throw InputError(path, "node " + std::to_string(node) + " has " + std::to_string(count) + " GPUs but node " +
                                 std::to_string(per_node.begin()->first) + " has " + std::to_string(gpus_per_node_) +
                                 "; every node must have the same GPU count");
    }
  }

  // All GPUs must be of one spec (mixed clusters are not modelled yet).
  auto props_of = [](sg::Host* h) {
    std::map<std::string, std::string> m;
    for (const auto& [k, v] : *h->get_properties()) m[k] = v;
    return m;
  };
  auto first_props = props_of(gpus_.front().host);
  spec_ = topology::from_properties(first_props, path + ": host " + gpus_.front().host->get_name());
  // Only the name is compared: copying every host's properties was a map per GPU.
  const std::string first_name = first_props["gpu.name"];
  for (const auto& g : gpus_) {
    const char* name = g.host->get_property("gpu.name");
    if (name != nullptr && name != first_name) {
      throw InputError(path, "host '" + g.host->get_name() + "' is a " + name + " but host '" +
                                 gpus_.front().host->get_name() + "' is a " + first_name +
                                 "; mixed GPU types in one platform are not supported yet");
    }
  }
}

void Platform::apply_overrides(core::Overrides& overrides) {
  topology::apply_gpu_overrides(spec_, overrides);
  calibration_ = calibration_for(spec_.family);
  if (!calibration_.borrowed_from.empty()) {
    core::logger("sim")->warn("GPU family '{}' has no calibration of its own; using the '{}' table", spec_.family,
                              calibration_.borrowed_from);
  }
}

std::vector<uint32_t> Platform::set_links(std::vector<LinkInfo> raw, const topology::GpuSpec& before) {
  // By kind, each sorted by name, then merged (linear) into all links by name: the executor
  // reports link loads in this order instead of sorting them by name again (that sort was
  // 4% of S3's analytical run; one sort of all links here instead of these four cost more
  // than both).
  std::vector<uint32_t> nvlink, nic, fabric, other;
  for (uint32_t i = 0; i < raw.size(); ++i) {
    const LinkInfo& l = raw[i];
    if (l.kind == "nvlink") nvlink.push_back(i);
    else if (l.kind == "nic") nic.push_back(i);
    else if (l.kind == "fabric") fabric.push_back(i);
    else other.push_back(i);
    if (l.bandwidth <= 0) {
      throw InputError(path_, "link '" + l.name + "' has bandwidth " + std::to_string(l.bandwidth) +
                                  "; every link needs a positive bandwidth");
    }
  }
  auto by_name = [&raw](uint32_t a, uint32_t b) { return raw[a].name < raw[b].name; };
  for (auto* kind : {&nvlink, &nic, &fabric, &other}) std::sort(kind->begin(), kind->end(), by_name);
  std::vector<uint32_t> nv_nic, fab_other, order;
  std::merge(nvlink.begin(), nvlink.end(), nic.begin(), nic.end(), std::back_inserter(nv_nic), by_name);
  std::merge(fabric.begin(), fabric.end(), other.begin(), other.end(), std::back_inserter(fab_other), by_name);
  order.reserve(raw.size());
  std::merge(nv_nic.begin(), nv_nic.end(), fab_other.begin(), fab_other.end(), std::back_inserter(order), by_name);
  std::vector<uint32_t> ids(raw.size());
  links_.clear();
  links_.reserve(raw.size());
  for (uint32_t id = 0; id < order.size(); ++id) {
    ids[order[id]] = id;
    links_.push_back(std::move(raw[order[id]]));
  }

  // --set gpu.nvlink_bw / gpu.nic_bw re-rate the per-GPU links of an existing platform.
  // Effective bandwidth = line rate x calibrated efficiency (platforms/calibration.textproto).
  const bool nvlink_rerated = spec_.nvlink_bw != before.nvlink_bw, nic_rerated = spec_.nic_bw != before.nic_bw;
  for (LinkInfo& l : links_) {
    if (l.kind == "nvlink") {
      if (nvlink_rerated) l.bandwidth = spec_.nvlink_bw.value();
      l.bandwidth *= calibration_.nvlink_efficiency;
    } else if (l.kind == "nic") {
      if (nic_rerated) l.bandwidth = spec_.nic_bw.value();
      l.bandwidth *= calibration_.nic_efficiency;
    } else if (l.kind == "fabric") {
      l.bandwidth *= calibration_.fabric_efficiency;
    } else {
      continue;
    }
    if (l.sg != nullptr) l.sg->set_bandwidth(l.bandwidth);
  }
  return ids;
}

}  // namespace tcsim::sim
