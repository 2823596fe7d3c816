// Reading and checking any SimGrid platform file meant for tcsim (hand-written or from
// `tcsim topo gen`), with file:line for every problem. Streams the file (libxml2 reader),
// so files with millions of routes are read without building a DOM.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "topology/dot.hpp"
#include "topology/gpu.hpp"

namespace tcsim::topology {

/// One problem: where (file:line), the element, what is wrong and how to fix it.
struct PlatformProblem {
  std::string where;
  std::string element;
  std::string what;
  [[nodiscard]] std::string text() const { return where + ": " + element + ": " + what; }
};

struct PlatformGpu {
  std::string host;
  int line = 0;
  int rank = -1, node = -1, index = -1;
  GpuSpec spec;
};

/// What a researcher checks first; filled by read_platform().
struct PlatformSummary {
  std::string path;
  std::map<std::string, std::string> zone_properties;  ///< tcsim.* metadata when present
  std::vector<PlatformGpu> gpus;                       ///< sorted by rank
  int links = 0;
  long long routes = 0;
  int worst_case_hops = 0;       ///< most links on any route
  long long routed_gpu_pairs = 0;
  std::vector<PlatformProblem> problems;  ///< empty when the file follows the convention
  [[nodiscard]] int gpus_per_node() const;
};

/// Reads and checks path. Malformed XML and a missing file are problems too (not
/// exceptions), so that `topo check` can report them all the same way.
/// With graph, also infers the fabric from the routes (for `topo show --dot`): the two ends
/// of every link, joined where consecutive links of a route meet; a junction reached by no
/// GPU is a switch. Works for hand-written files as well as generated ones.
PlatformSummary read_platform(const std::string& path, FabricGraph* graph = nullptr);

}  // namespace tcsim::topology
