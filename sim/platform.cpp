#include "sim/platform.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <iterator>
#include <map>
#include <stdexcept>
#include <string_view>
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

using topology::LinkKind;

// A link's kind: its tcsim.kind property (XML platforms), else its name's prefix; other
// when neither says nvlink, nic or fabric.
LinkKind link_kind(const char* property, const std::string& name) {
  if (property != nullptr) {
    const std::string_view k = property;
    return k == "nvlink" ? LinkKind::nvlink : k == "nic" ? LinkKind::nic : k == "fabric" ? LinkKind::fabric : LinkKind::other;
  }
  if (name.rfind("nvl-", 0) == 0) return LinkKind::nvlink;
  if (name.rfind("nic-", 0) == 0) return LinkKind::nic;
  if (name.rfind("fab-", 0) == 0) return LinkKind::fabric;
  return LinkKind::other;
}

int int_prop(sg::Host* h, const char* key, const std::string& where) {
  const char* v = h->get_property(key);
  if (v == nullptr) {
    throw InputError(where, "GPU host '" + h->get_name() + "' lacks property " + key +
                                " (see platforms/README.md for the properties a GPU host carries)");
  }
  return static_cast<int>(core::parse_integer(v, where + ": host " + h->get_name() + " property " + key));
}

// The two directions of a cluster link as SimGrid's split-duplex links are named.
constexpr std::string_view kDirection[2] = {"_UP", "_DOWN"};

// a + sa < b + sb, as std::string compares them (bytes as unsigned), without building them.
bool joined_less(std::string_view a, std::string_view sa, std::string_view b, std::string_view sb) {
  const size_t common = std::min(a.size(), b.size());
  if (const int c = a.substr(0, common).compare(b.substr(0, common)); c != 0) return c < 0;
  if (a.size() == b.size()) return sa < sb;
  // One name is a prefix of the other: compare what follows it, suffix included.
  const size_t la = a.size() + sa.size(), lb = b.size() + sb.size();
  for (size_t i = common; i < std::min(la, lb); ++i) {
    const auto x = static_cast<unsigned char>(i < a.size() ? a[i] : sa[i - a.size()]);
    const auto y = static_cast<unsigned char>(i < b.size() ? b[i] : sb[i - b.size()]);
    if (x != y) return x < y;
  }
  return la < lb;
}

// Sorts v (of distinct elements, so that any sort gives one order) by merging the runs
// already in order: a generated cluster lists its links in a few ascending runs, broken
// where a number gains a digit ("nvl-n9" > "nvl-n10"), so S3's 33,798 links are 12 runs,
// merged in 4 passes instead of sorted (~22 comparisons each). Many runs: std::sort.
template <class T, class Less>
void sort_runs(std::vector<T>& v, Less less) {
  std::vector<size_t> bounds{0};
  for (size_t i = 1; i < v.size(); ++i)
    if (less(v[i], v[i - 1])) bounds.push_back(i);
  bounds.push_back(v.size());
  if (bounds.size() > 65) {
    std::sort(v.begin(), v.end(), less);
    return;
  }
  std::vector<T> merged(v.size());
  while (bounds.size() > 2) {  // two runs or more: merge them pairwise
    std::vector<size_t> next{0};
    for (size_t r = 0; r + 1 < bounds.size(); r += 2) {
      const size_t from = bounds[r], mid = bounds[r + 1], to = r + 2 < bounds.size() ? bounds[r + 2] : mid;
      const auto at = [&v](size_t i) { return v.begin() + static_cast<std::ptrdiff_t>(i); };
      std::merge(at(from), at(mid), at(mid), at(to), merged.begin() + static_cast<std::ptrdiff_t>(from), less);
      next.push_back(to);
    }
    v.swap(merged);
    bounds = std::move(next);
  }
}

// Positions 0..n-1 in the order of their names name_of(i) = (base, suffix), joined. Sorted
// by the names' first 16 bytes as two integers (most names here are shorter), the whole
// names compared only on a tie: S3's 100,000 links took 7 ms sorted by strings.
template <class NameOf>
std::vector<uint32_t> name_order(size_t n, NameOf name_of) {
  struct Key {
    uint64_t hi = 0, lo = 0;  // bytes 0-7 and 8-15, big-endian, zero-padded
    uint32_t at = 0;
  };
  std::vector<Key> keys(n);
  for (uint32_t i = 0; i < n; ++i) {
    const auto [a, sa] = name_of(i);
    unsigned char b[16] = {};
    const size_t na = std::min<size_t>(a.size(), 16);
    std::memcpy(b, a.data(), na);
    std::memcpy(b + na, sa.data(), std::min(sa.size(), 16 - na));
    Key& k = keys[i];
    std::memcpy(&k.hi, b, 8);
    std::memcpy(&k.lo, b + 8, 8);
    if constexpr (std::endian::native == std::endian::little) {
      k.hi = __builtin_bswap64(k.hi);
      k.lo = __builtin_bswap64(k.lo);
    }
    k.at = i;
  }
  sort_runs(keys, [&name_of](const Key& x, const Key& y) {
    if (x.hi != y.hi) return x.hi < y.hi;
    if (x.lo != y.lo) return x.lo < y.lo;
    const auto [a, sa] = name_of(x.at);
    const auto [b, sb] = name_of(y.at);
    return joined_less(a, sa, b, sb);
  });
  std::vector<uint32_t> order(n);
  for (size_t i = 0; i < n; ++i) order[i] = keys[i].at;
  return order;
}

// The name order of a cluster's link directions (input position 2i: link i's _UP, 2i + 1:
// its _DOWN). When no link name holds '_', the order of base + "_UP" / base + "_DOWN"
// between two links is that of their base + "_" (neither name can sort between the other's
// two), and _DOWN sorts before _UP: the links are sorted, not their twice as many
// directions. Otherwise every direction is sorted by its whole name.
std::vector<uint32_t> direction_order(const std::vector<topology::Link>& cl) {
  const bool plain = std::none_of(cl.begin(), cl.end(), [](const topology::Link& l) { return l.name.find('_') != std::string::npos; });
  if (!plain) {
    return name_order(2 * cl.size(), [&cl](uint32_t i) { return std::pair<std::string_view, std::string_view>(cl[i / 2].name, kDirection[i % 2]); });
  }
  const std::vector<uint32_t> links = name_order(cl.size(), [&cl](uint32_t i) { return std::pair<std::string_view, std::string_view>(cl[i].name, "_"); });
  std::vector<uint32_t> order;
  order.reserve(2 * links.size());
  for (uint32_t i : links) {
    order.push_back(2 * i + 1);  // _DOWN
    order.push_back(2 * i);      // _UP
  }
  return order;
}

}  // namespace

void Platform::route_ids(int src, int dst, std::vector<uint32_t>& ids, double* latency) const {
  if (cluster_ != nullptr) {
    // Hop by hop as FabricZone::get_local_route gives SimGrid the route, without SimGrid's
    // route resolution around it (common ancestors, a set of zones per call): closed forms
    // route every pair of a collective's phases (S1: 104,192).
    const double lat = for_each_hop(src, dst, [&ids](uint32_t id) { ids.push_back(id); });
    if (latency != nullptr) *latency += lat;
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
  return build(&engine, std::move(cluster), overrides, objects);
}

Platform Platform::build(topology::Cluster cluster, core::Overrides& overrides) {
  return build(nullptr, std::move(cluster), overrides, SimgridObjects::None);
}

Platform Platform::build(sg::Engine* engine, topology::Cluster cluster, core::Overrides& overrides, SimgridObjects objects) {
  if (engine == nullptr && objects != SimgridObjects::None) throw std::logic_error("platform: SimGrid objects need an engine");
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
    p.collect_hosts(*engine, root);
  }
  const topology::GpuSpec before = p.spec_;
  p.apply_overrides(overrides);
  const auto& cl = c.links;
  // Input position i: cluster link i / 2, going up when i is even, as SimGrid lists the
  // split-duplex links (FabricZone::links()).
  const FabricZone* zone = p.fabric_;
  p.id_hops_ = direction_order(cl);
  p.set_links(
      p.id_hops_,
      [&cl](uint32_t i) { return std::pair<std::string_view, std::string_view>(cl[i / 2].name, kDirection[i % 2]); },
      [&cl, zone](uint32_t i) {
        const topology::Link& l = cl[i / 2];
        return LinkInfo{l.bandwidth.value(), l.latency.value(), zone != nullptr ? zone->links()[i].first : nullptr, l.kind, false};
      },
      before);
  p.hop_ids_.resize(p.id_hops_.size());
  for (uint32_t id = 0; id < p.id_hops_.size(); ++id) {
    const uint32_t hop = p.id_hops_[id];
    p.hop_ids_[hop] = HopId{id, cl[hop / 2].latency.value()};
  }
  // Links of a tier built alike stay alike through set_links (re-rating and calibration
  // go by kind), so their cluster values tell.
  auto alike = [&cl](const topology::Link& a, const topology::Link& b) {
    return a.bandwidth == b.bandwidth && a.latency == b.latency && a.kind == b.kind;
  };
  auto uniform = [&](auto first, auto last) {
    return std::all_of(first, last, [&](const auto& x) { return alike(cl[static_cast<size_t>(x)], cl[static_cast<size_t>(*first)]); });
  };
  const auto n = static_cast<size_t>(c.gpu_count());
  p.uniform_tiers_ = n > 0 && cl.size() >= 2 * n &&
                     std::all_of(cl.begin(), cl.begin() + static_cast<std::ptrdiff_t>(n), [&](const topology::Link& l) { return alike(l, cl[0]); }) &&
                     std::all_of(cl.begin() + static_cast<std::ptrdiff_t>(n), cl.begin() + static_cast<std::ptrdiff_t>(2 * n), [&](const topology::Link& l) { return alike(l, cl[n]); });
  for (const auto* tier : {&c.routing.leaf_link, &c.routing.tor_link, &c.routing.pod_link})
    p.uniform_tiers_ = p.uniform_tiers_ && uniform(tier->begin(), tier->end());
  if (root != nullptr) root->seal();
  return p;
}

bool Platform::shift_links(const std::vector<std::pair<uint32_t, double>>& from, const topology::Routing::Shift& by,
                           std::vector<std::pair<uint32_t, double>>& to) const {
  to.clear();
  if (cluster_ == nullptr || !by.valid) return false;
  const topology::Routing& routing = cluster_->routing;
  to.resize(from.size());
  for (size_t i = 0; i < from.size(); ++i) {
    const uint32_t id = from[i].first;
    const uint32_t hop = id_hops_[id];
    const int link = routing.shift_link(static_cast<int>(hop / 2), by);
    if (link < 0) return false;
    const HopId& moved = hop_ids_[2 * static_cast<size_t>(link) + hop % 2];
    if (!uniform_tiers_) {
      const LinkInfo &a = links_[id], &b = links_[moved.id];
      if (a.bandwidth != b.bandwidth || a.latency != b.latency || a.kind != b.kind || a.fatpipe != b.fatpipe ||
          hop_ids_[hop].latency != moved.latency)
        return false;
    }
    to[i] = {moved.id, from[i].second};
  }
  return true;
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
  std::vector<std::string> names;
  for (sg::Link* l : engine.get_all_links()) {
    names.push_back(l->get_name());
    raw.push_back(LinkInfo{l->get_bandwidth(), l->get_latency(), l, link_kind(l->get_property("tcsim.kind"), l->get_name()),
                           l->get_sharing_policy() == sg::Link::SharingPolicy::FATPIPE});
  }
  p.names_ = std::move(names);
  const auto order = name_order(raw.size(), [&n = p.names_](uint32_t i) { return std::pair<std::string_view, std::string_view>(n[i], {}); });
  p.set_links(
      order, [&n = p.names_](uint32_t i) { return std::pair<std::string_view, std::string_view>(n[i], {}); },
      [&raw](uint32_t i) { return raw[i]; }, before);
  std::vector<std::string> by_id;
  by_id.reserve(order.size());
  for (uint32_t i : order) by_id.push_back(std::move(p.names_[i]));
  p.names_ = std::move(by_id);
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

std::string Platform::link_name(uint32_t id) const {
  if (cluster_ == nullptr) return names_.at(id);
  const uint32_t hop = id_hops_.at(id);
  return cluster_->links[hop / 2].name + std::string(kDirection[hop % 2]);
}

template <class NameOf, class LinkAt>
void Platform::set_links(const std::vector<uint32_t>& order, NameOf name_of, LinkAt link_at, const topology::GpuSpec& before) {
  // By name: the executor reports link loads in this order instead of sorting them again.
  links_.clear();
  links_.reserve(order.size());
  for (uint32_t i : order) links_.push_back(link_at(i));
  for (uint32_t id = 0; id < links_.size(); ++id) {
    const LinkInfo& l = links_[id];
    // SimGrid loads "nanGBps" and negative latencies (with a warning): a NaN would silently
    // drop the link's time from every closed form, a negative latency run time backwards.
    if (!(l.bandwidth > 0 && std::isfinite(l.bandwidth))) {
      const auto [base, suffix] = name_of(order[id]);
      throw InputError(path_, "link '" + std::string(base) + std::string(suffix) + "' has bandwidth " + std::to_string(l.bandwidth) +
                                  " B/s; every link needs a positive, finite bandwidth");
    }
    if (!(l.latency >= 0 && std::isfinite(l.latency))) {
      const auto [base, suffix] = name_of(order[id]);
      throw InputError(path_, "link '" + std::string(base) + std::string(suffix) + "' has latency " + std::to_string(l.latency) +
                                  " s; a link's latency is finite and 0 or more");
    }
  }
  // --set gpu.nvlink_bw / gpu.nic_bw re-rate the per-GPU links of an existing platform.
  // Effective bandwidth = line rate x calibrated efficiency (platforms/calibration.textproto).
  const bool nvlink_rerated = spec_.nvlink_bw != before.nvlink_bw, nic_rerated = spec_.nic_bw != before.nic_bw;
  for (LinkInfo& l : links_) {
    if (l.kind == LinkKind::nvlink) {
      if (nvlink_rerated) l.bandwidth = spec_.nvlink_bw.value();
      l.bandwidth *= calibration_.nvlink_efficiency;
    } else if (l.kind == LinkKind::nic) {
      if (nic_rerated) l.bandwidth = spec_.nic_bw.value();
      l.bandwidth *= calibration_.nic_efficiency;
    } else if (l.kind == LinkKind::fabric) {
      l.bandwidth *= calibration_.fabric_efficiency;
    } else {
      continue;
    }
    if (l.sg != nullptr) l.sg->set_bandwidth(l.bandwidth);
  }
}

}  // namespace tcsim::sim
