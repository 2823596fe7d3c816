#include "topology/platform_xml.hpp"

#include <cstdio>

namespace tcsim::topology {
namespace {

std::string g9(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}

}  // namespace

std::string xml_bandwidth(core::BytesPerSecond bw) { return g9(bw.value() / 1e9) + "GBps"; }
std::string xml_latency(core::Seconds t) { return g9(t.value() * 1e6) + "us"; }
std::string xml_speed(core::FlopsPerSecond f) { return g9(f.value() / 1e12) + "Tf"; }

std::string xml_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&apos;"; break;
      default: out += c;
    }
  }
  return out;
}

std::map<std::string, std::string> platform_properties(const Cluster& c) {
  std::map<std::string, std::string> p;
  p["tcsim.fabric"] = c.fabric;
  p["tcsim.gpu"] = c.gpu.name;
  p["tcsim.nodes"] = std::to_string(c.nodes);
  p["tcsim.gpus_per_node"] = std::to_string(c.gpus_per_node);
  p["tcsim.domain_gpus"] = std::to_string(c.domain_gpus);
  p["tcsim.bisection_bw"] = xml_bandwidth(c.bisection_bandwidth());
  std::string tiers;
  for (const auto& t : c.tiers) {
    tiers += (tiers.empty() ? "" : ";") + t.name + ":" + std::to_string(t.switches) + "x:" + g9(t.oversubscription());
  }
  p["tcsim.tiers"] = tiers;
  return p;
}

void write_platform_xml(const Cluster& c, std::ostream& out, const std::string& generator) {
  const int n = c.gpu_count();
  out << "<?xml version='1.0'?>\n"
         "<!DOCTYPE platform SYSTEM \"https://simgrid.org/simgrid.dtd\">\n"
         "<platform version=\"4.1\">\n";
  out << "<!-- " << n << " x " << xml_escape(c.gpu.name) << " (" << c.nodes << " nodes x " << c.gpus_per_node
      << " GPUs), fabric " << c.fabric << ". Conventions: platforms/README.md -->\n";
  out << "<zone id=\"tcsim-cluster\" routing=\"Full\">\n";
  out << "  <prop id=\"tcsim.generator\" value=\"" << xml_escape(generator) << "\"/>\n";
  for (const auto& [k, v] : platform_properties(c)) {
    out << "  <prop id=\"" << k << "\" value=\"" << xml_escape(v) << "\"/>\n";
  }
  const auto props = to_properties(c.gpu);
  const std::string speed = xml_speed(c.gpu.bf16_flops);
  for (int r = 0; r < n; ++r) {
    out << "  <host id=\"" << c.host_name(r) << "\" speed=\"" << speed << "\">\n";
    out << "    <prop id=\"tcsim.role\" value=\"gpu\"/>\n";
    out << "    <prop id=\"tcsim.rank\" value=\"" << r << "\"/>\n";
    out << "    <prop id=\"tcsim.node\" value=\"" << c.node_of(r) << "\"/>\n";
    out << "    <prop id=\"tcsim.index\" value=\"" << c.index_of(r) << "\"/>\n";
    out << "    <prop id=\"tcsim.domain\" value=\"" << c.domain_of(r) << "\"/>\n";
    for (const auto& [k, v] : props) out << "    <prop id=\"" << k << "\" value=\"" << xml_escape(v) << "\"/>\n";
    out << "  </host>\n";
  }
  for (const auto& l : c.links) {
    out << "  <link id=\"" << l.name << "\" bandwidth=\"" << xml_bandwidth(l.bandwidth) << "\" latency=\""
        << xml_latency(l.latency) << "\" sharing_policy=\"SPLITDUPLEX\"><prop id=\"tcsim.kind\" value=\""
        << to_string(l.kind) << "\"/></link>\n";
  }
  std::vector<Hop> hops;
  std::string line;
  std::vector<std::string> names;
  for (int r = 0; r < n; ++r) names.push_back(c.host_name(r));
  for (int s = 0; s < n; ++s) {
    for (int d = 0; d < n; ++d) {
      if (s == d) continue;
      c.route(s, d, hops);
      line.clear();
      line += "  <route src=\"" + names[static_cast<size_t>(s)] + "\" dst=\"" + names[static_cast<size_t>(d)] +
              "\" symmetrical=\"NO\">";
      for (const auto& h : hops) {
        line += "<link_ctn id=\"" + c.links[static_cast<size_t>(h.link)].name + "\" direction=\"" +
                (h.up ? "UP" : "DOWN") + "\"/>";
      }
      line += "</route>\n";
      out << line;
    }
  }
  out << "</zone>\n</platform>\n";
}

}  // namespace tcsim::topology
