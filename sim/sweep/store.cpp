#include "sim/sweep/store.hpp"

#include <cerrno>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <sstream>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.hpp"

namespace tcsim::sweep {

namespace fs = std::filesystem;
using core::InputError;

namespace {

[[noreturn]] void fail(const fs::path& path, const std::string& action, int err) {
  throw InputError(path.string(), "cannot " + action + ": " + std::strerror(err));
}

void fsync_dir(const fs::path& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) fail(dir, "open directory", errno);
  if (::fsync(fd) != 0 && errno != EINVAL) {
    int err = errno;
    ::close(fd);
    fail(dir, "sync directory", err);
  }
  ::close(fd);
}

// Names of scratch entries carry ".<pid>.<host>" after the point id (12 hex digits) so
// that a later run can tell whether their writer is still alive.
bool left_by_dead_process(const std::string& name, std::size_t after) {
  if (name.size() <= after || name[after] != '.') return false;
  std::size_t dot = name.find('.', after + 1);
  if (dot == std::string::npos) return false;
  std::string pid = name.substr(after + 1, dot - after - 1);
  std::string host = name.substr(dot + 1);
  if (host.size() > 4 && host.compare(host.size() - 4, 4, ".tmp") == 0) host.resize(host.size() - 4);
  if (pid.empty() || pid.find_first_not_of("0123456789") != std::string::npos) return false;
  if (host != hostname()) return false;  // another machine's: not ours to judge
  pid_t p = static_cast<pid_t>(std::stol(pid));
  if (p == ::getpid()) return false;
  return ::kill(p, 0) != 0 && errno == ESRCH;
}

}  // namespace

std::string hostname() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0) return "localhost";
  std::string h(buf);
  for (char& c : h)
    if (c == '/' || c == ' ') c = '_';
  return h.empty() ? "localhost" : h;
}

void atomic_write(const fs::path& path, const std::string& content) {
  // Temporary name: ".<name>.<pid>.<host>.tmp" beside the target (same file system).
  fs::path tmp = path.parent_path() /
                 ("." + path.filename().string() + "." + std::to_string(::getpid()) + "." + hostname() + ".tmp");
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) fail(tmp, "create file", errno);
  const char* p = content.data();
  std::size_t left = content.size();
  while (left > 0) {
    ssize_t n = ::write(fd, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      fail(path, "write", err);
    }
    p += n;
    left -= static_cast<std::size_t>(n);
  }
  if (::fsync(fd) != 0) {
    int err = errno;
    ::close(fd);
    ::unlink(tmp.c_str());
    fail(path, "write (fsync)", err);
  }
  if (::close(fd) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    fail(path, "write (close)", err);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    fail(path, "rename the temporary file into place", err);
  }
  fsync_dir(path.parent_path().empty() ? fs::path(".") : path.parent_path());
}

Layout prepare_dir(const fs::path& dir) {
  Layout l;
  std::error_code ec;
  l.dir = fs::absolute(dir, ec).lexically_normal();
  if (ec) fail(dir, "resolve the path", ec.value());
  if (l.dir.filename().empty()) l.dir = l.dir.parent_path();
  for (const fs::path& d : {l.dir, l.points(), l.failed(), l.work()}) {
    fs::create_directories(d, ec);
    if (ec) throw InputError(d.string(), "cannot create the sweep directory: " + ec.message());
    if (!fs::is_directory(d)) throw InputError(d.string(), "exists but is not a directory");
  }
  // Writable? Try for real (permissions alone do not tell for root, read-only mounts or full disks).
  atomic_write(l.dir / ".write-test", "ok\n");
  fs::remove(l.dir / ".write-test", ec);

  // Remove what dead processes of this host left: temporaries and scratch folders.
  for (const fs::path& d : {l.dir, l.points(), l.failed()}) {
    for (const auto& e : fs::directory_iterator(d, ec)) {
      std::string name = e.path().filename().string();
      if (name.size() > 5 && name[0] == '.' && name.compare(name.size() - 4, 4, ".tmp") == 0) {
        // ".<target>.<pid>.<host>.tmp": find the pid after the target name (which ends in .json).
        std::size_t after = name.find(".json");
        if (after != std::string::npos && left_by_dead_process(name, after + 5)) fs::remove(e.path(), ec);
      }
    }
  }
  for (const auto& e : fs::directory_iterator(l.work(), ec)) {
    std::string name = e.path().filename().string();
    if (left_by_dead_process(name, 12)) fs::remove_all(e.path(), ec);
  }
  return l;
}

nlohmann::json manifest_json(const Sweep& sweep) {
  nlohmann::json j;
  j["format"] = "tcsim-sweep/1";
  j["name"] = sweep.name;
  j["spec"] = sweep.spec_path;
  j["axes"] = sweep.axis_keys;
  nlohmann::json pts = nlohmann::json::array();
  for (const auto& p : sweep.points) pts.push_back({{"id", p.id}, {"settings", p.settings}});
  j["points"] = std::move(pts);
  return j;
}

void write_manifest(const Layout& layout, const Sweep& sweep) {
  std::string text = manifest_json(sweep).dump(1) + "\n";
  // Unchanged manifests are left alone (many shards start at once).
  std::ifstream in(layout.manifest(), std::ios::binary);
  if (in) {
    std::stringstream ss;
    ss << in.rdbuf();
    if (ss.str() == text) return;
  }
  atomic_write(layout.manifest(), text);
}

std::optional<nlohmann::json> read_json(const fs::path& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) return std::nullopt;
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, "read", errno ? errno : EIO);
  std::stringstream ss;
  ss << in.rdbuf();
  try {
    return nlohmann::json::parse(ss.str());
  } catch (const nlohmann::json::parse_error& e) {
    throw InputError(path.string(), std::string("invalid JSON: ") + e.what());
  }
}

std::string shell_quote(const std::string& text) {
  std::string out = "'";
  for (char c : text) {
    if (c == '\'') out += "'\\''";
    else out += c;
  }
  return out + "'";
}

std::string shell_join(const std::vector<std::string>& argv) {
  std::string out;
  for (const auto& a : argv) {
    bool plain = !a.empty() && a.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-./=:,@%+") ==
                                   std::string::npos;
    out += (out.empty() ? "" : " ") + (plain ? a : shell_quote(a));
  }
  return out;
}

}  // namespace tcsim::sweep
