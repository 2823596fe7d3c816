// The sweep directory and how files get into it. Layout of DIR:
//   sweep.json        the expanded sweep (spec path, axes, every point's id and settings)
//   points/<id>.json  one finished point: its settings, the commands run and the result JSON
//   failed/<id>.json  one failed point: exit code or signal, timeout, stderr tail
//   work/<id>.<pid>.<host>/  scratch of a running point (platform.xml, result.json, stdout.log)
// Every file is written atomically (temporary file, fsync, rename, fsync of the directory),
// so a reader, a crash or kill -9 only ever sees complete files.
#pragma once

#include <filesystem>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "sim/sweep/spec.hpp"

namespace tcsim::sweep {

struct Layout {
  std::filesystem::path dir;
  [[nodiscard]] std::filesystem::path manifest() const { return dir / "sweep.json"; }
  [[nodiscard]] std::filesystem::path points() const { return dir / "points"; }
  [[nodiscard]] std::filesystem::path failed() const { return dir / "failed"; }
  [[nodiscard]] std::filesystem::path work() const { return dir / "work"; }
  [[nodiscard]] std::filesystem::path point_file(const std::string& id) const { return points() / (id + ".json"); }
  [[nodiscard]] std::filesystem::path failed_file(const std::string& id) const { return failed() / (id + ".json"); }
};

/// Writes content to path atomically; throws InputError naming the path and the system error
/// (e.g. "No space left on device"). An existing file at path is replaced only when the new
/// content is complete on disk.
void atomic_write(const std::filesystem::path& path, const std::string& content);

/// This machine's host name (for scratch and temporary file names).
std::string hostname();

/// Creates DIR and its subfolders, checks that DIR is writable (InputError otherwise) and
/// removes scratch and temporary files that processes on this host left behind when they died.
Layout prepare_dir(const std::filesystem::path& dir);

/// The manifest: {"format", "name", "spec", "axes", "points": [{"id", "settings"}]}.
nlohmann::json manifest_json(const Sweep& sweep);
void write_manifest(const Layout& layout, const Sweep& sweep);

/// Parses a JSON file; nullopt when it does not exist; InputError when unreadable or invalid.
std::optional<nlohmann::json> read_json(const std::filesystem::path& path);

/// Shell quoting for POSIX sh/bash: 'text' with embedded ' written as '\''. Safe for any bytes.
std::string shell_quote(const std::string& text);
/// argv joined with spaces, each word quoted only when needed (for messages and scripts).
std::string shell_join(const std::vector<std::string>& argv);

}  // namespace tcsim::sweep
