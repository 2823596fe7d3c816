#include "core/overrides.hpp"

#include "core/error.hpp"

namespace tcsim::core {

void Overrides::add(const std::string& assignment, const std::string& source) {
  auto eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0) {
    throw InputError(source + " " + assignment, "expected key=value, e.g. gpu.nvlink_bw=200GBps");
  }
  set(assignment.substr(0, eq), assignment.substr(eq + 1), source);
}

void Overrides::set(const std::string& key, const std::string& value, const std::string& source) {
  entries_[key] = Entry{value, source, false};
}

std::optional<std::string> Overrides::take(const std::string& key) {
  auto it = entries_.find(key);
  if (it == entries_.end()) return std::nullopt;
  it->second.taken = true;
  return it->second.value;
}

std::optional<std::string> Overrides::peek(const std::string& key) const {
  auto it = entries_.find(key);
  if (it == entries_.end()) return std::nullopt;
  return it->second.value;
}

std::string Overrides::where(const std::string& key) const {
  auto it = entries_.find(key);
  std::string source = it == entries_.end() ? "--set" : it->second.source;
  return source + " " + key;
}

std::vector<std::string> Overrides::keys_with_prefix(const std::string& prefix) const {
  std::vector<std::string> out;
  for (const auto& [k, e] : entries_) {
    if (k.rfind(prefix, 0) == 0) out.push_back(k);
  }
  return out;
}

void Overrides::check_all_taken(const std::vector<std::string>& known_keys) const {
  for (const auto& [k, e] : entries_) {
    if (e.taken) continue;
    std::string known;
    for (const auto& kk : known_keys) known += (known.empty() ? "" : ", ") + kk;
    throw InputError(e.source + " " + k, "unknown key; known keys: " + known);
  }
}

std::vector<std::string> Overrides::assignments() const {
  std::vector<std::string> out;
  for (const auto& [k, e] : entries_) out.push_back(k + "=" + e.value);
  return out;
}

}  // namespace tcsim::core
