// A sweep spec expanded into points. Each point is the full set of resolved settings
// (base run, base --set overrides, then the axis values) and an id derived from those
// settings alone, so reordering axes or editing comments never renames a point.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "sim/sweep/sweep.pb.h"

namespace tcsim::sweep {

using Settings = std::map<std::string, std::string>;  ///< key -> value, sorted by key

struct Point {
  std::string id;     ///< 12 hex digits of FNV-1a-64 over canonical(settings)
  Settings settings;  ///< every resolved key, including run.* (platform/gpu/nodes/fabric/workload)
};

struct Sweep {
  std::string name;
  std::string spec_path;               ///< absolute path of the spec file
  std::vector<std::string> axis_keys;  ///< the varied keys, in spec order (grid axes, then zip axes)
  std::vector<Point> points;           ///< in expansion order (first axis varies slowest)
};

struct ExpandOptions {
  std::size_t max_points = 100000;  ///< more points than this is an error unless force
  bool force = false;
};

/// The run.* keys and what they set on the child command line.
const std::vector<std::string>& run_keys();
/// Throws InputError(where, ...) unless key is gpu./model./plan./sim./<known run.> key.
void check_key(const std::string& key, const std::string& where);

/// 64-bit FNV-1a (http://www.isthe.com/chongo/tech/comp/fnv/): small, dependency-free, stable.
std::uint64_t fnv1a64(std::string_view data);
/// "key=value\n" for every setting in key order: what a point id is computed from.
std::string canonical(const Settings& settings);
/// The first 12 hex digits of fnv1a64(canonical(settings)).
std::string point_id(const Settings& settings);

/// Reads a spec (textproto, or JSON when the file starts with '{'); errors name file:line.
SweepSpec load_spec(const std::string& path);
/// Validates and expands a spec. spec_path is used for error messages and relative paths.
Sweep expand(const SweepSpec& spec, const std::string& spec_path, const ExpandOptions& opts = {});
/// load_spec + expand.
Sweep load_sweep(const std::string& path, const ExpandOptions& opts = {});

/// Shard I of N: a stable partition of the points (round robin over the points sorted by id).
struct Shard {
  int index = 0;
  int count = 1;
};
/// Parses "I/N" with 0 <= I < N; anything else (e.g. "3/2") throws InputError(where, ...).
Shard parse_shard(const std::string& text, const std::string& where);
/// The points of one shard, in expansion order.
std::vector<const Point*> shard_points(const Sweep& sweep, Shard shard);

}  // namespace tcsim::sweep
