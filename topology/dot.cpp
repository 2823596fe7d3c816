#include "topology/dot.hpp"

#include <algorithm>
#include <map>
#include <queue>
#include <set>

#include "core/quantity.hpp"

namespace tcsim::topology {
namespace {

std::string gbps(double bytes_per_s) { return core::format_number(bytes_per_s / 1e9) + " GB/s"; }

std::string escape(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '"' || c == '\\') o += '\\';
    o += c;
  }
  return o;
}

// "8 x 50 GB/s = 400 GB/s" when all links have one bandwidth, else "3 links, 150 GB/s".
struct Bundle {
  int count = 0;
  double total = 0;
  double first = -1;
  bool uniform = true;
  std::map<std::string, int> kinds;
  void add(double bw, const std::string& kind) {
    if (first < 0) first = bw;
    if (bw != first) uniform = false;
    ++count;
    total += bw;
    kinds[kind]++;
  }
  [[nodiscard]] std::string label() const {
    std::string k;
    for (const auto& [name, n] : kinds) k += (k.empty() ? "" : "+") + name;
    if (count == 1) return k + " " + gbps(total);
    if (uniform) return k + " " + std::to_string(count) + " x " + gbps(first) + " = " + gbps(total);
    return k + " " + std::to_string(count) + " links = " + gbps(total);
  }
};

}  // namespace

FabricGraph graph_of(const Cluster& c) {
  FabricGraph g;
  g.title = std::to_string(c.gpu_count()) + " x " + c.gpu.name + " (" + std::to_string(c.nodes) + " nodes x " +
            std::to_string(c.gpus_per_node) + "), fabric " + c.fabric;
  g.gpu = c.gpu.name;
  for (int v = 0; v < c.vertex_count(); ++v) {
    int node = v < c.gpu_count() ? c.node_of(v) : -1;
    g.vertices.push_back({c.vertex_name(v), node});
  }
  for (const auto& l : c.links) g.edges.push_back({l.name, l.a, l.b, l.bandwidth.value(), to_string(l.kind)});
  return g;
}

DotSummary write_dot(const FabricGraph& g, std::ostream& out) {
  const int nv = static_cast<int>(g.vertices.size());
  std::vector<std::vector<int>> adj(static_cast<size_t>(nv));
  for (const auto& e : g.edges) {
    adj[static_cast<size_t>(e.a)].push_back(e.b);
    adj[static_cast<size_t>(e.b)].push_back(e.a);
  }
  // Group: node boxes are "n<node>", other switches keep their own vertex.
  std::vector<std::string> group(static_cast<size_t>(nv));
  std::map<int, int> gpus_in_node;
  for (int v = 0; v < nv; ++v) {
    const auto& x = g.vertices[static_cast<size_t>(v)];
    if (x.node >= 0) {
      group[static_cast<size_t>(v)] = "n" + std::to_string(x.node);
      gpus_in_node[x.node]++;
    }
  }
  std::map<int, std::vector<std::string>> inside;  // node -> switches collapsed into it
  for (int v = 0; v < nv; ++v) {
    const auto& x = g.vertices[static_cast<size_t>(v)];
    if (x.node >= 0) continue;
    std::set<int> nodes;
    bool only_gpus = !adj[static_cast<size_t>(v)].empty();
    for (int w : adj[static_cast<size_t>(v)]) {
      int n = g.vertices[static_cast<size_t>(w)].node;
      if (n < 0) only_gpus = false;
      else nodes.insert(n);
    }
    if (only_gpus && nodes.size() == 1) {
      group[static_cast<size_t>(v)] = "n" + std::to_string(*nodes.begin());
      inside[*nodes.begin()].push_back(x.name);
    } else {
      group[static_cast<size_t>(v)] = "s" + std::to_string(v);
    }
  }
  // Aggregate edges between groups (unordered pair) and inside node boxes.
  std::map<std::pair<std::string, std::string>, Bundle> between;
  std::map<std::string, Bundle> within;
  std::map<std::string, std::set<std::string>> group_adj;
  for (const auto& e : g.edges) {
    const auto& ga = group[static_cast<size_t>(e.a)];
    const auto& gb = group[static_cast<size_t>(e.b)];
    if (ga == gb) {
      within[ga].add(e.bandwidth, e.kind);
    } else {
      between[std::minmax(ga, gb)].add(e.bandwidth, e.kind);
      group_adj[ga].insert(gb);
      group_adj[gb].insert(ga);
    }
  }
  // Tiers: hops from the node boxes.
  std::map<std::string, int> tier;
  std::queue<std::string> q;
  for (const auto& [n, count] : gpus_in_node) {
    tier["n" + std::to_string(n)] = 0;
    q.push("n" + std::to_string(n));
  }
  while (!q.empty()) {
    auto u = q.front();
    q.pop();
    for (const auto& w : group_adj[u]) {
      if (!tier.count(w)) {
        tier[w] = tier[u] + 1;
        q.push(w);
      }
    }
  }
  DotSummary sum;
  out << "// Written by tcsim (topology/dot.hpp): nodes collapsed, switches in rows by tier.\n"
      << "// Render: dot -Tpng THIS.dot -o fabric.png\n"
      << "graph fabric {\n"
      << "  rankdir=BT; nodesep=0.3; ranksep=1.0;\n"
      << "  label=\"" << escape(g.title) << "\"; labelloc=t; fontsize=18;\n"
      << "  node [fontname=\"Helvetica\", fontsize=10]; edge [fontname=\"Helvetica\", fontsize=8];\n";
  out << "  { rank=same;\n";
  for (const auto& [n, count] : gpus_in_node) {
    std::string label = "node " + std::to_string(n) + "\\n" + std::to_string(count) + " x " + escape(g.gpu);
    auto w = within.find("n" + std::to_string(n));
    if (w != within.end()) label += "\\n" + escape(w->second.label());
    auto in = inside.find(n);
    if (in != inside.end()) label += "\\n(" + escape(in->second.front()) + (in->second.size() > 1 ? ", ..." : "") + ")";
    out << "    n" << n << " [shape=box, style=filled, fillcolor=\"#dbe9f6\", label=\"" << label << "\"];\n";
    sum.node_boxes++;
  }
  out << "  }\n";
  std::map<int, std::vector<int>> by_tier;
  for (int v = 0; v < nv; ++v) {
    const auto& gr = group[static_cast<size_t>(v)];
    if (gr[0] != 's') continue;
    auto t = tier.find(gr);
    by_tier[t == tier.end() ? -1 : t->second].push_back(v);
  }
  for (const auto& [t, vs] : by_tier) {
    out << "  { rank=same; // tier " << (t < 0 ? std::string("unreached") : std::to_string(t)) << "\n";
    for (int v : vs) {
      out << "    s" << v << " [shape=ellipse, style=filled, fillcolor=\"#f6e3c5\", label=\""
          << escape(g.vertices[static_cast<size_t>(v)].name) << "\"];\n";
      sum.switches++;
    }
    out << "  }\n";
    sum.tiers++;
  }
  for (const auto& [ab, b] : between) {
    out << "  " << ab.first << " -- " << ab.second << " [label=\"" << escape(b.label()) << "\"";
    if (b.count > 1) out << ", penwidth=" << std::min(6, 1 + b.count / 4);
    out << "];\n";
    sum.edges++;
  }
  out << "}\n";
  return sum;
}

}  // namespace tcsim::topology
