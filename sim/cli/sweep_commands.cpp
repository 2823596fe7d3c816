// `tcsim sweep run|slurm|merge|list`: parameter sweeps, each point its own `tcsim run`
// process (one SimGrid engine per process). The work is in sim/sweep/; this file only
// maps command-line options onto it and prints summaries.
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "core/quantity.hpp"
#include "sim/cli/commands.hpp"
#include "sim/sweep/merge.hpp"
#include "sim/sweep/runner.hpp"
#include "sim/sweep/slurm.hpp"
#include "sim/sweep/spec.hpp"
#include "sim/sweep/store.hpp"

namespace tcsim::cli {

namespace {

using sweep::shell_join;

struct Common {
  std::string spec;
  std::size_t max_points = 100000;
  bool force = false;
  std::string point_timeout;
  [[nodiscard]] sweep::Sweep load() const {
    return sweep::load_sweep(spec, sweep::ExpandOptions{max_points, force});
  }
  [[nodiscard]] double timeout_s() const {
    if (point_timeout.empty()) return 0;
    double s = core::parse_seconds(point_timeout, "--point-timeout").value();
    if (!(s > 0)) throw core::InputError("--point-timeout", "must be positive, e.g. 30min");
    return s;
  }
};

void add_common(CLI::App* app, Common& c, bool timeout) {
  app->add_option("SPEC", c.spec, "sweep spec (textproto, or JSON starting with '{')")->required();
  app->add_option("--max-points", c.max_points, "refuse sweeps with more points than this (unless --force)")
      ->capture_default_str();
  app->add_flag("--force", c.force, "allow sweeps bigger than --max-points");
  if (timeout)
    app->add_option("--point-timeout", c.point_timeout,
                    "stop a point after this long and record it as failed (e.g. 90s, 30min, 2h)");
}

std::vector<std::string> split_ids(const std::vector<std::string>& in) {
  std::vector<std::string> out;
  for (const auto& s : in) {
    std::size_t start = 0;
    while (start <= s.size()) {
      std::size_t comma = s.find(',', start);
      std::string id = s.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
      if (!id.empty()) out.push_back(id);
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
  }
  return out;
}

void register_run(CLI::App* sweep_app) {
  auto* app = sweep_app->add_subcommand("run", "run the points of a sweep here, each as its own `tcsim run` process");
  auto c = std::make_shared<Common>();
  auto o = std::make_shared<sweep::RunOptions>();
  auto out = std::make_shared<std::string>();
  auto shard = std::make_shared<std::string>("0/1");
  auto only = std::make_shared<std::vector<std::string>>();
  auto progress = std::make_shared<bool>(false);
  auto no_progress = std::make_shared<bool>(false);
  add_common(app, *c, true);
  app->add_option("--out", *out, "sweep directory (results go to DIR/points, failures to DIR/failed)")->required();
  app->add_option("--jobs,-j", o->jobs, "points at once (default: the CPUs this process may use)");
  app->add_option("--shard", *shard, "run only shard I of N (0 <= I < N), a stable partition of the points")
      ->capture_default_str();
  app->add_flag("--retry-failed", o->retry_failed, "also rerun points recorded in DIR/failed");
  app->add_option("--only", *only, "run only these point ids (comma-separated; see `tcsim sweep list`)");
  app->add_option("--tcsim", o->tcsim, "executable exec'd for each point command (default: this tcsim, run in a fork of the runner without exec)");
  app->add_flag("--progress", *progress, "show the progress line even when stderr is not a terminal");
  app->add_flag("--no-progress", *no_progress, "never show the progress line");
  app->callback([=] {
    if (o->jobs < 0) throw core::InputError("--jobs", "must be at least 1");
    o->point_timeout_s = c->timeout_s();
    o->shard = sweep::parse_shard(*shard, "--shard");
    o->out_dir = *out;
    o->only = split_ids(*only);
    o->progress = *no_progress ? 0 : *progress ? 1 : -1;
    o->in_process = [](const std::vector<std::string>& args) {
      std::vector<std::string> copy = args;
      std::vector<char*> argv;
      for (auto& a : copy) argv.push_back(a.data());
      argv.push_back(nullptr);
      return run_command_line(static_cast<int>(copy.size()), argv.data());
    };
    sweep::Sweep sw = c->load();
    sweep::RunSummary s = sweep::run_local(sw, *o);
    std::string shard_txt = o->shard.count > 1 ? " shard " + *shard : "";
    std::fprintf(stderr,
                 "sweep %s%s: %zu points: %zu already done, %zu finished now, %zu failed now, %zu failed earlier "
                 "(not retried)%s\n",
                 sw.name.c_str(), shard_txt.c_str(), s.selected, s.already_done, s.succeeded, s.failed,
                 s.skipped_failed, s.not_run ? (", " + std::to_string(s.not_run) + " not started").c_str() : "");
    if (s.interrupted) {
      std::fprintf(stderr, "sweep: interrupted; finished results are kept. Run the same command to resume.\n");
      exit_code() = 130;
    } else if (s.failed + s.skipped_failed > 0) {
      std::fprintf(stderr, "sweep: failures are in %s/failed; rerun them with --retry-failed\n",
                   sweep::Layout{std::filesystem::absolute(*out)}.dir.string().c_str());
      exit_code() = 1;
    }
  });
}

void register_slurm(CLI::App* sweep_app) {
  auto* app = sweep_app->add_subcommand("slurm", "write (and with --submit, submit) a Slurm job array for a sweep");
  auto c = std::make_shared<Common>();
  auto o = std::make_shared<sweep::SlurmOptions>();
  auto out = std::make_shared<std::string>();
  auto submit = std::make_shared<bool>(false);
  auto sbatch = std::make_shared<std::string>("sbatch");
  add_common(app, *c, true);
  app->add_option("--out", *out, "sweep directory (shared by every array task)")->required();
  app->add_option("--shards", o->shards, "array tasks, each running one shard (default: min(points, 100))");
  app->add_option("--throttle", o->throttle, "at most K array tasks at once (--array=0-(N-1)%K)");
  app->add_option("--partition,-p", o->partition, "Slurm partition");
  app->add_option("--time,-t", o->time, "time limit per array task, as sbatch takes it (e.g. 4:00:00)");
  app->add_option("--cpus,-c", o->cpus, "CPUs per array task; each task runs that many points at once")
      ->capture_default_str();
  app->add_option("--mem", o->mem, "memory per array task, as sbatch takes it (e.g. 16G)");
  app->add_option("--account,-A", o->account, "Slurm account");
  app->add_option("--sbatch-option", o->extra, "another #SBATCH option, e.g. --sbatch-option=--qos=short");
  app->add_flag("--retry-failed", o->retry_failed, "tasks also rerun points recorded in DIR/failed");
  app->add_option("--tcsim", o->point_tcsim, "executable the tasks run for each point (default: this tcsim)");
  app->add_flag("--submit", *submit, "submit the script with sbatch and print the job id");
  app->add_option("--sbatch", *sbatch, "the sbatch command")->capture_default_str();
  app->callback([=] {
    o->point_timeout_s = c->timeout_s();
    o->max_points = c->max_points;
    o->force = c->force;
    o->out_dir = *out;
    sweep::Sweep sw = c->load();
    sweep::SlurmResult r = sweep::write_slurm(sw, *o, *submit, *sbatch);
    std::fprintf(stderr, "sweep %s: %zu points in %d array tasks: wrote %s\n", sw.name.c_str(), sw.points.size(),
                 r.shards, r.script.string().c_str());
    if (*submit) {
      std::printf("%s\n", r.job_id.c_str());
      std::fprintf(stderr, "submitted as Slurm job %s; when it is done: %s\n", r.job_id.c_str(),
                   shell_join({"tcsim", "sweep", "merge", sweep::Layout{std::filesystem::absolute(*out)}.dir.lexically_normal().string()}).c_str());
    } else {
      std::fprintf(stderr, "submit with: %s\n", shell_join({"sbatch", r.script.string()}).c_str());
    }
  });
}

void register_merge(CLI::App* sweep_app) {
  auto* app = sweep_app->add_subcommand(
      "merge", "gather the finished points of a sweep directory into one table; report failed and missing points");
  auto o = std::make_shared<sweep::MergeOptions>();
  auto dir = std::make_shared<std::string>();
  app->add_option("DIR", *dir, "sweep directory")->required();
  app->add_option("-o,--output", o->out, "output file (default DIR/results.csv or DIR/results.jsonl; - for stdout)");
  app->add_flag("--jsonl", o->jsonl, "JSON lines (id, settings, result per point) instead of CSV");
  app->callback([=] {
    o->dir = *dir;
    sweep::MergeReport r = sweep::merge(*o);
    std::fprintf(stderr, "merge: %zu points: %zu done, %zu failed, %zu missing; wrote %s (%zu rows, %zu columns)\n",
                 r.total, r.done, r.failed_ids.size(), r.missing_ids.size(), r.output.c_str(), r.done,
                 r.columns.size());
    const std::size_t show = 20;
    for (std::size_t i = 0; i < r.failed.size() && i < show; ++i) std::fprintf(stderr, "  failed   %s\n", r.failed[i].c_str());
    if (r.failed.size() > show) std::fprintf(stderr, "  ... and %zu more failed\n", r.failed.size() - show);
    for (std::size_t i = 0; i < r.missing.size() && i < show; ++i) std::fprintf(stderr, "  missing  %s\n", r.missing[i].c_str());
    if (r.missing.size() > show) std::fprintf(stderr, "  ... and %zu more missing\n", r.missing.size() - show);
    if (r.extra) std::fprintf(stderr, "  %zu point files belong to no point of the current spec (ignored)\n", r.extra);
    if (!r.rerun_local.empty()) {
      std::fprintf(stderr, "rerun just these here:    %s\n", r.rerun_local.c_str());
      std::fprintf(stderr, "or on Slurm (resumes):    %s\n", r.rerun_slurm.c_str());
      exit_code() = 1;
    }
  });
}

void register_list(CLI::App* sweep_app) {
  auto* app = sweep_app->add_subcommand("list", "print the points of a sweep (id and varied settings) without running them");
  auto c = std::make_shared<Common>();
  auto shard = std::make_shared<std::string>("0/1");
  auto as_json = std::make_shared<bool>(false);
  add_common(app, *c, false);
  app->add_option("--shard", *shard, "only shard I of N")->capture_default_str();
  app->add_flag("--json", *as_json, "print the expanded sweep as JSON (every setting of every point)");
  app->callback([=] {
    sweep::Shard sh = sweep::parse_shard(*shard, "--shard");
    sweep::Sweep sw = c->load();
    if (*as_json) {
      sweep::Sweep part = sw;
      part.points.clear();
      for (const auto* p : sweep::shard_points(sw, sh)) part.points.push_back(*p);
      std::printf("%s\n", sweep::manifest_json(part).dump(1).c_str());
      return;
    }
    for (const auto* p : sweep::shard_points(sw, sh)) {
      std::string line = p->id;
      for (const auto& k : sw.axis_keys) line += "  " + k + "=" + p->settings.at(k);
      std::printf("%s\n", line.c_str());
    }
    std::fprintf(stderr, "%zu points\n", sw.points.size());
  });
}

}  // namespace

void register_sweep_commands(CLI::App& app) {
  auto* s = app.add_subcommand("sweep", "parameter sweeps: run locally, as a Slurm job array, merge results");
  s->require_subcommand(1);
  register_run(s);
  register_slurm(s);
  register_merge(s);
  register_list(s);
}

}  // namespace tcsim::cli
