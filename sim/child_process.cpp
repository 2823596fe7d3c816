#include "sim/child_process.hpp"

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <exception>
#include <cstdio>
#include <cstring>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "core/error.hpp"
#include "core/heap.hpp"

namespace tcsim::sim {
using core::InputError;

namespace {

struct Child {
  pid_t pid = -1;
  int fd = -1;  // read end of the pipe its result comes through
};

// Forks a child that runs fn and writes {"ok": text} or the error through a pipe.
Child start_child(const std::function<std::string()>& fn) {
  int fds[2];
  if (pipe(fds) != 0) throw std::runtime_error(std::string("pipe: ") + std::strerror(errno));
  std::fflush(nullptr);
  pid_t pid = fork();
  if (pid < 0) {
    const int e = errno;
    close(fds[0]);
    close(fds[1]);
    throw std::runtime_error(std::string("fork: ") + std::strerror(e));
  }
  if (pid == 0) {
    core::start_child_heap_on_fresh_huge_page();  // not on the parent's huge pages (core/heap.hpp)
    close(fds[0]);
    std::string out;
    int code = 0;
    try {
      out = nlohmann::ordered_json{{"ok", fn()}}.dump();
    } catch (const InputError& e) {
      out = nlohmann::ordered_json{{"error_where", e.where()}, {"error_what", e.problem()}}.dump();
      code = 2;
    } catch (const std::exception& e) {
      out = nlohmann::ordered_json{{"error_where", "internal"}, {"error_what", e.what()}}.dump();
      code = 3;
    }
    size_t off = 0;
    while (off < out.size()) {
      ssize_t n = write(fds[1], out.data() + off, out.size() - off);
      if (n <= 0) break;
      off += static_cast<size_t>(n);
    }
    close(fds[1]);
    _exit(code);
  }
  close(fds[1]);
  return {pid, fds[0]};
}

// Reads a child's result to the end, reaps it, returns its text or rethrows its error.
std::string finish_child(const Child& c) {
  std::string text;
  char buf[65536];
  for (ssize_t n; (n = read(c.fd, buf, sizeof buf)) != 0;) {
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) break;
    text.append(buf, static_cast<size_t>(n));
  }
  close(c.fd);
  int status = 0;
  while (waitpid(c.pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (text.empty()) throw std::runtime_error("simulation child died (status " + std::to_string(status) + ")");
  auto j = nlohmann::ordered_json::parse(text);
  if (j.contains("error_where")) throw InputError(j["error_where"].get<std::string>(), j["error_what"].get<std::string>());
  return j["ok"].get<std::string>();
}

}  // namespace

std::string run_in_child(const std::function<std::string()>& fn) { return finish_child(start_child(fn)); }

std::vector<std::string> run_in_children(const std::vector<std::function<std::string()>>& fns, int jobs) {
  std::vector<std::string> out(fns.size());
  std::vector<Child> running(fns.size());
  std::exception_ptr failed, unstarted;  // the first child's error in order; a fork that failed
  size_t started = 0;
  const size_t width = static_cast<size_t>(std::max(1, jobs));
  for (size_t i = 0; i < fns.size(); ++i) {
    // Keep `width` children running, results taken in order (a child that finished early
    // waits, blocked on its pipe if its result is large, until its turn). After a failed
    // fork nothing more starts; the children already running are still waited for.
    while (!unstarted && started < fns.size() && started < i + width) {
      try {
        running[started] = start_child(fns[started]);
        ++started;
      } catch (...) {
        unstarted = std::current_exception();
      }
    }
    if (i >= started) break;
    try {
      out[i] = finish_child(running[i]);
    } catch (...) {
      if (!failed) failed = std::current_exception();
    }
  }
  if (failed) std::rethrow_exception(failed);
  if (unstarted) std::rethrow_exception(unstarted);
  return out;
}

}  // namespace tcsim::sim
