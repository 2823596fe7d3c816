#include "topology/presets.hpp"

#include <set>

#include "core/error.hpp"
#include "core/proto_util.hpp"
#include "topology/hardware.pb.h"

namespace tcsim::embedded {
extern const std::string_view presets_textproto;
}

namespace tcsim::topology {

std::vector<Preset> parse_presets(const std::string& text, const std::string& name) {
  pb::PresetCatalog msg;
  core::parse_textproto(text, name, msg);
  std::vector<Preset> out;
  std::set<std::string> seen;
  for (const auto& e : msg.preset()) {
    const std::string where = name + ": preset " + (e.name().empty() ? "(unnamed)" : e.name());
    if (e.name().empty()) throw core::InputError(where, "needs a name");
    if (!seen.insert(e.name()).second) throw core::InputError(where, "duplicate name; preset names must be unique");
    if (e.gpu().empty() || e.fabric().empty() || e.nodes() < 1) {
      throw core::InputError(where, "needs gpu, fabric and nodes >= 1 (the `tcsim topo gen` arguments)");
    }
    if (e.citation().empty()) throw core::InputError(where, "needs a citation (where the shape and size come from)");
    Preset p;
    p.name = e.name();
    p.description = e.description();
    p.citation = e.citation();
    p.gpu = e.gpu();
    p.nodes = e.nodes();
    p.gpus_per_node = e.gpus_per_node() > 0 ? e.gpus_per_node() : 8;
    p.fabric = e.fabric();
    p.sets.assign(e.set().begin(), e.set().end());
    p.example_nodes = e.has_example() ? e.example().nodes() : 0;
    p.example_sets.assign(e.example().set().begin(), e.example().set().end());
    p.example_why = e.example().why();
    out.push_back(std::move(p));
  }
  return out;
}

const std::vector<Preset>& presets() {
  static const std::vector<Preset> all =
      parse_presets(std::string(embedded::presets_textproto), "platforms/presets.textproto");
  return all;
}

const Preset& find_preset(const std::string& name, const std::string& where) {
  for (const auto& p : presets()) {
    if (p.name == name) return p;
  }
  std::string known;
  for (const auto& p : presets()) known += (known.empty() ? "" : ", ") + p.name;
  throw core::InputError(where, "unknown preset '" + name + "'; known: " + known + " (tcsim topo presets)");
}

GenRecipe recipe_of(const Preset& p, bool example) {
  GenRecipe r{p.gpu, p.nodes, p.gpus_per_node, p.fabric, p.sets};
  if (example) {
    if (p.example_nodes < 1) {
      throw core::InputError("--preset " + p.name + " --example", "this preset has no small example instance");
    }
    r.nodes = p.example_nodes;
    r.sets.insert(r.sets.end(), p.example_sets.begin(), p.example_sets.end());
  }
  return r;
}

Cluster build_recipe(const GenRecipe& r, const std::vector<std::string>& extra_sets) {
  core::Overrides o;
  for (const auto& s : r.sets) o.add(s, "preset");
  for (const auto& s : extra_sets) o.add(s);
  auto spec = find_gpu(r.gpu, "--gpu");
  apply_gpu_overrides(spec, o);
  auto cluster = build_cluster(spec, r.nodes, r.gpus_per_node, r.fabric, o);
  std::vector<std::string> known = gpu_keys();
  for (const auto& f : fabric_options()) known.push_back(f.key);
  o.check_all_taken(known);
  return cluster;
}

}  // namespace tcsim::topology
