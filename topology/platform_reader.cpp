#include "topology/platform_reader.hpp"

#include <algorithm>
#include <cstdarg>
#include <fstream>
#include <set>
#include <unordered_map>

#include <libxml/xmlreader.h>

#include "core/error.hpp"
#include "core/quantity.hpp"

namespace tcsim::topology {
namespace {

struct XmlError {
  std::string message;
  int line = 0;
};

void on_error(void* arg, xmlErrorPtr error) {
  auto* e = static_cast<XmlError*>(arg);
  if (error == nullptr || error->level < XML_ERR_ERROR || !e->message.empty()) return;
  e->message = error->message != nullptr ? error->message : "XML error";
  while (!e->message.empty() && (e->message.back() == '\n' || e->message.back() == ' ')) e->message.pop_back();
  e->line = error->line;
}

std::string attr(xmlTextReaderPtr r, const char* name) {
  xmlChar* v = xmlTextReaderGetAttribute(r, reinterpret_cast<const xmlChar*>(name));
  if (v == nullptr) return {};
  std::string s(reinterpret_cast<const char*>(v));
  xmlFree(v);
  return s;
}
bool has_attr(xmlTextReaderPtr r, const char* name) {
  xmlChar* v = xmlTextReaderGetAttribute(r, reinterpret_cast<const xmlChar*>(name));
  if (v == nullptr) return false;
  xmlFree(v);
  return true;
}

int to_int(const std::string& s) {
  try {
    size_t pos = 0;
    int v = std::stoi(s, &pos);
    return pos == s.size() ? v : -1;
  } catch (...) {
    return -1;
  }
}

// Union-find over link ends and hosts, for inferring the fabric graph from routes.
class Junctions {
public:
  int add() {
    parent_.push_back(static_cast<int>(parent_.size()));
    return parent_.back();
  }
  int find(int x) {
    while (parent_[static_cast<size_t>(x)] != x) {
      parent_[static_cast<size_t>(x)] = parent_[static_cast<size_t>(parent_[static_cast<size_t>(x)])];
      x = parent_[static_cast<size_t>(x)];
    }
    return x;
  }
  void unite(int a, int b) {
    a = find(a), b = find(b);
    if (a != b) parent_[static_cast<size_t>(std::max(a, b))] = std::min(a, b);
  }
  [[nodiscard]] size_t size() const { return parent_.size(); }

private:
  std::vector<int> parent_;
};

struct GraphLink {
  std::string name;
  double bandwidth = 0;
  std::string kind;
  bool splitduplex = false;
  int end_a = 0, end_b = 0;  // junction ids; UP goes a -> b
  bool used = false;
};

std::string kind_from_name(const std::string& name) {
  if (name.rfind("nvl-", 0) == 0) return "nvlink";
  if (name.rfind("nic-", 0) == 0) return "nic";
  if (name.rfind("fab-", 0) == 0) return "fabric";
  return "other";
}

struct PendingHost {
  std::string id;
  int line = 0;
  std::map<std::string, std::string> props;
};

}  // namespace

int PlatformSummary::gpus_per_node() const {
  std::map<int, int> per;
  for (const auto& g : gpus) per[g.node]++;
  int m = 0;
  for (const auto& [n, c] : per) m = std::max(m, c);
  return m;
}

PlatformSummary read_platform(const std::string& path, FabricGraph* graph) {
  PlatformSummary s;
  s.path = path;
  auto problem = [&](int line, const std::string& element, const std::string& what) {
    s.problems.push_back({path + (line > 0 ? ":" + std::to_string(line) : ""), element, what});
  };
  if (!std::ifstream(path)) {
    problem(0, "file", "cannot open it (does it exist and is it readable?)");
    return s;
  }
  xmlTextReaderPtr r = xmlReaderForFile(path.c_str(), nullptr, XML_PARSE_NONET | XML_PARSE_HUGE);
  if (r == nullptr) {
    problem(0, "file", "not readable as XML");
    return s;
  }
  XmlError err;
  xmlTextReaderSetStructuredErrorHandler(r, on_error, &err);

  std::unordered_map<std::string, std::pair<bool, int>> links;  // id -> (splitduplex, line)
  std::unordered_map<std::string, int> host_index;               // host id -> GPU vertex, -1 for non-GPU
  std::vector<PendingHost> hosts;
  std::vector<std::pair<int, int>> route_pairs;  // converted to a bitset after reading
  bool in_host = false, in_link = false, saw_platform = false;
  std::string route_src, route_dst, route_sym;
  int route_line = 0, route_hops = 0;
  std::vector<std::pair<std::string, std::pair<std::string, int>>> raw_routes;  // (src,(dst,symmetric))
  // Fabric inference (only with graph): junction ids of hosts and link ends.
  Junctions junctions;
  std::unordered_map<std::string, int> host_junction, link_of;
  std::vector<GraphLink> glinks;
  int route_at = -1;  // junction the route being read has reached
  auto junction_of_host = [&](const std::string& id) {
    auto [it, fresh] = host_junction.try_emplace(id, 0);
    if (fresh) it->second = junctions.add();
    return it->second;
  };

  int ret;
  while ((ret = xmlTextReaderRead(r)) == 1) {
    int type = xmlTextReaderNodeType(r);
    std::string name = reinterpret_cast<const char*>(xmlTextReaderConstName(r));
    int line = xmlTextReaderGetParserLineNumber(r);
    if (type == XML_READER_TYPE_ELEMENT) {
      bool empty = xmlTextReaderIsEmptyElement(r);
      if (name == "platform") {
        saw_platform = true;
      } else if (name == "host") {
        hosts.push_back({attr(r, "id"), line, {}});
        if (graph != nullptr) junction_of_host(hosts.back().id);
        if (!has_attr(r, "speed")) problem(line, "host " + hosts.back().id, "no speed; add speed=\"989Tf\" (the BF16 peak)");
        in_host = !empty;
      } else if (name == "link") {
        std::string id = attr(r, "id");
        std::string bw = attr(r, "bandwidth");
        std::string policy = attr(r, "sharing_policy");
        links[id] = {policy == "SPLITDUPLEX", line};
        s.links++;
        if (graph != nullptr) {
          GraphLink gl{id, 0, kind_from_name(id), policy == "SPLITDUPLEX", junctions.add(), junctions.add(), false};
          try {
            gl.bandwidth = core::parse_bandwidth(bw, "bandwidth").value();
          } catch (const core::InputError&) {
          }
          link_of[id] = static_cast<int>(glinks.size());
          glinks.push_back(gl);
        }
        try {
          double v = core::parse_bandwidth(bw, "bandwidth").value();
          if (!(v > 0)) problem(line, "link " + id, "bandwidth '" + bw + "' must be positive, e.g. 450GBps");
        } catch (const core::InputError& e) {
          problem(line, "link " + id, "bandwidth: " + e.problem());
        }
        std::string lat = attr(r, "latency");
        if (!lat.empty()) {
          try {
            if (core::parse_seconds(lat, "latency").value() < 0) problem(line, "link " + id, "latency must not be negative");
          } catch (const core::InputError& e) {
            problem(line, "link " + id, "latency: " + e.problem());
          }
        }
        in_link = !empty;
      } else if (name == "prop") {
        std::string id = attr(r, "id"), value = attr(r, "value");
        if (in_host) hosts.back().props[id] = value;
        else if (!in_link) s.zone_properties[id] = value;
        else if (graph != nullptr && id == "tcsim.kind" && !glinks.empty()) glinks.back().kind = value;
      } else if (name == "route") {
        route_src = attr(r, "src");
        route_dst = attr(r, "dst");
        route_sym = attr(r, "symmetrical");
        route_line = line;
        route_hops = 0;
        s.routes++;
        raw_routes.push_back({route_src, {route_dst, route_sym == "NO" || route_sym == "no" ? 0 : 1}});
        if (empty) s.worst_case_hops = std::max(s.worst_case_hops, 0);
        route_at = graph != nullptr && !empty ? junction_of_host(route_src) : -1;
      } else if (name == "link_ctn") {
        std::string id = attr(r, "id");
        route_hops++;
        s.worst_case_hops = std::max(s.worst_case_hops, route_hops);
        auto it = links.find(id);
        if (it == links.end()) {
          problem(line, "route " + route_src + " -> " + route_dst, "link '" + id + "' is not declared before this route");
        } else if (it->second.first && attr(r, "direction").empty()) {
          problem(line, "route " + route_src + " -> " + route_dst,
                  "SPLITDUPLEX link '" + id + "' needs direction=\"UP\" or \"DOWN\"");
        }
        if (route_at >= 0) {
          auto gl = link_of.find(id);
          if (gl != link_of.end()) {
            GraphLink& l = glinks[static_cast<size_t>(gl->second)];
            std::string dir = attr(r, "direction");
            // A shared link has no direction: enter it at the end already joined to the route.
            bool up = dir.empty() ? junctions.find(l.end_b) != junctions.find(route_at) : dir != "DOWN";
            junctions.unite(route_at, up ? l.end_a : l.end_b);
            route_at = up ? l.end_b : l.end_a;
            l.used = true;
          }
        }
      } else if (name == "zone" || name == "AS") {
        std::string routing = attr(r, "routing");
        if (routing != "Full" && routing != "None") {
          problem(line, "zone " + attr(r, "id"),
                  "routing \"" + routing + "\": use routing=\"Full\" with explicit routes (Floyd/Dijkstra with routers fail in SimGrid 3.32 here)");
        }
      }
    } else if (type == XML_READER_TYPE_END_ELEMENT) {
      if (name == "host") in_host = false;
      if (name == "link") in_link = false;
      if (name == "route" && route_at >= 0) {
        junctions.unite(route_at, junction_of_host(route_dst));
        route_at = -1;
      }
    }
  }
  bool well_formed = ret == 0 && err.message.empty();
  xmlFreeTextReader(r);
  if (!well_formed) {
    problem(err.line, "XML", (err.message.empty() ? std::string("not well-formed") : err.message) +
                                 "; fix the markup at that line");
    return s;
  }
  if (!saw_platform) {
    problem(1, "platform", "no <platform> element: not a SimGrid platform file");
    return s;
  }

  // GPU hosts and their specs.
  for (const auto& h : hosts) {
    auto role = h.props.find("tcsim.role");
    if (role == h.props.end() || role->second != "gpu") continue;
    PlatformGpu g;
    g.host = h.id;
    g.line = h.line;
    for (auto [key, field] : {std::pair{"tcsim.rank", &g.rank}, std::pair{"tcsim.node", &g.node}, std::pair{"tcsim.index", &g.index}}) {
      auto it = h.props.find(key);
      *field = it == h.props.end() ? -1 : to_int(it->second);
      if (*field < 0) problem(h.line, "host " + h.id, std::string("property ") + key + " missing or not a whole number >= 0");
    }
    std::map<std::string, std::string> gp;
    for (const auto& [k, v] : h.props) {
      if (k.rfind("gpu.", 0) == 0) gp[k] = v;
    }
    try {
      g.spec = from_properties(gp, "host " + h.id);
    } catch (const core::InputError& e) {
      std::string w = e.where();
      const std::string prefix = "host " + h.id + ": ";
      if (w.rfind(prefix, 0) == 0) w = w.substr(prefix.size());
      problem(h.line, "host " + h.id, (w == "host " + h.id ? "" : w + ": ") + e.problem());
    }
    s.gpus.push_back(g);
  }
  if (s.gpus.empty()) {
    problem(0, "platform", "no GPU hosts: mark each GPU <host> with <prop id=\"tcsim.role\" value=\"gpu\"/> and its gpu.* spec");
    return s;
  }
  std::sort(s.gpus.begin(), s.gpus.end(), [](const auto& a, const auto& b) { return a.rank < b.rank; });
  for (size_t i = 0; i < s.gpus.size(); ++i) {
    if (s.gpus[i].rank != static_cast<int>(i)) {
      problem(s.gpus[i].line, "host " + s.gpus[i].host,
              "tcsim.rank " + std::to_string(s.gpus[i].rank) + " breaks the sequence 0.." + std::to_string(s.gpus.size() - 1) +
                  " (ranks must be unique and contiguous)");
      break;
    }
  }
  std::set<std::string> names;
  for (const auto& g : s.gpus) names.insert(g.spec.name);
  if (names.size() > 1) problem(0, "platform", "GPU hosts of different types; tcsim needs one GPU type per platform");

  // Every ordered GPU pair routable.
  const size_t n = s.gpus.size();
  for (size_t i = 0; i < n; ++i) host_index[s.gpus[i].host] = static_cast<int>(i);
  std::vector<bool> routed(n * n, false);
  for (const auto& [src, dst_sym] : raw_routes) {
    auto a = host_index.find(src), b = host_index.find(dst_sym.first);
    if (a == host_index.end() || b == host_index.end()) continue;
    routed[static_cast<size_t>(a->second) * n + static_cast<size_t>(b->second)] = true;
    if (dst_sym.second) routed[static_cast<size_t>(b->second) * n + static_cast<size_t>(a->second)] = true;
  }
  long long missing = 0;
  std::string first_missing;
  for (size_t i = 0; i < n; ++i) {
    for (size_t j = 0; j < n; ++j) {
      if (i == j) continue;
      if (routed[i * n + j]) {
        s.routed_gpu_pairs++;
      } else {
        if (missing == 0) first_missing = s.gpus[i].host + " -> " + s.gpus[j].host;
        missing++;
      }
    }
  }
  if (missing > 0) {
    problem(0, "routes", std::to_string(missing) + " ordered GPU pairs have no route (first: " + first_missing +
                             "); add <route src=... dst=... symmetrical=\"NO\"> for each");
  }
  (void)route_line;
  if (graph != nullptr) {
    graph->gpu = s.gpus.front().spec.name;
    graph->title = std::to_string(s.gpus.size()) + " x " + graph->gpu + " (" + path + ")";
    auto fabric = s.zone_properties.find("tcsim.fabric");
    if (fabric != s.zone_properties.end()) graph->title += ", fabric " + fabric->second;
    std::unordered_map<int, int> vertex;  // junction root -> vertex
    for (const auto& g : s.gpus) {
      int root = junctions.find(junction_of_host(g.host));
      if (vertex.try_emplace(root, static_cast<int>(graph->vertices.size())).second) {
        graph->vertices.push_back({g.host, g.node});
      }
    }
    for (const auto& h : hosts) {  // other hosts (e.g. a host standing for a switch) keep their names
      int root = junctions.find(junction_of_host(h.id));
      if (vertex.try_emplace(root, static_cast<int>(graph->vertices.size())).second) graph->vertices.push_back({h.id, -1});
    }
    int switches = 0;
    auto vertex_of = [&](int end) {
      int root = junctions.find(end);
      auto [it, fresh] = vertex.try_emplace(root, static_cast<int>(graph->vertices.size()));
      if (fresh) graph->vertices.push_back({"switch-" + std::to_string(switches++), -1});
      return it->second;
    };
    for (const auto& l : glinks) {
      if (!l.used) continue;
      graph->edges.push_back({l.name, vertex_of(l.end_a), vertex_of(l.end_b), l.bandwidth, l.kind});
    }
  }
  return s;
}

}  // namespace tcsim::topology
