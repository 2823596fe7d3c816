// `tcsim trace show`: what a trace holds, and what is wrong with it.
#include <algorithm>

#include <nlohmann/json.hpp>

#include "workloads/chakra/chakra.hpp"
#include "workloads/chakra/internal.hpp"
#include "workloads/chakra/tcsim_attrs.hpp"

namespace tcsim::workloads {

using namespace chakra;

ChakraSummary summarize_chakra(const std::string& prefix) {
  Analysis a = analyze(prefix);
  ChakraSummary s;
  s.prefix = prefix;
  const auto& meta = a.files[0].meta;
  s.schema = meta_string(meta, "schema").value_or(meta.version());
  for (size_t r = 0; r < a.files.size(); ++r) {
    const EtFile& f = a.files[r];
    const RankGraph& g = a.graphs[r];
    ChakraSummary::Rank rank;
    rank.file = f.path;
    rank.nodes = f.nodes.size();
    for (const auto& n : f.nodes) rank.by_type[ChakraProtoMsg::NodeType_Name(n.type())]++;
    // Longest chain of duration_micros through the dependency DAG (nodes of a cycle excluded).
    std::vector<double> finish(f.nodes.size(), 0);
    std::vector<size_t> length(f.nodes.size(), 0);
    for (uint32_t i : g.order) {
      double start = 0;
      size_t len = 0;
      for (uint32_t p : g.preds[i])
        if (finish[p] > start || (finish[p] == start && length[p] > len)) start = finish[p], len = length[p];
      finish[i] = start + static_cast<double>(f.nodes[i].duration_micros());
      length[i] = len + 1;
      if (finish[i] > rank.critical_path_us || (finish[i] == rank.critical_path_us && length[i] > rank.critical_path_nodes))
        rank.critical_path_us = finish[i], rank.critical_path_nodes = length[i];
    }
    s.critical_path_us = std::max(s.critical_path_us, rank.critical_path_us);
    for (const auto& c : a.comm[r]) {
      std::string key = c.kind == NodeKind::Send ? "SEND" : c.kind == NodeKind::Recv ? "RECV" : comm_type_name(c.comm_type);
      s.collectives[key].count++;
      s.collectives[key].bytes += static_cast<double>(c.bytes);
    }
    s.ranks.push_back(std::move(rank));
  }
  for (const auto& [pg, ranks] : a.groups) s.process_groups[pg.empty() ? "(all ranks)" : pg] = ranks;
  for (const auto& p : a.problems) (p.fatal ? s.fatal : s.warnings).push_back(p.where + ": " + p.what);
  return s;
}

std::string to_json(const ChakraSummary& s) {
  nlohmann::ordered_json j;
  j["prefix"] = s.prefix;
  j["schema"] = s.schema;
  j["ranks"] = s.ranks.size();
  auto& ranks = j["per_rank"] = nlohmann::ordered_json::array();
  for (const auto& r : s.ranks) {
    nlohmann::ordered_json o;
    o["file"] = r.file;
    o["nodes"] = r.nodes;
    o["by_type"] = r.by_type;
    o["critical_path_us"] = r.critical_path_us;
    o["critical_path_nodes"] = r.critical_path_nodes;
    ranks.push_back(o);
  }
  auto& colls = j["communication"] = nlohmann::ordered_json::object();
  for (const auto& [k, v] : s.collectives) colls[k] = {{"count", v.count}, {"bytes", v.bytes}};
  j["process_groups"] = s.process_groups;
  j["critical_path_us"] = s.critical_path_us;
  j["problems"] = s.fatal;
  j["warnings"] = s.warnings;
  return j.dump(2);
}

}  // namespace tcsim::workloads
