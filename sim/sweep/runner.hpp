// The local runner: every point is its own `tcsim run` process (one SimGrid engine per
// process), N at once, managed with Boost.Asio (SIGCHLD, stderr pipes, timers, SIGINT).
// Arguments go to execvp as argv, never through a shell. Finished points are written
// atomically to DIR/points, failures to DIR/failed; a re-run skips what is finished.
#pragma once

#include <cstddef>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "sim/sweep/spec.hpp"
#include "sim/sweep/store.hpp"

namespace tcsim::sweep {

struct RunOptions {
  std::filesystem::path out_dir;
  int jobs = 0;                     ///< points at once; 0 = the CPUs this process may use
  Shard shard;                      ///< run only this shard
  std::vector<std::string> only;    ///< if not empty: run only these point ids
  bool retry_failed = false;        ///< rerun points recorded in failed/
  double point_timeout_s = 0;       ///< 0 = no limit; else SIGTERM, then SIGKILL 5 s later
  std::string tcsim;                ///< executable for the points; empty = this executable
  /// With `tcsim` empty: runs one command of a point (its argv, argv[0] this executable)
  /// and returns its exit code. Each command then runs in a fork of the runner, without
  /// exec: the same code and arguments, minus the ~0.06 s of start-up (loading SimGrid's
  /// 37 shared libraries) that most short analytical points are made of. Unset: fork+exec.
  std::function<int(const std::vector<std::string>&)> in_process;
  int progress = -1;                ///< progress line: 1 on, 0 off, -1 when stderr is a terminal
};

struct RunSummary {
  std::size_t selected = 0;        ///< points in this shard (and --only)
  std::size_t already_done = 0;    ///< skipped: a result existed
  std::size_t skipped_failed = 0;  ///< skipped: failed earlier and no --retry-failed
  std::size_t succeeded = 0;       ///< finished in this run
  std::size_t failed = 0;          ///< failed in this run
  std::size_t not_run = 0;         ///< left when interrupted
  bool interrupted = false;        ///< SIGINT/SIGTERM/SIGHUP stopped the run
};

/// The command of one point: `tcsim run (--gpu --nodes [--gpus-per-node] [--fabric] |
/// --platform P) --workload W [--set k=v]... --out WORK/result.json` with every gpu./fabric./
/// model./plan./sim. setting.
/// Relative platform and workload paths are resolved against the spec file's folder.
std::vector<std::string> point_command(const Sweep& sweep, const Point& point, const std::string& tcsim,
                                       const std::filesystem::path& work_dir);

/// The absolute path of the running executable (/proc/self/exe).
std::string self_executable();

/// Runs the selected points. Throws InputError for an unwritable DIR or a failed write
/// (after stopping the children); results already written stay intact.
RunSummary run_local(const Sweep& sweep, const RunOptions& opts);

}  // namespace tcsim::sweep
