#include "topology/cluster.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>
#include <queue>
#include <stdexcept>
#include <string_view>

#include "core/error.hpp"
#include "core/quantity.hpp"

namespace tcsim::topology {
namespace {

using core::InputError;

const FabricInfo kSingle{
    "single-switch",
    "every NIC on one non-blocking switch (the foundation's fabric; no switch-to-switch links)",
    "idealised; an upper bound for any real scale-out fabric",
    {"fabric.nvlink_latency", "fabric.nic_latency"}};
const FabricInfo kRail{
    "rail-fat-tree",
    "two-tier rail-optimised fat-tree: a leaf per rail (GPU index), all leaves under one spine layer",
    "NVIDIA DGX SuperPOD reference architecture (rail-optimised); radix and oversubscription configurable",
    {"fabric.nvlink_latency", "fabric.nic_latency", "fabric.hop_latency", "fabric.radix", "fabric.oversubscription"}};
const FabricInfo kPlanes{
    "multi-plane-fat-tree",
    "one disjoint two-tier fat-tree plane per GPU/NIC index; cross-plane traffic forwarded over NVLink at the destination",
    "DeepSeek, arXiv 2505.09343 §4 (multi-plane two-layer fat-tree, 64-port 400G IB switches, up to 16,384 GPUs)",
    {"fabric.nvlink_latency", "fabric.nic_latency", "fabric.hop_latency", "fabric.radix", "fabric.oversubscription"}};
const FabricInfo kClos3{
    "clos3",
    "three-tier Clos: ToR per rack, non-blocking pods, oversubscribed aggregation above the pods",
    "Llama 3, arXiv 2407.21783 §3.3.1 (16 GPUs per ToR, 3,072-GPU pods, 1:7 above the pod)",
    {"fabric.nvlink_latency", "fabric.nic_latency", "fabric.hop_latency", "fabric.oversubscription",
     "fabric.nodes_per_rack", "fabric.racks_per_pod", "fabric.pod_oversubscription"}};
const FabricInfo kNvl72{
    "nvl72",
    "NVLink domains of fabric.domain_gpus GPUs (default 72) spanning several nodes; domains joined by one non-blocking switch",
    "NVIDIA GB200 NVL72 datasheet (72 GPUs, one NVLink domain)",
    {"fabric.nvlink_latency", "fabric.nic_latency", "fabric.domain_gpus"}};

std::string fmt_count(double v) { return core::format_number(v); }

constexpr double kInf = std::numeric_limits<double>::infinity();

// Dinic max-flow on a small directed graph with double capacities.
class MaxFlow {
public:
  explicit MaxFlow(int n) : adj_(n), level_(n), it_(n) {}
  void add(int u, int v, double cap) {
    adj_[u].push_back(static_cast<int>(e_.size()));
    e_.push_back({v, cap});
    adj_[v].push_back(static_cast<int>(e_.size()));
    e_.push_back({u, 0});
  }
  double run(int s, int t) {
    double flow = 0;
    while (bfs(s, t)) {
      std::fill(it_.begin(), it_.end(), 0);
      while (true) {
        double f = dfs(s, t, kInf);
        if (f <= 0) break;
        flow += f;
      }
    }
    return flow;
  }

private:
  struct E {
    int to;
    double cap;
  };
  bool bfs(int s, int t) {
    std::fill(level_.begin(), level_.end(), -1);
    std::queue<int> q;
    level_[s] = 0;
    q.push(s);
    while (!q.empty()) {
      int u = q.front();
      q.pop();
      for (int id : adj_[u]) {
        if (e_[id].cap > 1e-9 && level_[e_[id].to] < 0) {
          level_[e_[id].to] = level_[u] + 1;
          q.push(e_[id].to);
        }
      }
    }
    return level_[t] >= 0;
  }
  // Iterative would be safer for deep graphs; ours are at most ~8 levels deep.
  double dfs(int u, int t, double f) {
    if (u == t) return f;
    for (size_t& i = it_[u]; i < adj_[u].size(); ++i) {
      E& e = e_[adj_[u][i]];
      if (e.cap > 1e-9 && level_[e.to] == level_[u] + 1) {
        double d = dfs(e.to, t, std::min(f, e.cap));
        if (d > 0) {
          e.cap -= d;
          e_[adj_[u][i] ^ 1].cap += d;
          return d;
        }
      }
    }
    return 0;
  }
  std::vector<std::vector<int>> adj_;
  std::vector<E> e_;
  std::vector<int> level_;
  std::vector<size_t> it_;
};

double option_number(core::Overrides& o, const std::string& key, double current, double min, const std::string& what) {
  auto v = o.take(key);
  if (!v) return current;
  double x = core::parse_number(*v, o.where(key));
  if (!(x >= min)) throw InputError(o.where(key), "'" + *v + "' must be at least " + fmt_count(min) + " (" + what + ")");
  return x;
}
int option_int(core::Overrides& o, const std::string& key, int current, int min, const std::string& what) {
  auto v = o.take(key);
  if (!v) return current;
  long long x = core::parse_integer(*v, o.where(key));
  if (x < min || x > 1000000) {
    throw InputError(o.where(key), "'" + *v + "' must be a whole number from " + std::to_string(min) + " (" + what + ")");
  }
  return static_cast<int>(x);
}
core::Seconds option_time(core::Overrides& o, const std::string& key, core::Seconds current) {
  auto v = o.take(key);
  if (!v) return current;
  auto t = core::parse_seconds(*v, o.where(key));
  if (t.value() < 0) throw InputError(o.where(key), "'" + *v + "' must not be negative");
  return t;
}

// Leaf down/up port split for a radix and a down:up ratio.
std::pair<int, int> split_ports(int radix, double oversub, const std::string& where) {
  int down = static_cast<int>(std::floor(radix * oversub / (1.0 + oversub) + 1e-9));
  int up = radix - down;
  if (down < 1 || up < 1) {
    throw InputError(where, "radix " + std::to_string(radix) + " with oversubscription " + fmt_count(oversub) +
                                " leaves no " + (down < 1 ? "downlink" : "uplink") +
                                " port; use a larger fabric.radix or an oversubscription nearer 1");
  }
  return {down, up};
}

// Appends a and the decimal x at p (room for both: the prefixes here are short literals).
char* put(char* p, std::string_view a, int x) {
  p = std::copy(a.begin(), a.end(), p);
  return std::to_chars(p, p + 12, x).ptr;  // an int has at most 11 characters
}

// "<a><x>" and "<a><x><b><y>" (e.g. "nvl-n" 12 "-g" 3) in one string, without the
// temporaries of operator+ and std::to_string: a 16,384-GPU cluster names 33,000 links.
std::string numbered(std::string_view a, int x) {
  char buf[64];
  return std::string(buf, put(buf, a, x));
}
std::string numbered(std::string_view a, int x, std::string_view b, int y) {
  char buf[96];
  return std::string(buf, put(put(buf, a, x), b, y));
}

}  // namespace

const char* to_string(LinkKind kind) {
  switch (kind) {
    case LinkKind::nvlink: return "nvlink";
    case LinkKind::nic: return "nic";
    case LinkKind::fabric: return "fabric";
    case LinkKind::other: return "other";
  }
  return "?";
}

const std::vector<FabricInfo>& fabrics() {
  static const std::vector<FabricInfo> all = {kSingle, kRail, kPlanes, kClos3, kNvl72};
  return all;
}

const std::vector<FabricOption>& fabric_options() {
  static const std::vector<FabricOption> all = {
      {"fabric.nvlink_latency", "GPU-to-GPU latency through the NVSwitch, end to end, split over the 2 NVLink ports (arXiv 2505.09343 Table 5)", "3.33us"},
      {"fabric.nic_latency", "GPU-to-GPU latency under one leaf switch, end to end, split over the 2 NIC links (IB same leaf, arXiv 2505.09343 Table 5)", "2.8us"},
      {"fabric.hop_latency", "latency of each switch-to-switch link (IB cross leaf 3.7us - same leaf 2.8us = 2 x 0.45us)", "0.45us"},
      {"fabric.radix", "switch ports (leaf and spine); two tiers hold at most radix leaves per plane", "64"},
      {"fabric.oversubscription", "leaf (ToR) downlink : uplink capacity; 1 = non-blocking", "1"},
      {"fabric.nodes_per_rack", "clos3: nodes under one ToR (Llama 3: 2 nodes = 16 GPUs)", "2"},
      {"fabric.racks_per_pod", "clos3: racks per pod (Llama 3: 192 racks = 3,072 GPUs)", "192"},
      {"fabric.pod_oversubscription", "clos3: pod downlink : uplink capacity towards the aggregation layer (Llama 3: 7)", "7"},
      {"fabric.domain_gpus", "nvl72: GPUs per NVLink domain", "72"},
  };
  return all;
}

Routing::Shift Routing::shift(int lo, int hi, int delta) const {
  Shift s;
  const int G = gpus_per_node;
  // Whole nodes (algorithms plan by node), on the cluster before and after.
  if (delta % G != 0 || lo > hi || lo < 0 || hi >= gpus || lo + delta < 0 || hi + delta >= gpus) return s;
  lo -= lo % G;  // a relay may be any GPU of a member's node
  hi += G - 1 - hi % G;
  // Blocks of `size` ranks (NVLink domains, leaves' nodes, racks, pods) move whole when
  // delta is a multiple of size, by delta / size; else the routes among lo..hi move only
  // when they lie in one block before and after (none of them then leaves the block), and
  // the block moves by the difference.
  auto blocks = [&](int size, int& out) {
    if (delta % size == 0) {
      out = delta / size;
      return true;
    }
    if (lo / size != hi / size || (lo + delta) / size != (hi + delta) / size) return false;
    out = (lo + delta) / size - lo / size;
    return true;
  };
  int domains = 0;  // no link is numbered by domain: only whether domains move is needed
  if (!blocks(domain_gpus, domains)) return s;
  s.ranks = delta;
  switch (scale_out) {
    case ScaleOut::Switch: s.valid = true; break;
    case ScaleOut::RailTree:
    case ScaleOut::Planes: s.valid = blocks(G * downlinks, s.leaves); break;
    case ScaleOut::Clos3: s.valid = blocks(G * nodes_per_rack, s.tors) && blocks(G * nodes_per_rack * racks_per_pod, s.pods); break;
  }
  return s;
}

int Routing::shift_uplink(int link, const Shift& by) const {
  if (!by.valid || link < 2 * gpus) return -1;
  // An uplink: its position in its tier's list (the builder adds each tier's links in
  // order, so the position is the offset from the first) moves by the tier's shift,
  // within [from, to).
  auto moved = [link](const std::vector<int>& tier, int from, int to, int step) {
    if (tier.empty() || link < tier.front()) return -1;
    const auto at = static_cast<size_t>(link - tier.front());
    if (at >= tier.size() || tier[at] != link) return -1;
    const int m = static_cast<int>(at) + step;
    return m >= from && m < to ? tier[static_cast<size_t>(m)] : -1;
  };
  switch (scale_out) {
    case ScaleOut::Switch: return -1;
    case ScaleOut::RailTree:
    case ScaleOut::Planes: {
      // leaf_link[rail * leaves_per_rail + leaf]: the leaf moves within its rail.
      if (leaf_link.empty() || link < leaf_link.front()) return -1;
      const int rail = (link - leaf_link.front()) / leaves_per_rail;
      return moved(leaf_link, rail * leaves_per_rail, (rail + 1) * leaves_per_rail, by.leaves);
    }
    case ScaleOut::Clos3: {
      if (const int t = moved(tor_link, 0, static_cast<int>(tor_link.size()), by.tors); t >= 0) return t;
      return moved(pod_link, 0, static_cast<int>(pod_link.size()), by.pods);
    }
  }
  return -1;
}

std::string Cluster::host_name(int rank) const {
  return numbered("gpu-n", node_of(rank), "-g", index_of(rank));
}

void Cluster::route(int src, int dst, std::vector<Hop>& out) const {
  out.clear();
  visit_route(src, dst, [&out](int link, bool up) { out.push_back({link, up}); });
}

int Cluster::link_count(LinkKind kind) const {
  return static_cast<int>(std::count_if(links.begin(), links.end(), [&](const Link& l) { return l.kind == kind; }));
}

core::BytesPerSecond Cluster::bisection_bandwidth() const {
  const int n = gpu_count();
  if (n < 2) return core::BytesPerSecond(0);
  const int v = vertex_count();
  MaxFlow mf(v + 2);
  const int s = v, t = v + 1;
  for (const auto& l : links) {
    mf.add(l.a, l.b, l.bandwidth.value());
    mf.add(l.b, l.a, l.bandwidth.value());
  }
  for (int r = 0; r < n; ++r) {
    if (r < n / 2) mf.add(s, r, kInf);
    else mf.add(r, t, kInf);
  }
  return core::BytesPerSecond(mf.run(s, t));
}

int Cluster::worst_case_hops() const {
  const int n = gpu_count();
  size_t worst = 0;
  std::vector<Hop> hops;
  for (int s : {0, n - 1}) {
    for (int d = 0; d < n; ++d) {
      if (d == s) continue;
      route(s, d, hops);
      worst = std::max(worst, hops.size());
    }
  }
  return static_cast<int>(worst);
}

void Cluster::check_routes_sampled() const {
  const int n = gpu_count();
  std::vector<Hop> hops;
  for (int s : {0, n / 2, n - 1}) {
    for (int d = 0; d < n; ++d) {
      if (d == s) continue;
      route(s, d, hops);
      int at = s;
      for (const auto& h : hops) {
        const Link& l = links.at(static_cast<size_t>(h.link));
        int from = h.up ? l.a : l.b, to = h.up ? l.b : l.a;
        if (from != at) {
          throw std::logic_error("route " + host_name(s) + " -> " + host_name(d) + " is broken at link " + l.name);
        }
        at = to;
      }
      if (at != d) throw std::logic_error("route " + host_name(s) + " -> " + host_name(d) + " ends elsewhere");
    }
  }
}

Cluster build_cluster(const GpuSpec& gpu, int nodes, int gpus_per_node, const std::string& fabric,
                      core::Overrides& overrides) {
  const FabricInfo* info = nullptr;
  for (const auto& f : fabrics()) {
    if (f.name == fabric) info = &f;
  }
  if (info == nullptr) {
    std::string known;
    for (const auto& f : fabrics()) known += (known.empty() ? "" : ", ") + f.name;
    throw InputError("--fabric", "unknown fabric '" + fabric + "'; known: " + known + " (tcsim topo fabrics)");
  }
  if (nodes < 1 || nodes > 100000) throw InputError("--nodes", std::to_string(nodes) + " must be from 1 to 100000");
  if (gpus_per_node < 1 || gpus_per_node > 1024) {
    throw InputError("--gpus-per-node", std::to_string(gpus_per_node) + " must be from 1 to 1024");
  }
  // Options: take the ones this fabric accepts, reject other fabric.* keys.
  for (const auto& key : overrides.keys_with_prefix("fabric.")) {
    if (std::find(info->options.begin(), info->options.end(), key) == info->options.end()) {
      std::string valid;
      for (const auto& k : info->options) valid += (valid.empty() ? "" : ", ") + k;
      bool known = std::any_of(fabric_options().begin(), fabric_options().end(), [&](const FabricOption& o) { return o.key == key; });
      throw InputError(overrides.where(key), std::string(known ? "does not apply to" : "unknown option for") +
                                                 " fabric " + fabric + "; its options: " + valid);
    }
  }
  Cluster c;
  c.gpu = gpu;
  c.nodes = nodes;
  c.gpus_per_node = gpus_per_node;
  c.fabric = fabric;
  FabricOptions& o = c.options;
  o.nvlink_latency = option_time(overrides, "fabric.nvlink_latency", o.nvlink_latency);
  o.nic_latency = option_time(overrides, "fabric.nic_latency", o.nic_latency);
  o.hop_latency = option_time(overrides, "fabric.hop_latency", o.hop_latency);
  o.radix = option_int(overrides, "fabric.radix", o.radix, 2, "switch ports");
  o.oversubscription = option_number(overrides, "fabric.oversubscription", o.oversubscription, 1.0, "downlink:uplink, 1 = non-blocking");
  o.nodes_per_rack = option_int(overrides, "fabric.nodes_per_rack", o.nodes_per_rack, 1, "nodes per ToR");
  o.racks_per_pod = option_int(overrides, "fabric.racks_per_pod", o.racks_per_pod, 1, "racks per pod");
  o.pod_oversubscription = option_number(overrides, "fabric.pod_oversubscription", o.pod_oversubscription, 1.0, "pod downlink:uplink");
  o.domain_gpus = option_int(overrides, "fabric.domain_gpus", o.domain_gpus, 1, "GPUs per NVLink domain");

  const int n = nodes * gpus_per_node;
  const int G = gpus_per_node;
  const auto nic_bw = gpu.nic_bw;
  c.domain_gpus = G;
  if (fabric == "nvl72") {
    if (o.domain_gpus % G != 0) {
      throw InputError("--set fabric.domain_gpus", std::to_string(o.domain_gpus) + " is not a multiple of --gpus-per-node " +
                                                       std::to_string(G) + "; an NVLink domain holds whole nodes");
    }
    if (n % o.domain_gpus != 0) {
      throw InputError("--nodes", std::to_string(nodes) + " nodes x " + std::to_string(G) + " GPUs do not fill whole NVLink domains of " +
                                      std::to_string(o.domain_gpus) + "; use a multiple of " + std::to_string(o.domain_gpus / G) + " nodes");
    }
    c.domain_gpus = o.domain_gpus;
  }
  const int domains = n / c.domain_gpus;

  // Vertices: GPUs (= ranks), then one NVSwitch per domain, then fabric switches. Room for
  // the links (fewer than three per GPU in every fabric here) saves regrowing 16,384-GPU
  // clusters' arrays.
  c.switch_names.reserve(static_cast<size_t>(domains));
  c.links.reserve(static_cast<size_t>(3 * n));
  const int nvsw0 = n;
  for (int d = 0; d < domains; ++d) {
    c.switch_names.push_back(numbered(fabric == "nvl72" ? "nvsw-d" : "nvsw-n", d));
  }
  auto add_vertex = [&](const std::string& name) {
    c.switch_names.push_back(name);
    return c.vertex_count() - 1;
  };
  // Links: nvl-* (index = rank), nic-* (index = n + rank), then fab-*.
  for (int r = 0; r < n; ++r) {
    c.links.push_back({numbered("nvl-n", c.node_of(r), "-g", c.index_of(r)), gpu.nvlink_bw,
                       o.nvlink_latency / 2.0, LinkKind::nvlink, r, nvsw0 + c.domain_of(r)});
  }
  // nic endpoints are filled in per fabric below.
  for (int r = 0; r < n; ++r) {
    c.links.push_back({numbered("nic-n", c.node_of(r), "-g", c.index_of(r)), nic_bw,
                       o.nic_latency / 2.0, LinkKind::nic, r, -1});
  }
  auto nic = [n](int r) { return n + r; };
  auto add_fab = [&](const std::string& name, core::BytesPerSecond bw, int a, int b) {
    c.links.push_back({name, bw, o.hop_latency, LinkKind::fabric, a, b});
    return static_cast<int>(c.links.size()) - 1;
  };
  const std::string where = "--fabric " + fabric;
  Routing& rt = c.routing;
  rt.gpus = n;
  rt.gpus_per_node = G;
  rt.domain_gpus = c.domain_gpus;

  if (fabric == "single-switch" || fabric == "nvl72") {
    int sw = add_vertex("switch");
    for (int r = 0; r < n; ++r) c.links[nic(r)].b = sw;
    c.tiers.push_back({"switch", 1, nic_bw * static_cast<double>(n), core::BytesPerSecond(0)});
    rt.scale_out = Routing::ScaleOut::Switch;
  } else if (fabric == "rail-fat-tree" || fabric == "multi-plane-fat-tree") {
    const bool planes = fabric == "multi-plane-fat-tree";
    auto [down, up] = split_ports(o.radix, o.oversubscription, where);
    const int leaves_per_rail = (nodes + down - 1) / down;
    const int leaves_per_core = planes ? leaves_per_rail : leaves_per_rail * G;
    if (leaves_per_core > o.radix) {
      long long max_gpus = static_cast<long long>(o.radix) * down * (planes ? G : 1);
      throw InputError(where, "radix " + std::to_string(o.radix) + " builds at most " + std::to_string(max_gpus) +
                                  " GPUs in two tiers (" + std::to_string(o.radix) + " leaves x " + std::to_string(down) +
                                  " downlinks" + (planes ? " per plane" : "") + "), not " + std::to_string(n) +
                                  "; raise --set fabric.radix, use fewer nodes or fabric clos3");
    }
    const core::BytesPerSecond uplink = nic_bw * static_cast<double>(up);
    std::vector<int> core_vertex;
    for (int p = 0; p < (planes ? G : 1); ++p) {
      core_vertex.push_back(add_vertex(planes ? "spine-p" + std::to_string(p) : "spine"));
    }
    std::vector<int>& leaf_link = rt.leaf_link;
    leaf_link.assign(static_cast<size_t>(G * leaves_per_rail), 0);
    for (int g = 0; g < G; ++g) {
      for (int l = 0; l < leaves_per_rail; ++l) {
        std::string id = (planes ? "p" : "r") + std::to_string(g) + "-l" + std::to_string(l);
        int leaf = add_vertex("leaf-" + id);
        leaf_link[static_cast<size_t>(g * leaves_per_rail + l)] =
            add_fab("fab-" + id, uplink, leaf, core_vertex[planes ? static_cast<size_t>(g) : 0]);
      }
    }
    for (int r = 0; r < n; ++r) {
      int g = c.index_of(r), l = c.node_of(r) / down;
      c.links[nic(r)].b = c.links[leaf_link[static_cast<size_t>(g * leaves_per_rail + l)]].a;
    }
    c.tiers.push_back({"leaf", G * leaves_per_rail, nic_bw * static_cast<double>(down), uplink});
    c.tiers.push_back({planes ? "spine (per plane)" : "spine", (planes ? G : 1) * up,
                       nic_bw * static_cast<double>(leaves_per_core), core::BytesPerSecond(0)});
    rt.scale_out = planes ? Routing::ScaleOut::Planes : Routing::ScaleOut::RailTree;
    rt.leaves_per_rail = leaves_per_rail;
    rt.downlinks = down;
  } else if (fabric == "clos3") {
    const int npr = o.nodes_per_rack;
    const int racks = (nodes + npr - 1) / npr;
    const int pods = (racks + o.racks_per_pod - 1) / o.racks_per_pod;
    const core::BytesPerSecond tor_down = nic_bw * static_cast<double>(npr * G);
    const core::BytesPerSecond tor_up = tor_down / o.oversubscription;
    const core::BytesPerSecond pod_down = tor_up * static_cast<double>(o.racks_per_pod);
    const core::BytesPerSecond pod_up = pod_down / o.pod_oversubscription;
    int agg = add_vertex("aggregation");
    std::vector<int>&pod_link = rt.pod_link, &tor_link = rt.tor_link;
    for (int p = 0; p < pods; ++p) {
      int pv = add_vertex("pod-" + std::to_string(p));
      pod_link.push_back(add_fab("fab-pod" + std::to_string(p), pod_up, pv, agg));
    }
    for (int t = 0; t < racks; ++t) {
      int tv = add_vertex(numbered("tor-", t));
      tor_link.push_back(add_fab(numbered("fab-tor", t), tor_up, tv, c.links[pod_link[static_cast<size_t>(t / o.racks_per_pod)]].a));
    }
    for (int r = 0; r < n; ++r) c.links[nic(r)].b = c.links[tor_link[static_cast<size_t>(c.node_of(r) / npr)]].a;
    c.tiers.push_back({"tor", racks, tor_down, tor_up});
    c.tiers.push_back({"pod", pods, pod_down, pod_up});
    c.tiers.push_back({"aggregation", 1, pod_up * static_cast<double>(pods), core::BytesPerSecond(0)});
    rt.scale_out = Routing::ScaleOut::Clos3;
    rt.nodes_per_rack = npr;
    rt.racks_per_pod = o.racks_per_pod;
  }
  return c;
}

}  // namespace tcsim::topology
