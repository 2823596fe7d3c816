#include "sim/child_process.hpp"

#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "core/error.hpp"

namespace tcsim::sim {
using core::InputError;

std::string run_in_child(const std::function<std::string()>& fn) {
  int fds[2];
  if (pipe(fds) != 0) throw std::runtime_error(std::string("pipe: ") + std::strerror(errno));
  std::fflush(stdout);
  pid_t pid = fork();
  if (pid < 0) throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
  if (pid == 0) {
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
  std::string text;
  char buf[65536];
  ssize_t n;
  while ((n = read(fds[0], buf, sizeof buf)) > 0) text.append(buf, static_cast<size_t>(n));
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (text.empty()) throw std::runtime_error("simulation child died (status " + std::to_string(status) + ")");
  auto j = nlohmann::ordered_json::parse(text);
  if (j.contains("error_where")) throw InputError(j["error_where"].get<std::string>(), j["error_what"].get<std::string>());
  return j["ok"].get<std::string>();
}

}  // namespace tcsim::sim
