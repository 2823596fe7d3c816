// Named cluster presets (platforms/presets.textproto): recipes of `tcsim topo gen`
// arguments with a citation. Big presets are built in memory (topology::Cluster) and never
// committed as XML; each has a small example instance that is.
#pragma once

#include <string>
#include <vector>

#include "core/overrides.hpp"
#include "topology/cluster.hpp"

namespace tcsim::topology {

struct Preset {
  std::string name;
  std::string description;
  std::string citation;
  std::string gpu;
  int nodes = 0;
  int gpus_per_node = 8;
  std::string fabric;
  std::vector<std::string> sets;  ///< "key=value"
  int example_nodes = 0;
  std::vector<std::string> example_sets;  ///< applied after sets
  std::string example_why;
};

/// Every preset of the embedded platforms/presets.textproto, in file order.
const std::vector<Preset>& presets();
/// Parses a preset catalog (same schema); name is used in errors.
std::vector<Preset> parse_presets(const std::string& text, const std::string& name);
/// The preset called name; InputError listing the known ones otherwise.
const Preset& find_preset(const std::string& name, const std::string& where = "--preset");

/// The `topo gen` arguments of a preset (or of its small example): gpu, nodes, fabric,
/// and the overrides in order, ready for build_cluster().
struct GenRecipe {
  std::string gpu;
  int nodes = 0;
  int gpus_per_node = 8;
  std::string fabric;
  std::vector<std::string> sets;
};
GenRecipe recipe_of(const Preset& p, bool example);

/// Builds the cluster of a recipe (GPU from the catalog, gpu.* and fabric.* overrides);
/// extra_sets are applied last. Throws InputError for keys that apply to neither.
Cluster build_recipe(const GenRecipe& r, const std::vector<std::string>& extra_sets = {});

}  // namespace tcsim::topology
