// Graphviz drawings of a fabric (`tcsim topo show f.xml --dot out.dot`, `tcsim topo gen
// --dot`): one box per node (its GPUs and any switch only they reach, e.g. the NVSwitch,
// collapsed into it), every other switch as an ellipse in a row per tier (tier = hops from
// the nodes), and one edge per pair of boxes labelled with the links it stands for and
// their aggregate bandwidth per direction. `dot -Tpng out.dot -o out.png` renders it.
#pragma once

#include <ostream>
#include <string>
#include <vector>

#include "topology/cluster.hpp"

namespace tcsim::topology {

/// A fabric as a graph: GPUs and switches as vertices, links as edges. Built from a
/// Cluster, or inferred from any platform file's routes (platform_reader.hpp).
struct FabricGraph {
  struct Vertex {
    std::string name;
    int node = -1;  ///< >= 0: a GPU of that node; -1: a switch (or junction of links)
  };
  struct Edge {
    std::string link;
    int a = 0, b = 0;
    double bandwidth = 0;  ///< bytes/s per direction
    std::string kind;      ///< nvlink, nic, fabric, other
  };
  std::string title;  ///< e.g. "256 x H800, multi-plane-fat-tree"
  std::string gpu;    ///< GPU type shown in node boxes
  std::vector<Vertex> vertices;
  std::vector<Edge> edges;
};

/// The link graph of a built cluster.
FabricGraph graph_of(const Cluster& cluster);

/// Counts of what write_dot draws (for tests and the CLI's message).
struct DotSummary {
  int node_boxes = 0;
  int switches = 0;  ///< switches drawn outside the node boxes
  int tiers = 0;     ///< rows of switches
  int edges = 0;     ///< aggregated edges between boxes
};

/// Writes the collapsed drawing; deterministic (same graph, same bytes).
DotSummary write_dot(const FabricGraph& graph, std::ostream& out);

}  // namespace tcsim::topology
