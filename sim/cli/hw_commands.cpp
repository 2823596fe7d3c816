// `tcsim hw list | show NAME | classify NAME`: the GPU catalog, variants made with
// --set gpu.X=..., and their export-control classification.
#include <cstdio>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/overrides.hpp"
#include "core/quantity.hpp"
#include "sim/cli/commands.hpp"
#include "topology/export_rules.hpp"
#include "topology/gpu.hpp"

namespace tcsim::cli {
namespace {

using nlohmann::ordered_json;

struct HwArgs {
  std::string name;
  std::vector<std::string> sets;
  std::string catalog;
  bool json = false;
  bool textproto = false;
};

topology::GpuSpec resolve(const HwArgs& a) {
  if (!a.catalog.empty()) topology::load_gpu_catalog_file(a.catalog);
  auto spec = topology::find_gpu(a.name, "hw: GPU name");
  core::Overrides o;
  for (const auto& s : a.sets) o.add(s);
  topology::apply_gpu_overrides(spec, o);
  o.check_all_taken(topology::gpu_keys());
  return spec;
}

bool is_uncertain(const topology::GpuSpec& s, const std::string& key) {
  for (const auto& k : s.uncertain) {
    if (k == key) return true;
  }
  return false;
}

ordered_json spec_json(const topology::GpuSpec& s) {
  ordered_json j;
  j["name"] = s.name;
  j["description"] = s.description;
  auto props = topology::to_properties(s);
  ordered_json fields = ordered_json::object();
  for (const auto& f : topology::gpu_fields()) {
    ordered_json e;
    e["value"] = props[f.key];
    e["unit"] = f.unit;
    auto src = s.sources.find(f.key);
    e["source"] = src == s.sources.end() ? "" : src->second;
    e["uncertain"] = is_uncertain(s, f.key);
    fields[f.key] = e;
  }
  j["fields"] = fields;
  return j;
}

void add_common(CLI::App* sub, HwArgs& a) {
  sub->add_option("--set", a.sets, "override a field, e.g. --set gpu.nvlink_bw=200GBps (repeatable)");
  sub->add_option("--catalog", a.catalog, "extra catalog file (textproto, same schema as platforms/gpus.textproto)");
  sub->add_flag("--json", a.json, "print JSON instead of a table");
}

}  // namespace

void register_hw_commands(CLI::App& app) {
  auto* hw = app.add_subcommand("hw", "GPU catalog: list, show and classify GPUs and variants");
  hw->require_subcommand(1);

  auto args = std::make_shared<HwArgs>();

  auto* list = hw->add_subcommand("list", "list the GPUs of the catalog (platforms/gpus.textproto)");
  list->add_option("--catalog", args->catalog, "extra catalog file");
  list->add_flag("--json", args->json, "print JSON");
  list->callback([args] {
    if (!args->catalog.empty()) topology::load_gpu_catalog_file(args->catalog);
    if (args->json) {
      ordered_json j = ordered_json::array();
      for (const auto& g : topology::gpu_catalog()) j.push_back(spec_json(g));
      std::cout << j.dump(2) << "\n";
      return;
    }
    std::printf("%-11s %-9s %9s %9s %7s %9s %12s %8s %6s\n", "name", "family", "BF16", "FP8", "HBM", "HBM BW",
                "NVLink/dir", "NIC/dir", "TDP");
    for (const auto& g : topology::gpu_catalog()) {
      auto p = topology::to_properties(g);
      std::printf("%-11s %-9s %9s %9s %7s %9s %12s %8s %6s%s\n", g.name.c_str(), g.family.c_str(),
                  p["gpu.bf16_flops"].c_str(), p["gpu.fp8_flops"].c_str(), p["gpu.hbm"].c_str(),
                  p["gpu.hbm_bw"].c_str(), p["gpu.nvlink_bw"].c_str(), p["gpu.nic_bw"].c_str(),
                  p["gpu.tdp"].c_str(), g.uncertain.empty() ? "" : "  ⚠");
    }
    std::printf("⚠ = some figures uncertain (tcsim hw show NAME). Per GPU, dense, per direction.\n");
  });

  auto* show = hw->add_subcommand("show", "show every field of a GPU (or a variant made with --set) with its source");
  show->add_option("name", args->name, "catalog name, e.g. H800")->required();
  add_common(show, *args);
  show->add_flag("--textproto", args->textproto,
                 "print the spec as a catalog entry (save a named variant: --set gpu.name=NEW, append to a --catalog file)");
  show->callback([args] {
    auto s = resolve(*args);
    if (args->textproto) {
      std::cout << topology::to_catalog_entry(s);
      return;
    }
    if (args->json) {
      std::cout << spec_json(s).dump(2) << "\n";
      return;
    }
    std::printf("%s: %s\n", s.name.c_str(), s.description.c_str());
    auto p = topology::to_properties(s);
    for (const auto& f : topology::gpu_fields()) {
      auto src = s.sources.find(f.key);
      std::printf("  %-22s %-12s %s%s\n", f.key.c_str(), p[f.key].c_str(), is_uncertain(s, f.key) ? "⚠ " : "",
                  src == s.sources.end() ? "" : src->second.c_str());
    }
  });

  auto* cls = hw->add_subcommand("classify", "US export-control classification (ECCN 3A090 rules in platforms/export_rules.textproto)");
  cls->add_option("name", args->name, "catalog name, e.g. H20")->required();
  add_common(cls, *args);
  cls->callback([args] {
    auto s = resolve(*args);
    auto c = topology::classify(s);
    if (args->json) {
      ordered_json j;
      j["gpu"] = c.gpu;
      j["tpp"] = c.tpp;
      j["pd"] = c.pd;
      j["interconnect_bidirectional_GBps"] = c.interconnect_gbps;
      j["rules"] = ordered_json::array();
      for (const auto& v : c.rules) {
        ordered_json r;
        r["rule"] = v.rule;
        r["title"] = v.title;
        r["controlled"] = v.controlled;
        r["criterion"] = v.deciding.criterion;
        r["threshold"] = v.deciding.text();
        r["value"] = v.deciding.value;
        r["limit"] = v.deciding.limit;
        r["margin"] = v.deciding.margin();
        r["margin_ratio"] = v.deciding.margin_ratio();
        r["source"] = v.source;
        j["rules"].push_back(r);
      }
      std::cout << j.dump(2) << "\n";
      return;
    }
    std::printf("%s: TPP %.0f, PD %.2f (die %s mm2), chip-to-chip %.0f GB/s bidirectional\n", c.gpu.c_str(), c.tpp,
                c.pd, core::format_number(s.die_area_mm2).c_str(), c.interconnect_gbps);
    for (const auto& v : c.rules) {
      std::printf("  %-8s %-14s decided by %s %s: %s vs %s (margin %+g, %+.1f%%)\n", v.rule.c_str(),
                  v.controlled ? "CONTROLLED" : "not controlled", v.deciding.criterion.c_str(), v.deciding.text().c_str(),
                  core::format_number(v.deciding.value).c_str(), core::format_number(v.deciding.limit).c_str(),
                  v.deciding.margin(), 100 * v.deciding.margin_ratio());
    }
  });
}

}  // namespace tcsim::cli
