// InputError: bad user input (a file, a flag, a config value). It carries where the
// problem is (file:line, a --set key, an option) and what would be valid. Only main()
// turns it into `error: <where>: <what>` and exit code 2; library code just throws.
#pragma once

#include <stdexcept>
#include <string>

namespace tcsim::core {

class InputError : public std::runtime_error {
public:
  /// where: "file.xml:12", "--set gpu.nvlink_bw", "model deepseek-v3: field moe.top_k".
  /// what: the problem and, where possible, what would be valid.
  InputError(std::string where, std::string what)
      : std::runtime_error(where.empty() ? what : where + ": " + what),
        where_(std::move(where)), what_(std::move(what)) {}

  [[nodiscard]] const std::string& where() const { return where_; }
  [[nodiscard]] const std::string& problem() const { return what_; }

  /// The same error with an outer context prepended ("file.textproto: " + where).
  [[nodiscard]] InputError within(const std::string& outer) const {
    return InputError(where_.empty() ? outer : outer + ": " + where_, what_);
  }

private:
  std::string where_;
  std::string what_;
};

}  // namespace tcsim::core
