// Test-loading a platform file in SimGrid without risking the calling process: SimGrid
// 3.32 aborts on many platform errors and allows one engine per process, so the load runs
// in a forked child whose stderr is captured and reworded. Header-only so that both the
// `tcsim topo check` command and the topology tests can use it without a library change.
#pragma once

#include <string>
#include <vector>

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <sstream>

#include <simgrid/s4u.hpp>

namespace tcsim::sim {

struct PlatformLoad {
  bool ok = false;
  std::string error;          ///< SimGrid's complaint, reworded, when !ok
  int hosts = 0;
  int links = 0;              ///< as SimGrid counts them (each SPLITDUPLEX direction separately)
  double load_seconds = 0;    ///< wall time of load_platform in the child (a measurement, not a result)
  long max_rss_kib = 0;       ///< peak resident memory of the child
  std::vector<std::string> details;  ///< "link NAME BW LAT" and "route SRC DST LAT L1,L2,..." lines
};

/// Loads path in a forked child. With details, the child also reports every link
/// (bandwidth in B/s, latency in s) and the routes from the first host (sorted by name)
/// to every other host.
inline PlatformLoad load_platform_in_child(const std::string& path, bool details = false) {
  PlatformLoad r;
  int out_pipe[2];
  int err_pipe[2];
  if (pipe(out_pipe) != 0 || pipe(err_pipe) != 0) {
    r.error = "cannot create a pipe to check the platform";
    return r;
  }
  std::fflush(nullptr);
  pid_t pid = fork();
  if (pid < 0) {
    r.error = "cannot fork to check the platform";
    return r;
  }
  if (pid == 0) {
    close(out_pipe[0]);
    close(err_pipe[0]);
    dup2(err_pipe[1], 2);
    FILE* out = fdopen(out_pipe[1], "w");
    int argc = 2;
    char arg0[] = "tcsim-platform-check";
    char arg1[] = "--log=root.thresh:critical";
    char* argv[] = {arg0, arg1, nullptr};
    try {
      simgrid::s4u::Engine e(&argc, argv);
      struct timeval t0, t1;
      gettimeofday(&t0, nullptr);
      e.load_platform(path);
      gettimeofday(&t1, nullptr);
      auto hosts = e.get_all_hosts();
      std::sort(hosts.begin(), hosts.end(), [](auto* a, auto* b) { return a->get_name() < b->get_name(); });
      auto links = e.get_all_links();
      std::fprintf(out, "ok %zu %zu %.6f\n", hosts.size(), links.size(),
                   (t1.tv_sec - t0.tv_sec) + 1e-6 * (t1.tv_usec - t0.tv_usec));
      if (details) {
        std::sort(links.begin(), links.end(), [](auto* a, auto* b) { return a->get_name() < b->get_name(); });
        for (auto* l : links) std::fprintf(out, "link %s %.17g %.17g\n", l->get_cname(), l->get_bandwidth(), l->get_latency());
        for (size_t i = 1; i < hosts.size(); ++i) {
          std::vector<simgrid::s4u::Link*> route;
          double lat = 0;
          hosts[0]->route_to(hosts[i], route, &lat);
          std::string names;
          for (auto* l : route) names += (names.empty() ? "" : ",") + l->get_name();
          std::fprintf(out, "route %s %s %.17g %s\n", hosts[0]->get_cname(), hosts[i]->get_cname(), lat, names.c_str());
        }
      }
      std::fflush(out);
      _exit(0);
    } catch (const std::exception& ex) {
      std::fprintf(stderr, "%s\n", ex.what());
      _exit(1);
    }
  }
  close(out_pipe[1]);
  close(err_pipe[1]);
  std::string out_text, err_text;
  // Read stdout fully first, then stderr; the child writes little to stderr.
  char buf[65536];
  ssize_t n;
  while ((n = read(out_pipe[0], buf, sizeof buf)) > 0) out_text.append(buf, static_cast<size_t>(n));
  while ((n = read(err_pipe[0], buf, sizeof buf)) > 0) err_text.append(buf, static_cast<size_t>(n));
  close(out_pipe[0]);
  close(err_pipe[0]);
  int status = 0;
  struct rusage ru {};
  wait4(pid, &status, 0, &ru);
  r.max_rss_kib = ru.ru_maxrss;
  std::istringstream in(out_text);
  std::string word;
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0 && (in >> word) && word == "ok") {
    r.ok = true;
    in >> r.hosts >> r.links >> r.load_seconds;
    std::string line;
    std::getline(in, line);
    while (std::getline(in, line)) r.details.push_back(line);
    return r;
  }
  // Keep SimGrid's last meaningful lines, without its backtrace noise.
  std::istringstream err(err_text);
  std::string line, kept;
  while (std::getline(err, line)) {
    if (line.empty() || line.find("Backtrace") != std::string::npos || line.rfind("  ", 0) == 0 ||
        line.find("0x") != std::string::npos)
      continue;
    kept += (kept.empty() ? "" : "; ") + line;
  }
  if (kept.size() > 600) kept = kept.substr(0, 600) + "...";
  r.error = "SimGrid cannot load it: " + (kept.empty() ? std::string("the loader aborted") : kept);
  return r;
}

}  // namespace tcsim::sim
