#include "sim/sweep/runner.hpp"

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <deque>
#include <exception>
#include <fcntl.h>
#include <map>
#include <memory>
#include <sched.h>
#include <set>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <nlohmann/json.hpp>

#include "core/cpus.hpp"
#include "core/error.hpp"

namespace tcsim::sweep {

namespace fs = std::filesystem;
namespace asio = boost::asio;
using core::InputError;
using Clock = std::chrono::steady_clock;

std::string self_executable() {
  std::error_code ec;
  fs::path p = fs::read_symlink("/proc/self/exe", ec);
  if (ec) throw InputError("/proc/self/exe", "cannot find the tcsim executable: " + ec.message() + " (pass --tcsim PATH)");
  return p.string();
}

namespace {

std::string resolve_path(const std::string& value, const fs::path& spec_dir) {
  fs::path v(value);
  if (v.is_absolute()) return value;
  std::error_code ec;
  fs::path cand = spec_dir / v;
  if (fs::exists(cand, ec)) return cand.lexically_normal().string();
  return value;  // a preset name, or a path relative to the working directory
}

}  // namespace

std::vector<std::string> point_command(const Sweep& sweep, const Point& point, const std::string& tcsim,
                                       const fs::path& work_dir) {
  const Settings& s = point.settings;
  fs::path spec_dir = fs::path(sweep.spec_path).parent_path();
  // run.gpu: the cluster is built in memory by `tcsim run` itself (the same model as its
  // `tcsim topo gen` XML, to the last digit; a 2,048-GPU XML is 1.3 GB and takes 17 s to
  // read back); run.platform: that file.
  std::vector<std::string> run = {tcsim, "run"};
  if (s.count("run.gpu")) {
    run.insert(run.end(), {"--gpu", s.at("run.gpu"), "--nodes", s.at("run.nodes")});
    if (s.count("run.gpus_per_node")) run.insert(run.end(), {"--gpus-per-node", s.at("run.gpus_per_node")});
    if (s.count("run.fabric")) run.insert(run.end(), {"--fabric", s.at("run.fabric")});
  } else {
    run.insert(run.end(), {"--platform", resolve_path(s.at("run.platform"), spec_dir)});
  }
  run.insert(run.end(), {"--workload", resolve_path(s.at("run.workload"), spec_dir)});
  for (const auto& [k, v] : s)
    if (k.rfind("run.", 0) != 0) run.insert(run.end(), {"--set", k + "=" + v});
  run.insert(run.end(), {"--out", (work_dir / "result.json").string()});
  return run;
}

namespace {

std::string hms(double seconds) {
  long s = static_cast<long>(seconds + 0.5);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", s / 3600, (s / 60) % 60, s % 60);
  return buf;
}

std::string signal_name(int sig) {
  const char* d = ::sigabbrev_np(sig);
  return d ? std::string("SIG") + d : "signal " + std::to_string(sig);
}

struct Job : std::enable_shared_from_this<Job> {
  Job(asio::io_context& io) : timeout(io), kill_timer(io), drain(io) {}
  const Point* point = nullptr;
  std::vector<std::string> command;
  fs::path work;
  pid_t pid = -1;
  std::unique_ptr<asio::posix::stream_descriptor> err;
  std::array<char, 4096> buf{};
  std::string err_tail;
  bool exited = false, eof = false, timed_out = false, cancelled = false, done = false;
  int status = 0;
  std::string spawn_error;
  asio::steady_timer timeout, kill_timer, drain;
  Clock::time_point started;
};

class Runner {
public:
  Runner(const Sweep& sweep, const RunOptions& opts, Layout layout)
      : sweep_(sweep), opts_(opts), layout_(std::move(layout)), sigchld_(io_, SIGCHLD),
        stop_signals_(io_, SIGINT, SIGTERM, SIGHUP), ticker_(io_) {
    tcsim_ = opts.tcsim.empty() ? self_executable() : opts.tcsim;
    jobs_ = opts.jobs > 0 ? opts.jobs : core::available_cpus();
    progress_ = opts.progress >= 0 ? opts.progress == 1 : ::isatty(STDERR_FILENO) == 1;
    host_ = hostname();
  }

  RunSummary run(std::deque<const Point*> queue, RunSummary summary) {
    queue_ = std::move(queue);
    summary_ = summary;
    to_run_ = queue_.size();
    start_ = Clock::now();
    if (queue_.empty()) return summary_;
    wait_sigchld();
    wait_stop();
    launch_more();
    tick();
    io_.run();
    if (progress_) std::fprintf(stderr, "\r\033[K");
    if (fatal_) std::rethrow_exception(fatal_);
    return summary_;
  }

private:
  // ---- child processes -------------------------------------------------------------------
  void spawn(const std::shared_ptr<Job>& job) {
    const auto& argv_s = job->command;
    std::vector<char*> argv;
    for (const auto& a : argv_s) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    job->exited = job->eof = false;
    job->err_tail.clear();

    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) return spawn_failed(job, std::string("pipe: ") + std::strerror(errno));
    std::string log = (job->work / "stdout.log").string();
    int out = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    int in = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (out < 0 || in < 0) {
      std::string why = std::string("open ") + log + ": " + std::strerror(errno);
      ::close(fds[0]), ::close(fds[1]);
      if (out >= 0) ::close(out);
      if (in >= 0) ::close(in);
      return spawn_failed(job, why);
    }
    // A forked point inherits whatever stdio holds unwritten (it would print it again).
    std::fflush(nullptr);
    const bool in_process = opts_.tcsim.empty() && opts_.in_process && !argv_s.empty() && argv_s[0] == tcsim_;
    pid_t parent = ::getpid();
    pid_t pid = ::fork();
    if (pid == 0) {
      // Child: own process group (a terminal's Ctrl-C reaches only the runner, which then
      // stops the children itself), killed if the runner dies (even by kill -9).
      ::setpgid(0, 0);
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(1);
      sigset_t none;
      sigemptyset(&none);
      ::sigprocmask(SIG_SETMASK, &none, nullptr);
      for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGCHLD, SIGPIPE}) ::signal(sig, SIG_DFL);
      ::dup2(in, 0);
      ::dup2(out, 1);
      ::dup2(fds[1], 2);
      if (in_process) {
        // This process already is the tcsim the command names: run it here, then leave
        // without the runner's destructors and exit handlers (its io_context is not ours).
        int rc = 3;
        try {
          rc = opts_.in_process(argv_s);
        } catch (...) {
          const char* msg = "internal error: a point's command threw\n";
          [[maybe_unused]] auto r = ::write(2, msg, std::strlen(msg));
        }
        std::fflush(nullptr);
        ::_exit(rc);
      }
      ::execvp(argv[0], argv.data());
      const char* msg = "error: cannot execute ";
      [[maybe_unused]] auto r1 = ::write(2, msg, std::strlen(msg));
      [[maybe_unused]] auto r2 = ::write(2, argv[0], std::strlen(argv[0]));
      const char* e = std::strerror(errno);
      [[maybe_unused]] auto r3 = ::write(2, ": ", 2);
      [[maybe_unused]] auto r4 = ::write(2, e, std::strlen(e));
      [[maybe_unused]] auto r5 = ::write(2, "\n", 1);
      ::_exit(127);
    }
    int fork_errno = errno;
    ::close(fds[1]);
    ::close(out);
    ::close(in);
    if (pid < 0) {
      ::close(fds[0]);
      return spawn_failed(job, std::string("fork: ") + std::strerror(fork_errno));
    }
    ::setpgid(pid, pid);  // also here, so that a kill right away reaches the group
    job->pid = pid;
    by_pid_[pid] = job;
    job->err = std::make_unique<asio::posix::stream_descriptor>(io_, fds[0]);
    read_stderr(job);
  }

  void spawn_failed(const std::shared_ptr<Job>& job, const std::string& why) {
    job->spawn_error = why;
    job->exited = job->eof = true;
    job->status = -1;
    asio::post(io_, [this, job] { point_done(job); });
  }

  void read_stderr(const std::shared_ptr<Job>& job) {
    job->err->async_read_some(asio::buffer(job->buf), [this, job](boost::system::error_code ec, std::size_t n) {
      if (job->done) return;
      if (!ec) {
        job->err_tail.append(job->buf.data(), n);
        if (job->err_tail.size() > 16384) job->err_tail.erase(0, job->err_tail.size() - 8192);
        read_stderr(job);
        return;
      }
      job->eof = true;
      point_done(job);
    });
  }

  void wait_sigchld() {
    sigchld_.async_wait([this](boost::system::error_code ec, int) {
      if (ec) return;
      int status = 0;
      pid_t pid;
      while ((pid = ::waitpid(-1, &status, WNOHANG)) > 0) {
        auto it = by_pid_.find(pid);
        if (it == by_pid_.end()) continue;
        auto job = it->second;
        by_pid_.erase(it);
        job->exited = true;
        job->status = status;
        if (!job->eof) {
          // Normally EOF on stderr follows at once; do not wait forever for a descendant.
          job->drain.expires_after(std::chrono::seconds(2));
          job->drain.async_wait([this, job](boost::system::error_code e) {
            if (e || job->done || job->eof) return;
            job->eof = true;
            point_done(job);
          });
        }
        point_done(job);
      }
      wait_sigchld();
    });
  }

  void kill_group(const std::shared_ptr<Job>& job, int sig) {
    if (job->pid > 0 && !job->exited) ::kill(-job->pid, sig);
  }

  void terminate(const std::shared_ptr<Job>& job) {
    kill_group(job, SIGTERM);
    job->kill_timer.expires_after(std::chrono::seconds(5));
    job->kill_timer.async_wait([this, job](boost::system::error_code ec) {
      if (!ec && !job->done) kill_group(job, SIGKILL);
    });
  }

  // ---- points ---------------------------------------------------------------------------
  void start(const Point* p) {
    auto job = std::make_shared<Job>(io_);
    job->point = p;
    job->work = layout_.work() / (p->id + "." + std::to_string(::getpid()) + "." + host_);
    std::error_code ec;
    fs::remove_all(job->work, ec);
    fs::create_directories(job->work, ec);
    if (ec) return fail_fatal(InputError(job->work.string(), "cannot create scratch folder: " + ec.message()));
    job->command = point_command(sweep_, *p, tcsim_, job->work);
    job->started = Clock::now();
    running_.insert(job);
    if (opts_.point_timeout_s > 0) {
      job->timeout.expires_after(std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(opts_.point_timeout_s)));
      job->timeout.async_wait([this, job](boost::system::error_code e) {
        if (e || job->done) return;
        job->timed_out = true;
        terminate(job);
      });
    }
    spawn(job);
  }

  void point_done(const std::shared_ptr<Job>& job) {
    if (job->done || !job->exited || !job->eof) return;
    job->drain.cancel();
    if (job->err) {
      boost::system::error_code ignored;
      job->err->close(ignored);
      job->err.reset();
    }
    bool ok = job->spawn_error.empty() && WIFEXITED(job->status) && WEXITSTATUS(job->status) == 0;
    job->done = true;
    job->timeout.cancel();
    job->kill_timer.cancel();
    running_.erase(job);
    try {
      if (job->cancelled) {
        std::error_code ec;
        fs::remove_all(job->work, ec);
      } else if (ok && !job->timed_out) {
        finish_ok(*job);
      } else {
        record_failure(*job, "");
      }
    } catch (const InputError& e) {
      fail_fatal(e);
    }
    launch_more();
  }

  nlohmann::json point_header(const Job& job) const {
    double wall = std::chrono::duration<double>(Clock::now() - job.started).count();
    return {{"id", job.point->id},
            {"settings", job.point->settings},
            {"commands", nlohmann::json::array({job.command})},  // a list: points once had two
            {"host", host_},
            {"wall_s", std::round(wall * 1000) / 1000}};
  }

  void finish_ok(Job& job) {
    fs::path result = job.work / "result.json";
    nlohmann::json res;
    try {
      auto r = read_json(result);
      if (!r) return record_failure(job, "exited 0 but wrote no result JSON at " + result.string());
      if (!r->is_object()) return record_failure(job, "the result at " + result.string() + " is not a JSON object");
      res = std::move(*r);
    } catch (const InputError& e) {
      return record_failure(job, std::string("exited 0 but the result is unreadable: ") + e.what());
    }
    nlohmann::json j = point_header(job);
    j["result"] = std::move(res);
    atomic_write(layout_.point_file(job.point->id), j.dump(1) + "\n");
    std::error_code ec;
    fs::remove(layout_.failed_file(job.point->id), ec);
    fs::remove_all(job.work, ec);
    ++summary_.succeeded;
  }

  void record_failure(Job& job, const std::string& reason_in) {
    nlohmann::json j = point_header(job);
    std::string reason = reason_in;
    const auto& argv = job.command;
    j["failed_command"] = argv;
    j["exit_code"] = nullptr;
    j["signal"] = nullptr;
    if (!job.spawn_error.empty()) {
      reason = "could not start " + argv[0] + ": " + job.spawn_error;
    } else if (WIFEXITED(job.status)) {
      j["exit_code"] = WEXITSTATUS(job.status);
      if (reason.empty()) reason = "exit code " + std::to_string(WEXITSTATUS(job.status));
    } else if (WIFSIGNALED(job.status)) {
      j["signal"] = signal_name(WTERMSIG(job.status));
      if (reason.empty()) reason = "killed by " + signal_name(WTERMSIG(job.status));
    }
    if (job.timed_out) reason = "timed out after " + core_seconds(opts_.point_timeout_s) + " (" + reason + ")";
    j["timed_out"] = job.timed_out;
    j["reason"] = reason;
    std::string tail = job.err_tail.size() > 4000 ? job.err_tail.substr(job.err_tail.size() - 4000) : job.err_tail;
    j["stderr_tail"] = tail;
    j["work_dir"] = job.work.string();
    atomic_write(layout_.failed_file(job.point->id), j.dump(1) + "\n");
    ++summary_.failed;
    std::string first_err;
    auto pos = tail.rfind("error:");
    if (pos != std::string::npos) first_err = tail.substr(pos, tail.find('\n', pos) - pos);
    if (progress_) std::fprintf(stderr, "\r\033[K");
    std::fprintf(stderr, "sweep: point %s failed: %s%s%s\n", job.point->id.c_str(), reason.c_str(),
                 first_err.empty() ? "" : ": ", first_err.c_str());
  }

  static std::string core_seconds(double s) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%gs", s);
    return buf;
  }

  void fail_fatal(const InputError& e) {
    if (!fatal_) fatal_ = std::make_exception_ptr(e);
    stop(false);
  }

  void launch_more() {
    while (!stopping_ && static_cast<int>(running_.size()) < jobs_ && !queue_.empty()) {
      const Point* p = queue_.front();
      queue_.pop_front();
      start(p);
    }
    if (running_.empty() && (queue_.empty() || stopping_)) {
      summary_.not_run = queue_.size();
      io_.stop();
    }
  }

  void stop(bool by_signal) {
    if (by_signal) summary_.interrupted = true;
    if (stopping_) return;
    stopping_ = true;
    for (const auto& job : running_) {
      job->cancelled = true;
      terminate(job);
    }
    asio::post(io_, [this] { launch_more(); });
  }

  void wait_stop() {
    stop_signals_.async_wait([this](boost::system::error_code ec, int sig) {
      if (ec) return;
      if (progress_) std::fprintf(stderr, "\r\033[K");
      if (stopping_) {
        std::fprintf(stderr, "sweep: %s again: killing the running points\n", signal_name(sig).c_str());
        for (const auto& job : running_) kill_group(job, SIGKILL);
      } else {
        std::fprintf(stderr, "sweep: %s: stopping %zu running points (finished results are kept)\n",
                     signal_name(sig).c_str(), running_.size());
      }
      stop(true);
      wait_stop();
    });
  }

  void tick() {
    if (stopping_ && running_.empty()) return;
    ++ticks_;
    double elapsed = std::chrono::duration<double>(Clock::now() - start_).count();
    std::size_t finished = summary_.succeeded + summary_.failed;
    std::string eta = "--";
    if (finished > 0 && to_run_ > finished) eta = hms(elapsed / static_cast<double>(finished) * static_cast<double>(to_run_ - finished));
    char line[256];
    std::snprintf(line, sizeof line, "sweep: %zu/%zu done, %zu failed, %zu running, elapsed %s, ETA %s",
                  summary_.already_done + summary_.succeeded, summary_.selected, summary_.failed + summary_.skipped_failed,
                  running_.size(), hms(elapsed).c_str(), eta.c_str());
    if (progress_) std::fprintf(stderr, "\r\033[K%s", line);
    else if (ticks_ % 60 == 0) std::fprintf(stderr, "%s\n", line);
    std::fflush(stderr);
    ticker_.expires_after(std::chrono::seconds(1));
    ticker_.async_wait([this](boost::system::error_code ec) {
      if (!ec) tick();
    });
  }

  const Sweep& sweep_;
  const RunOptions& opts_;
  Layout layout_;
  asio::io_context io_;
  asio::signal_set sigchld_, stop_signals_;
  asio::steady_timer ticker_;
  std::string tcsim_, host_;
  int jobs_ = 1;
  bool progress_ = false, stopping_ = false;
  long ticks_ = 0;
  std::deque<const Point*> queue_;
  std::set<std::shared_ptr<Job>> running_;
  std::map<pid_t, std::shared_ptr<Job>> by_pid_;
  RunSummary summary_;
  std::size_t to_run_ = 0;
  Clock::time_point start_;
  std::exception_ptr fatal_;
};

// One runner per shard and directory at a time (two would run the same points twice).
class ShardLock {
public:
  ShardLock(const Layout& layout, Shard shard) {
    path_ = layout.dir / (".lock-shard-" + std::to_string(shard.index) + "-of-" + std::to_string(shard.count));
    fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0) throw InputError(path_.string(), std::string("cannot create lock file: ") + std::strerror(errno));
    if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
      char buf[64] = {};
      [[maybe_unused]] auto n = ::pread(fd_, buf, sizeof buf - 1, 0);
      ::close(fd_);
      throw InputError(layout.dir.string(), "another `tcsim sweep run` (" + std::string(buf) +
                                                ") is already running shard " + std::to_string(shard.index) + "/" +
                                                std::to_string(shard.count) + " in this directory");
    }
    std::string who = "pid " + std::to_string(::getpid()) + " on " + hostname();
    [[maybe_unused]] auto r = ::ftruncate(fd_, 0);
    [[maybe_unused]] auto w = ::pwrite(fd_, who.data(), who.size(), 0);
  }
  ~ShardLock() { ::close(fd_); }
  ShardLock(const ShardLock&) = delete;
  ShardLock& operator=(const ShardLock&) = delete;

private:
  fs::path path_;
  int fd_ = -1;
};

}  // namespace

RunSummary run_local(const Sweep& sweep, const RunOptions& opts) {
  Layout layout = prepare_dir(opts.out_dir);
  write_manifest(layout, sweep);
  ShardLock lock(layout, opts.shard);

  std::vector<const Point*> selected = shard_points(sweep, opts.shard);
  if (!opts.only.empty()) {
    std::set<std::string> want(opts.only.begin(), opts.only.end());
    for (const auto& id : want) {
      bool known = std::any_of(sweep.points.begin(), sweep.points.end(), [&](const Point& p) { return p.id == id; });
      if (!known) throw InputError("--only " + id, "no point of " + sweep.spec_path + " has this id (see `tcsim sweep list`)");
    }
    std::erase_if(selected, [&](const Point* p) { return !want.count(p->id); });
  }
  RunSummary summary;
  summary.selected = selected.size();
  std::deque<const Point*> queue;
  for (const Point* p : selected) {
    std::error_code ec;
    if (fs::exists(layout.point_file(p->id), ec)) {
      ++summary.already_done;
      fs::remove(layout.failed_file(p->id), ec);  // a retry that succeeded just before a kill
    } else if (!opts.retry_failed && fs::exists(layout.failed_file(p->id), ec)) {
      ++summary.skipped_failed;
    } else {
      queue.push_back(p);
    }
  }
  Runner runner(sweep, opts, layout);
  return runner.run(std::move(queue), summary);
}

}  // namespace tcsim::sweep
