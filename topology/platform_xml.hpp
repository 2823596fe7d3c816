// Writing a Cluster as SimGrid 3.32 platform XML: one Full-routing zone, a host per GPU
// carrying its spec as properties, SPLITDUPLEX links, and an explicit route for every
// ordered GPU pair. The convention is documented in platforms/README.md; sim/ relies on it.
// Output is deterministic: the same cluster gives byte-identical XML.
#pragma once

#include <map>
#include <ostream>
#include <string>

#include "topology/cluster.hpp"

namespace tcsim::topology {

/// Platform-level metadata written as zone properties (tcsim.fabric, tcsim.gpus_per_node,
/// tcsim.nodes, tcsim.domain_gpus, tcsim.gpu, tcsim.bisection_bw, tcsim.tiers, ...).
std::map<std::string, std::string> platform_properties(const Cluster& cluster);

/// Writes the platform. `generator` is recorded as the tcsim.generator property (e.g. the
/// command line that produced it); keep it free of timestamps to stay deterministic.
void write_platform_xml(const Cluster& cluster, std::ostream& out, const std::string& generator);

/// "450GBps", "1.665us", "989Tf": the spellings used in generated XML (SimGrid units).
std::string xml_bandwidth(core::BytesPerSecond bw);
std::string xml_latency(core::Seconds t);
std::string xml_speed(core::FlopsPerSecond f);
/// Escapes &, <, >, " and ' for an XML attribute value.
std::string xml_escape(const std::string& s);

}  // namespace tcsim::topology
