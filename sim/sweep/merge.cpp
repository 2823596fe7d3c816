#include "sim/sweep/merge.hpp"

#include <algorithm>
#include <cstdio>
#include <map>
#include <set>

#include <nlohmann/json.hpp>

#include "core/error.hpp"
#include "sim/sweep/runner.hpp"
#include "sim/sweep/store.hpp"

namespace tcsim::sweep {

namespace fs = std::filesystem;
using core::InputError;
using nlohmann::json;

std::string csv_field(const std::string& text) {
  if (text.find_first_of(",\"\n\r") == std::string::npos) return text;
  std::string out = "\"";
  for (char c : text) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

namespace {

void flatten(const json& j, const std::string& prefix, std::map<std::string, std::string>& out) {
  if (j.is_object()) {
    for (auto it = j.begin(); it != j.end(); ++it) flatten(it.value(), prefix.empty() ? it.key() : prefix + "." + it.key(), out);
  } else if (j.is_string()) {
    out[prefix] = j.get<std::string>();
  } else if (j.is_null()) {
    out[prefix] = "";
  } else {
    out[prefix] = j.dump();  // numbers (shortest round-trip form), booleans, arrays
  }
}

std::string describe(const json& settings, const std::vector<std::string>& axes) {
  std::string out = "{";
  for (const auto& k : axes)
    if (settings.contains(k)) out += (out.size() > 1 ? " " : "") + k + "=" + settings[k].get<std::string>();
  return out + "}";
}

}  // namespace

MergeReport merge(const MergeOptions& opts) {
  MergeReport rep;
  Layout layout;
  layout.dir = fs::absolute(opts.dir).lexically_normal();
  if (layout.dir.filename().empty()) layout.dir = layout.dir.parent_path();
  auto manifest = read_json(layout.manifest());
  if (!manifest)
    throw InputError(opts.dir.string(), "not a sweep directory (no sweep.json; create it with `tcsim sweep run` or `tcsim sweep slurm`)");
  if (!manifest->is_object() || manifest->value("format", "") != "tcsim-sweep/1" || !(*manifest)["points"].is_array())
    throw InputError(layout.manifest().string(), "not a tcsim sweep manifest (format tcsim-sweep/1)");
  std::vector<std::string> axes = (*manifest)["axes"].get<std::vector<std::string>>();
  const std::string spec = (*manifest)["spec"].get<std::string>();

  struct Row {
    std::string id;
    json settings, result;
    std::map<std::string, std::string> flat;
  };
  std::vector<Row> rows;
  std::set<std::string> ids, result_cols;
  for (const auto& p : (*manifest)["points"]) {
    ++rep.total;
    std::string id = p["id"].get<std::string>();
    ids.insert(id);
    std::optional<json> pj;
    std::string corrupt;
    try {
      pj = read_json(layout.point_file(id));
    } catch (const InputError& e) {
      corrupt = e.what();
    }
    if (pj && pj->is_object() && pj->contains("result")) {
      Row r{id, p["settings"], (*pj)["result"], {}};
      flatten(r.result, "", r.flat);
      for (const auto& [k, v] : r.flat) result_cols.insert(k);
      rows.push_back(std::move(r));
      ++rep.done;
      continue;
    }
    std::optional<json> fj;
    try {
      fj = read_json(layout.failed_file(id));
    } catch (const InputError&) {
    }
    if (fj && fj->is_object()) {
      rep.failed_ids.push_back(id);
      rep.failed.push_back(id + "  " + fj->value("reason", std::string("failed")) + "  " + describe(p["settings"], axes));
    } else {
      rep.missing_ids.push_back(id);
      rep.missing.push_back(id + "  " + describe(p["settings"], axes) + (corrupt.empty() ? "" : "  (unreadable: " + corrupt + ")"));
    }
  }
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(layout.points(), ec)) {
    std::string name = e.path().filename().string();
    if (name.size() == 17 && name.compare(12, 5, ".json") == 0 && !ids.count(name.substr(0, 12))) ++rep.extra;
  }

  // Columns: id, the axes, then the result fields (headline metrics first, the rest sorted).
  std::vector<std::string> rcols;
  for (const char* k : {"step_time_s", "tokens_per_second", "mfu"})
    if (result_cols.count(k)) rcols.push_back(k);
  for (const auto& k : result_cols)
    if (std::find(rcols.begin(), rcols.end(), k) == rcols.end()) rcols.push_back(k);
  std::set<std::string> axis_set(axes.begin(), axes.end());
  rep.columns = {"id"};
  for (const auto& a : axes) rep.columns.push_back(a);
  for (const auto& c : rcols) rep.columns.push_back(axis_set.count(c) || c == "id" ? "result." + c : c);

  std::string text;
  if (opts.jsonl) {
    for (const auto& r : rows) text += json{{"id", r.id}, {"settings", r.settings}, {"result", r.result}}.dump() + "\n";
  } else {
    for (std::size_t i = 0; i < rep.columns.size(); ++i) text += (i ? "," : "") + csv_field(rep.columns[i]);
    text += "\n";
    for (const auto& r : rows) {
      text += csv_field(r.id);
      for (const auto& a : axes) text += "," + csv_field(r.settings.contains(a) ? r.settings[a].get<std::string>() : "");
      for (const auto& c : rcols) {
        auto it = r.flat.find(c);
        text += "," + csv_field(it == r.flat.end() ? "" : it->second);
      }
      text += "\n";
    }
  }
  if (opts.out == "-") {
    std::fwrite(text.data(), 1, text.size(), stdout);
    rep.output = "standard output";
  } else {
    fs::path out = opts.out.empty() ? layout.dir / (opts.jsonl ? "results.jsonl" : "results.csv") : fs::path(opts.out);
    atomic_write(out, text);
    rep.output = out.string();
  }

  if (!rep.failed_ids.empty() || !rep.missing_ids.empty()) {
    std::string tcsim;
    try {
      tcsim = self_executable();
    } catch (const InputError&) {
      tcsim = "tcsim";
    }
    std::vector<std::string> cmd = {tcsim, "sweep", "run", spec, "--out", layout.dir.string()};
    if (!rep.failed_ids.empty()) cmd.push_back("--retry-failed");
    std::size_t n = rep.failed_ids.size() + rep.missing_ids.size();
    if (n <= 20) {
      std::vector<std::string> all = rep.failed_ids;
      all.insert(all.end(), rep.missing_ids.begin(), rep.missing_ids.end());
      std::sort(all.begin(), all.end());
      std::string list;
      for (const auto& id : all) list += (list.empty() ? "" : ",") + id;
      cmd.insert(cmd.end(), {"--only", list});
    }
    rep.rerun_local = shell_join(cmd);
    std::vector<std::string> sl = {tcsim, "sweep", "slurm", spec, "--out", layout.dir.string()};
    if (!rep.failed_ids.empty()) sl.push_back("--retry-failed");
    sl.push_back("--submit");
    rep.rerun_slurm = shell_join(sl);
  }
  return rep;
}

}  // namespace tcsim::sweep
