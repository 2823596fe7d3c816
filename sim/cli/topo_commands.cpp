// `tcsim topo gen | presets | fabrics | check | show`: writing SimGrid platform XML for a cluster,
// and checking and explaining any platform file meant for tcsim (platforms/README.md).
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/error.hpp"
#include "core/overrides.hpp"
#include "sim/cli/commands.hpp"
#include "topology/cluster.hpp"
#include "topology/dot.hpp"
#include "topology/presets.hpp"
#include "sim/platform_check.hpp"
#include "topology/platform_reader.hpp"
#include "topology/platform_xml.hpp"

namespace tcsim::cli {
namespace {

struct GenArgs {
  std::string gpu;
  int nodes = 0;
  int gpus_per_node = 8;
  std::string fabric = "single-switch";
  std::vector<std::string> sets;
  std::string out;
  std::string preset;
  bool example = false;
  std::string dot;
};

std::string command_line(const topology::GenRecipe& r, const std::vector<std::string>& extra) {
  std::string s = "tcsim topo gen --gpu " + r.gpu + " --nodes " + std::to_string(r.nodes) + " --gpus-per-node " +
                  std::to_string(r.gpus_per_node) + " --fabric " + r.fabric;
  for (const auto& x : r.sets) s += " --set " + x;
  for (const auto& x : extra) s += " --set " + x;
  return s;
}

// The `topo gen` recipe from the command line: a preset (with --nodes and --set on top) or
// --gpu/--nodes/--fabric.
topology::GenRecipe recipe_from(const GenArgs& a, CLI::App* gen) {
  if (a.preset.empty()) {
    if (a.example) throw core::InputError("--example", "needs --preset NAME (the example instance of a preset)");
    if (a.gpu.empty() || gen->count("--nodes") == 0) {
      throw core::InputError("topo gen", "give --gpu NAME and --nodes N, or --preset NAME (tcsim topo presets)");
    }
    return {a.gpu, a.nodes, a.gpus_per_node, a.fabric, {}};
  }
  for (const char* opt : {"--gpu", "--fabric", "--gpus-per-node"}) {
    if (gen->count(opt) > 0) {
      throw core::InputError(opt, std::string("comes from --preset ") + a.preset +
                                      "; drop it, or use --gpu/--nodes/--fabric without --preset (a GPU variant: --set gpu.X=...)");
    }
  }
  auto r = topology::recipe_of(topology::find_preset(a.preset), a.example);
  if (gen->count("--nodes") > 0) r.nodes = a.nodes;
  return r;
}

void write_dot_file(const topology::FabricGraph& g, const std::string& path) {
  std::ofstream out(path, std::ios::binary);
  if (!out) throw core::InputError("--dot " + path, "cannot write the file (does the folder exist?)");
  auto d = topology::write_dot(g, out);
  out.close();
  if (!out) throw core::InputError("--dot " + path, "writing failed (disk full?)");
  std::fprintf(stderr, "wrote %s: %d node boxes, %d switches in %d tiers, %d edges (render: dot -Tpng %s -o fabric.png)\n",
               path.c_str(), d.node_boxes, d.switches, d.tiers, d.edges, path.c_str());
}

// Reads and checks a file; with SimGrid's own load as the last check. Prints every problem.
topology::PlatformSummary check(const std::string& path, bool load, topology::FabricGraph* graph = nullptr) {
  auto s = topology::read_platform(path, graph);
  if (s.problems.empty() && load) {
    auto r = sim::load_platform_in_child(path);
    if (!r.ok) s.problems.push_back({path, "platform", r.error});
  }
  for (const auto& p : s.problems) std::fprintf(stderr, "error: %s\n", p.text().c_str());
  if (!s.problems.empty()) exit_code() = 2;
  return s;
}

std::string prop(const topology::PlatformSummary& s, const std::string& key, const std::string& otherwise = "n/a") {
  auto it = s.zone_properties.find(key);
  return it == s.zone_properties.end() ? otherwise : it->second;
}

}  // namespace

void register_topo_commands(CLI::App& app) {
  auto* topo = app.add_subcommand("topo", "cluster topologies: generate, check and explain SimGrid platform XML");
  topo->require_subcommand(1);

  auto gen_args = std::make_shared<GenArgs>();
  auto* gen = topo->add_subcommand(
      "gen", "build a cluster of N nodes of one GPU type on a named fabric (or a named preset); write SimGrid platform "
             "XML with -o, a Graphviz drawing with --dot; without -o print its GPUs, links and bisection");
  gen->add_option("--preset", gen_args->preset, "named recipe from platforms/presets.textproto (tcsim topo presets)");
  gen->add_flag("--example", gen_args->example, "with --preset: its small example instance (platforms/examples/NAME.example.xml)");
  gen->add_option("--gpu", gen_args->gpu, "GPU catalog name (tcsim hw list)");
  gen->add_option("--nodes", gen_args->nodes, "number of nodes (with --preset: overrides its size)");
  gen->add_option("--gpus-per-node", gen_args->gpus_per_node, "GPUs per node (one NVSwitch each)")->capture_default_str();
  gen->add_option("--fabric", gen_args->fabric, "scale-out fabric (tcsim topo fabrics)")->capture_default_str();
  gen->add_option("--set", gen_args->sets,
                  "override gpu.* or fabric.* values, e.g. --set gpu.nvlink_bw=200GBps --set fabric.radix=32 (repeatable; "
                  "after a preset's own)");
  gen->add_option("-o,--out", gen_args->out, "output XML file (a Full zone: GPUs^2 routes, 2,048 GPUs = 1.29 GB)");
  gen->add_option("--dot", gen_args->dot, "write a Graphviz drawing of the fabric (nodes collapsed) to this file");
  gen->callback([a = gen_args, gen] {
    auto recipe = recipe_from(*a, gen);
    auto cluster = topology::build_recipe(recipe, a->sets);
    const long long routes = static_cast<long long>(cluster.gpu_count()) * (cluster.gpu_count() - 1);
    if (!a->dot.empty()) write_dot_file(topology::graph_of(cluster), a->dot);
    if (a->out.empty()) {
      auto props = topology::platform_properties(cluster);
      std::printf("%s%s\n  GPUs            %d x %s (%d nodes x %d), fabric %s\n",
                  a->preset.empty() ? "cluster" : ("preset " + a->preset).c_str(), a->example ? " (example)" : "",
                  cluster.gpu_count(), cluster.gpu.name.c_str(), cluster.nodes, cluster.gpus_per_node, cluster.fabric.c_str());
      std::printf("  links           %zu (nvlink %d, nic %d, fabric %d)\n", cluster.links.size(),
                  cluster.link_count(topology::LinkKind::nvlink), cluster.link_count(topology::LinkKind::nic),
                  cluster.link_count(topology::LinkKind::fabric));
      std::printf("  bisection       %s per direction (first half of ranks to second)\n", props["tcsim.bisection_bw"].c_str());
      std::printf("  tiers           %s (name:switches:oversubscription)\n", props["tcsim.tiers"].c_str());
      std::printf("  worst case      %d links on a route\n", cluster.worst_case_hops());
      std::printf("  XML             not written (-o FILE writes it: %lld routes)\n", routes);
      return;
    }
    std::ofstream out(a->out, std::ios::binary);
    if (!out) throw core::InputError("-o " + a->out, "cannot write the file (does the folder exist?)");
    std::string generator = command_line(recipe, a->sets);
    if (!a->preset.empty()) generator = "tcsim topo gen --preset " + a->preset + (a->example ? " --example" : "") + " = " + generator;
    topology::write_platform_xml(cluster, out, generator);
    out.close();
    if (!out) throw core::InputError("-o " + a->out, "writing failed (disk full?)");
    std::fprintf(stderr, "wrote %s: %d x %s, %d nodes, fabric %s, %lld routes\n", a->out.c_str(), cluster.gpu_count(),
                 cluster.gpu.name.c_str(), cluster.nodes, cluster.fabric.c_str(), routes);
  });

  auto* presets = topo->add_subcommand("presets", "list the named cluster presets (platforms/presets.textproto)");
  auto presets_names = std::make_shared<bool>(false);
  presets->add_flag("--names", *presets_names, "print only the names, one per line (for scripts)");
  presets->callback([presets_names] {
    for (const auto& p : topology::presets()) {
      if (*presets_names) {
        std::printf("%s\n", p.name.c_str());
        continue;
      }
      auto r = topology::recipe_of(p, false);
      std::printf("%s\n  %s\n  %s\n  source: %s\n", p.name.c_str(), p.description.c_str(), command_line(r, {}).c_str(),
                  p.citation.c_str());
      if (p.example_nodes > 0) {
        std::printf("  example: %d nodes%s%s (platforms/examples/%s.example.xml)\n", p.example_nodes,
                    p.example_sets.empty() ? "" : ", --set ", [&] {
                      std::string x;
                      for (const auto& e : p.example_sets) x += (x.empty() ? "" : " --set ") + e;
                      return x;
                    }().c_str(),
                    p.name.c_str());
      }
    }
  });

  auto check_path = std::make_shared<std::string>();
  auto* chk = topo->add_subcommand("check", "validate a SimGrid platform file for tcsim (well-formed, GPU hosts with "
                                            "their spec and units, positive bandwidths, every GPU pair routed, loadable)");
  chk->add_option("file", *check_path, "platform XML")->required();
  chk->callback([check_path] {
    auto s = check(*check_path, true);
    if (s.problems.empty()) {
      std::printf("%s: ok: %zu GPU hosts, %d links, %lld routes, every GPU pair routed, loads in SimGrid\n",
                  check_path->c_str(), s.gpus.size(), s.links, s.routes);
    }
  });

  auto show_path = std::make_shared<std::string>();
  auto show_json = std::make_shared<bool>(false);
  auto* show = topo->add_subcommand("show", "explain a platform file: GPUs, bandwidths, bisection, oversubscription, hops");
  show->add_option("file", *show_path, "platform XML")->required();
  show->add_flag("--json", *show_json, "print JSON");
  auto show_dot = std::make_shared<std::string>();
  show->add_option("--dot", *show_dot, "also write a Graphviz drawing of the fabric (nodes collapsed, switches by tier; "
                                       "switches are inferred from where the routes' links meet)");
  show->callback([show_path, show_json, show_dot] {
    topology::FabricGraph graph;
    auto s = check(*show_path, false, show_dot->empty() ? nullptr : &graph);
    if (!s.problems.empty()) return;
    if (!show_dot->empty()) write_dot_file(graph, *show_dot);
    const auto& g = s.gpus.front().spec;
    auto p = topology::to_properties(g);
    if (*show_json) {
      nlohmann::ordered_json j;
      j["file"] = s.path;
      j["gpu"] = g.name;
      j["gpus"] = s.gpus.size();
      j["gpus_per_node"] = s.gpus_per_node();
      j["fabric"] = prop(s, "tcsim.fabric");
      j["nvlink_bw_per_direction"] = p["gpu.nvlink_bw"];
      j["nic_bw_per_direction"] = p["gpu.nic_bw"];
      j["bisection_bw"] = prop(s, "tcsim.bisection_bw");
      j["tiers"] = prop(s, "tcsim.tiers");
      j["links"] = s.links;
      j["routes"] = s.routes;
      j["worst_case_hops"] = s.worst_case_hops;
      std::cout << j.dump(2) << "\n";
      return;
    }
    std::printf("%s\n  GPUs            %zu x %s (%d per node), fabric %s\n", s.path.c_str(), s.gpus.size(), g.name.c_str(),
                s.gpus_per_node(), prop(s, "tcsim.fabric").c_str());
    std::printf("  scale-up        %s per GPU per direction (NVLink)\n", p["gpu.nvlink_bw"].c_str());
    std::printf("  scale-out       %s per GPU per direction (NIC)\n", p["gpu.nic_bw"].c_str());
    std::printf("  bisection       %s per direction (first half of ranks to second)\n", prop(s, "tcsim.bisection_bw").c_str());
    std::printf("  tiers           %s (name:switches:oversubscription)\n", prop(s, "tcsim.tiers").c_str());
    std::printf("  worst case      %d links on a route\n  links / routes  %d / %lld\n", s.worst_case_hops, s.links, s.routes);
  });

  auto* fabrics = topo->add_subcommand("fabrics", "list the registered fabrics and their options");
  fabrics->callback([] {
    for (const auto& f : topology::fabrics()) {
      std::printf("%-22s %s\n%-22s   after: %s\n", f.name.c_str(), f.description.c_str(), "", f.citation.c_str());
      std::string opts;
      for (const auto& k : f.options) opts += (opts.empty() ? "" : ", ") + k;
      std::printf("%-22s   options: %s\n", "", opts.c_str());
    }
    std::printf("\noptions (--set key=value):\n");
    for (const auto& o : topology::fabric_options()) {
      std::printf("  %-28s default %-7s %s\n", o.key.c_str(), o.default_value.c_str(), o.description.c_str());
    }
  });
}

}  // namespace tcsim::cli
