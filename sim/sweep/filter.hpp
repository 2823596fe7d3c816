// The filter of a sweep spec: a small boolean expression over point settings, e.g.
// "plan.tp * plan.pp <= 64 && run.gpu != 'H20'". Values compare as numbers when both
// sides are numbers, or quantities of the same dimension ("400GBps" < "0.9TBps"),
// otherwise as text (== and != only). Errors name the filter and the offending token.
#pragma once

#include <memory>
#include <set>
#include <string>

#include "sim/sweep/spec.hpp"

namespace tcsim::sweep {

class Filter {
public:
  /// Parses text; where is the context for errors (e.g. "spec.textproto: filter 1").
  static Filter parse(const std::string& text, const std::string& where);
  Filter(Filter&&) noexcept;
  Filter& operator=(Filter&&) noexcept;
  ~Filter();

  /// True when the point is kept. Throws InputError for a type error (e.g. "H100" < 3).
  [[nodiscard]] bool matches(const Settings& settings) const;
  /// The keys the expression reads.
  [[nodiscard]] const std::set<std::string>& keys() const;
  [[nodiscard]] const std::string& text() const;

  struct Node;

private:
  Filter() = default;
  std::unique_ptr<Node> root_;
  std::set<std::string> keys_;
  std::string text_, where_;
};

}  // namespace tcsim::sweep
