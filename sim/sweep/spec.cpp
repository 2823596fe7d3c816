#include "sim/sweep/spec.hpp"

#include <algorithm>
#include <filesystem>
#include <limits>
#include <optional>
#include <set>

#include "core/error.hpp"
#include "core/proto_util.hpp"
#include "core/quantity.hpp"
#include "sim/sweep/filter.hpp"

namespace tcsim::sweep {

namespace fs = std::filesystem;
using core::InputError;

const std::vector<std::string>& run_keys() {
  static const std::vector<std::string> keys = {"run.platform", "run.gpu",      "run.nodes",
                                                "run.gpus_per_node", "run.fabric", "run.workload"};
  return keys;
}

void check_key(const std::string& key, const std::string& where) {
  static const std::vector<std::string> prefixes = {"gpu.", "model.", "plan.", "sim.", "fabric.", "run."};
  const std::string allowed =
      "keys start with gpu., model., plan., sim. or fabric. (checked by `tcsim run`), "
      "or are one of run.platform, run.gpu, run.nodes, run.gpus_per_node, run.fabric, run.workload";
  bool ok_chars = !key.empty() && key.back() != '.' && key.find("..") == std::string::npos &&
                  std::all_of(key.begin(), key.end(), [](unsigned char c) { return std::isalnum(c) || c == '_' || c == '.'; });
  auto prefix = std::find_if(prefixes.begin(), prefixes.end(), [&](const std::string& p) { return key.rfind(p, 0) == 0; });
  if (!ok_chars || prefix == prefixes.end())
    throw InputError(where, "unknown key '" + key + "': " + allowed);
  if (*prefix == "run." && std::find(run_keys().begin(), run_keys().end(), key) == run_keys().end())
    throw InputError(where, "unknown key '" + key + "': " + allowed);
}

std::uint64_t fnv1a64(std::string_view data) {
  std::uint64_t h = 14695981039346656037ull;  // FNV offset basis
  for (unsigned char c : data) {
    h ^= c;
    h *= 1099511628211ull;  // FNV prime
  }
  return h;
}

std::string canonical(const Settings& settings) {
  std::string out;
  for (const auto& [k, v] : settings) out += k + "=" + v + "\n";
  return out;
}

std::string point_id(const Settings& settings) {
  static const char* hex = "0123456789abcdef";
  std::uint64_t h = fnv1a64(canonical(settings));
  std::string id(16, '0');
  for (int i = 15; i >= 0; --i, h >>= 4) id[static_cast<std::size_t>(i)] = hex[h & 0xf];
  return id.substr(0, 12);
}

SweepSpec load_spec(const std::string& path) {
  SweepSpec spec;
  core::load_config_file(path, spec);
  return spec;
}

namespace {

using Tuple = std::vector<std::pair<std::string, std::string>>;  // the keys one dimension sets

void check_value(const std::string& value, const std::string& where) {
  if (value.find_first_of("\n\r") != std::string::npos || value.find('\0') != std::string::npos)
    throw InputError(where, "a value may not contain a line break");
}

std::string describe(const Settings& s) {
  std::string out;
  for (const auto& [k, v] : s) out += (out.empty() ? "" : " ") + k + "=" + v;
  return out;
}

void validate_point(const Settings& s, const std::string& where) {
  auto has = [&](const char* k) { return s.count(k) != 0; };
  std::string ctx = where + ": point {" + describe(s) + "}";
  if (!has("run.workload"))
    throw InputError(ctx, "no workload: set base.workload (or an axis on run.workload)");
  if (has("run.platform") == has("run.gpu"))
    throw InputError(ctx, has("run.platform")
                              ? "gives both a platform (run.platform) and a cluster to build (run.gpu); choose one"
                              : "gives neither a platform (base.platform / run.platform) nor a GPU to generate one "
                                "(base.gpu / run.gpu with run.nodes)");
  if (has("run.gpu") && !has("run.nodes")) throw InputError(ctx, "run.gpu needs run.nodes (base.nodes)");
  bool fabric_keys = s.lower_bound("fabric.") != s.end() && s.lower_bound("fabric.")->first.rfind("fabric.", 0) == 0;
  if (!has("run.gpu") && (has("run.nodes") || has("run.gpus_per_node") || has("run.fabric") || fabric_keys))
    throw InputError(ctx, "run.nodes, run.gpus_per_node, run.fabric and fabric.* only apply with run.gpu (a cluster built in memory); "
                          "with a platform, drop them");
  for (const char* k : {"run.nodes", "run.gpus_per_node"}) {
    if (!has(k)) continue;
    long long n = core::parse_integer(s.at(k), ctx + ": " + k);
    if (n < 1) throw InputError(ctx + ": " + k, "must be at least 1");
  }
  for (const auto& [k, v] : s)
    if (v.empty()) throw InputError(ctx + ": " + k, "empty value");
}

}  // namespace

Sweep expand(const SweepSpec& spec, const std::string& spec_path, const ExpandOptions& opts) {
  Sweep sweep;
  std::error_code ec;
  fs::path abs = fs::absolute(spec_path, ec);
  sweep.spec_path = ec ? spec_path : abs.lexically_normal().string();
  sweep.name = spec.name().empty() ? fs::path(spec_path).stem().string() : spec.name();
  const std::string& where = spec_path;

  // Base settings.
  Settings base;
  const BaseRun& b = spec.base();
  auto put_base = [&](const char* key, const std::string& value) {
    if (!value.empty()) base[key] = value;
  };
  put_base("run.platform", b.platform());
  put_base("run.gpu", b.gpu());
  put_base("run.nodes", b.nodes());
  put_base("run.gpus_per_node", b.gpus_per_node());
  put_base("run.fabric", b.fabric());
  put_base("run.workload", b.workload());
  for (int i = 0; i < b.set_size(); ++i) {
    const std::string& a = b.set(i);
    std::string ctx = where + ": base.set[" + std::to_string(i) + "] \"" + a + "\"";
    auto eq = a.find('=');
    if (eq == std::string::npos || eq == 0) throw InputError(ctx, "expected key=value");
    std::string key = a.substr(0, eq), value = a.substr(eq + 1);
    check_key(key, ctx);
    check_value(value, ctx);
    if (base.count(key)) throw InputError(ctx, "key " + key + " is already set in base");
    base[key] = value;
  }

  // Dimensions: every grid axis, then every zip group.
  std::vector<std::vector<Tuple>> dims;
  std::set<std::string> axis_seen;
  auto add_axis_key = [&](const std::string& key, const std::string& ctx) {
    check_key(key, ctx);
    if (!axis_seen.insert(key).second) throw InputError(ctx, "key " + key + " is varied by more than one axis");
    sweep.axis_keys.push_back(key);
  };
  auto check_values = [&](const Axis& axis, const std::string& ctx) {
    if (axis.values_size() == 0) throw InputError(ctx, "axis " + axis.key() + " has no values");
    std::set<std::string> seen;
    for (const auto& v : axis.values()) {
      check_value(v, ctx);
      if (v.empty()) throw InputError(ctx, "axis " + axis.key() + " has an empty value");
      if (!seen.insert(v).second) throw InputError(ctx, "axis " + axis.key() + " lists the value '" + v + "' twice");
    }
  };
  for (int i = 0; i < spec.axis_size(); ++i) {
    const Axis& axis = spec.axis(i);
    std::string ctx = where + ": axis[" + std::to_string(i) + "]";
    if (axis.key().empty()) throw InputError(ctx, "axis has no key");
    add_axis_key(axis.key(), ctx);
    check_values(axis, ctx);
    std::vector<Tuple> dim;
    for (const auto& v : axis.values()) dim.push_back({{axis.key(), v}});
    dims.push_back(std::move(dim));
  }
  for (int z = 0; z < spec.zip_size(); ++z) {
    const Zip& zip = spec.zip(z);
    std::string zctx = where + ": zip[" + std::to_string(z) + "]";
    if (zip.axis_size() == 0) throw InputError(zctx, "zip group has no axes");
    std::vector<Tuple> dim;
    for (int i = 0; i < zip.axis_size(); ++i) {
      const Axis& axis = zip.axis(i);
      std::string ctx = zctx + ".axis[" + std::to_string(i) + "]";
      if (axis.key().empty()) throw InputError(ctx, "axis has no key");
      add_axis_key(axis.key(), ctx);
      check_values(axis, ctx);
      if (i == 0) dim.resize(static_cast<std::size_t>(axis.values_size()));
      if (static_cast<std::size_t>(axis.values_size()) != dim.size())
        throw InputError(ctx, "zipped axes need the same number of values: " + zip.axis(0).key() + " has " +
                                  std::to_string(dim.size()) + ", " + axis.key() + " has " +
                                  std::to_string(axis.values_size()));
      for (int j = 0; j < axis.values_size(); ++j) dim[static_cast<std::size_t>(j)].push_back({axis.key(), axis.values(j)});
    }
    dims.push_back(std::move(dim));
  }

  // Filters, checked against the keys a point can have.
  std::vector<Filter> filters;
  std::set<std::string> known;
  for (const auto& [k, v] : base) known.insert(k);
  known.insert(axis_seen.begin(), axis_seen.end());
  for (int i = 0; i < spec.filter_size(); ++i) {
    std::string ctx = where + ": filter[" + std::to_string(i) + "]";
    Filter f = Filter::parse(spec.filter(i), ctx);
    for (const auto& k : f.keys()) {
      if (!known.count(k)) {
        std::string list;
        for (const auto& kk : known) list += (list.empty() ? "" : ", ") + kk;
        throw InputError(ctx, "filter reads '" + k + "', which no axis or base setting sets (known: " + list + ")");
      }
    }
    filters.push_back(std::move(f));
  }

  // Size of the grid before filtering, guarded against overflow.
  const std::size_t limit = opts.force ? std::numeric_limits<std::size_t>::max() : opts.max_points;
  long double combos = 1;
  for (const auto& d : dims) combos *= static_cast<long double>(d.size());
  const std::string force_hint = " (use --force, or raise --max-points)";
  if (!opts.force && filters.empty() && combos > static_cast<long double>(limit))
    throw InputError(where, "the sweep has " + core::format_number(static_cast<double>(combos)) +
                                " points, more than --max-points " + std::to_string(opts.max_points) + force_hint);
  if (!opts.force && combos > static_cast<long double>(limit) * 1000)
    throw InputError(where, "the grid has " + core::format_number(static_cast<double>(combos)) +
                                " combinations before filtering, more than 1000 x --max-points " + force_hint);
  if (combos > 1e12) throw InputError(where, "the grid has more than 10^12 combinations; split the sweep");

  // Odometer over the dimensions; the first dimension varies slowest.
  std::vector<std::size_t> idx(dims.size(), 0);
  std::map<std::string, const Settings*> ids;
  for (bool more = true; more;) {
    Settings s = base;
    for (std::size_t d = 0; d < dims.size(); ++d)
      for (const auto& [k, v] : dims[d][idx[d]]) s[k] = v;
    bool keep = true;
    for (const auto& f : filters)
      if (!f.matches(s)) {
        keep = false;
        break;
      }
    if (keep) {
      validate_point(s, where);
      Point p{point_id(s), std::move(s)};
      sweep.points.push_back(std::move(p));
      if (sweep.points.size() > limit)
        throw InputError(where, "the sweep has more than --max-points " + std::to_string(opts.max_points) +
                                    " points" + force_hint);
    }
    more = false;
    for (std::size_t d = dims.size(); d-- > 0;) {
      if (++idx[d] < dims[d].size()) {
        more = true;
        break;
      }
      idx[d] = 0;
    }
  }
  if (sweep.points.empty()) throw InputError(where, "the filter matches no point of the grid");
  for (const auto& p : sweep.points) {
    auto [it, fresh] = ids.emplace(p.id, &p.settings);
    if (!fresh) {
      if (*it->second == p.settings)
        throw InputError(where, "two points have identical settings {" + describe(p.settings) + "}");
      throw InputError(where, "point id collision between {" + describe(*it->second) + "} and {" +
                                  describe(p.settings) + "}; change a value's spelling");
    }
  }
  return sweep;
}

Sweep load_sweep(const std::string& path, const ExpandOptions& opts) { return expand(load_spec(path), path, opts); }

Shard parse_shard(const std::string& text, const std::string& where) {
  auto slash = text.find('/');
  auto bad = [&](const std::string& why) {
    return InputError(where, "bad shard '" + text + "': " + why + " (expected I/N with 0 <= I < N, e.g. 0/4)");
  };
  if (slash == std::string::npos) throw bad("no '/'");
  auto num = [&](const std::string& t) -> long long {
    if (t.empty() || t.size() > 9 || !std::all_of(t.begin(), t.end(), [](unsigned char c) { return std::isdigit(c); }))
      throw bad("'" + t + "' is not a non-negative integer");
    return std::stoll(t);
  };
  long long i = num(text.substr(0, slash)), n = num(text.substr(slash + 1));
  if (n < 1) throw bad("N must be at least 1");
  if (i >= n) throw bad("I must be less than N");
  return Shard{static_cast<int>(i), static_cast<int>(n)};
}

std::vector<const Point*> shard_points(const Sweep& sweep, Shard shard) {
  std::vector<const Point*> by_id;
  for (const auto& p : sweep.points) by_id.push_back(&p);
  std::sort(by_id.begin(), by_id.end(), [](const Point* a, const Point* b) { return a->id < b->id; });
  std::set<const Point*> mine;
  for (std::size_t k = static_cast<std::size_t>(shard.index); k < by_id.size(); k += static_cast<std::size_t>(shard.count))
    mine.insert(by_id[k]);
  std::vector<const Point*> out;
  for (const auto& p : sweep.points)
    if (mine.count(&p)) out.push_back(&p);
  return out;
}

}  // namespace tcsim::sweep
