// `tcsim topo gen | fabrics | check | show`: writing SimGrid platform XML for a cluster,
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
};

std::string command_line(const GenArgs& a) {
  std::string s = "tcsim topo gen --gpu " + a.gpu + " --nodes " + std::to_string(a.nodes) + " --gpus-per-node " +
                  std::to_string(a.gpus_per_node) + " --fabric " + a.fabric;
  for (const auto& x : a.sets) s += " --set " + x;
  return s;
}

// Reads and checks a file; with SimGrid's own load as the last check. Prints every problem.
topology::PlatformSummary check(const std::string& path, bool load) {
  auto s = topology::read_platform(path);
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
  auto* gen = topo->add_subcommand("gen", "write SimGrid platform XML for N nodes of one GPU type on a named fabric");
  gen->add_option("--gpu", gen_args->gpu, "GPU catalog name (tcsim hw list)")->required();
  gen->add_option("--nodes", gen_args->nodes, "number of nodes")->required();
  gen->add_option("--gpus-per-node", gen_args->gpus_per_node, "GPUs per node (one NVSwitch each)")->capture_default_str();
  gen->add_option("--fabric", gen_args->fabric, "scale-out fabric (tcsim topo fabrics)")->capture_default_str();
  gen->add_option("--set", gen_args->sets,
                  "override gpu.* or fabric.* values, e.g. --set gpu.nvlink_bw=200GBps --set fabric.radix=32 (repeatable)");
  gen->add_option("-o,--out", gen_args->out, "output XML file")->required();
  gen->callback([a = gen_args] {
    core::Overrides o;
    for (const auto& s : a->sets) o.add(s);
    auto spec = topology::find_gpu(a->gpu, "--gpu");
    topology::apply_gpu_overrides(spec, o);
    auto cluster = topology::build_cluster(spec, a->nodes, a->gpus_per_node, a->fabric, o);
    std::vector<std::string> known = topology::gpu_keys();
    for (const auto& f : topology::fabric_options()) known.push_back(f.key);
    o.check_all_taken(known);
    std::ofstream out(a->out, std::ios::binary);
    if (!out) throw core::InputError("-o " + a->out, "cannot write the file (does the folder exist?)");
    topology::write_platform_xml(cluster, out, command_line(*a));
    out.close();
    if (!out) throw core::InputError("-o " + a->out, "writing failed (disk full?)");
    std::fprintf(stderr, "wrote %s: %d x %s, %d nodes, fabric %s, %lld routes\n", a->out.c_str(), cluster.gpu_count(),
                 spec.name.c_str(), cluster.nodes, cluster.fabric.c_str(),
                 static_cast<long long>(cluster.gpu_count()) * (cluster.gpu_count() - 1));
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
  show->callback([show_path, show_json] {
    auto s = check(*show_path, false);
    if (!s.problems.empty()) return;
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
