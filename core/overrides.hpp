// `--set key=value` overrides. Each module takes the keys it knows (take()), and the
// CLI rejects whatever is left (check_all_taken()), so an unknown or misspelt key is
// an error, never silently ignored.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace tcsim::core {

class Overrides {
public:
  /// Parses "key=value"; source names where it came from (e.g. "--set", "sweep.textproto:4").
  void add(const std::string& assignment, const std::string& source = "--set");
  void set(const std::string& key, const std::string& value, const std::string& source = "--set");

  /// The value of key, marking it used; nullopt if not given.
  std::optional<std::string> take(const std::string& key);
  /// Like take() but does not mark the key used.
  [[nodiscard]] std::optional<std::string> peek(const std::string& key) const;
  /// The context string for errors about key: "--set gpu.nvlink_bw".
  [[nodiscard]] std::string where(const std::string& key) const;

  /// Every key starting with prefix (e.g. "gpu."), in sorted order.
  [[nodiscard]] std::vector<std::string> keys_with_prefix(const std::string& prefix) const;

  /// Throws InputError for the first key nobody took, listing the known keys.
  void check_all_taken(const std::vector<std::string>& known_keys) const;

  /// All assignments as "key=value", sorted by key (for reports and point ids).
  [[nodiscard]] std::vector<std::string> assignments() const;
  [[nodiscard]] bool empty() const { return entries_.empty(); }

private:
  struct Entry {
    std::string value;
    std::string source;
    bool taken = false;
  };
  std::map<std::string, Entry> entries_;
};

}  // namespace tcsim::core
