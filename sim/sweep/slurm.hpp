// Slurm job arrays: one array task per shard, each running `tcsim sweep run --shard I/N`.
// The script uses absolute paths and quoting that survives spaces, quotes and '#' in paths.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "sim/sweep/spec.hpp"

namespace tcsim::sweep {

struct SlurmOptions {
  std::filesystem::path out_dir;
  int shards = 0;            ///< array tasks; 0 = min(points, 100)
  int throttle = 0;          ///< %K: at most K tasks at once; 0 = no limit
  std::string partition, time, mem, account;
  int cpus = 1;              ///< --cpus-per-task; each task runs that many points at once
  double point_timeout_s = 0;
  bool retry_failed = false;
  std::string tcsim;         ///< executable the tasks run; empty = this executable
  std::string point_tcsim;   ///< --tcsim passed on to the tasks (the points' executable), if any
  std::size_t max_points = 100000;
  bool force = false;
  std::vector<std::string> extra;  ///< more #SBATCH options, e.g. "--qos=short"
};

/// The text of the sbatch script. Throws InputError for values a script cannot carry.
std::string slurm_script(const Sweep& sweep, const SlurmOptions& opts, int shards);
/// A value for a #SBATCH line, which sbatch reads itself (no shell): plain when safe, else in
/// double quotes with \" inside. Throws InputError for a backslash (sbatch drops those).
std::string sbatch_escape(const std::string& value);

struct SlurmResult {
  std::filesystem::path script;
  int shards = 0;
  std::string job_id;  ///< set when submitted
};

/// Writes DIR/sweep.json and DIR/slurm/sweep.sbatch (and DIR/slurm/logs/); with submit,
/// runs `sbatch --parsable SCRIPT` (argv, no shell) and returns the job id.
SlurmResult write_slurm(const Sweep& sweep, const SlurmOptions& opts, bool submit, const std::string& sbatch = "sbatch");

/// Runs argv (no shell) and captures stdout and stderr; returns the wait status.
int run_capture(const std::vector<std::string>& argv, std::string& out, std::string& err);

}  // namespace tcsim::sweep
