// One SimGrid engine per process: simulations that a command runs several of (compare,
// bench) each run in a forked child. run_in_child() forks, runs fn there and returns the
// text fn produced; an InputError thrown in the child is rethrown here with the same
// where/what, anything else becomes std::runtime_error.
#pragma once

#include <functional>
#include <string>
#include <vector>

namespace tcsim::sim {

std::string run_in_child(const std::function<std::string()>& fn);

/// run_in_child for each of fns, up to `jobs` children at once; the texts in the order of
/// fns. When some fail, every started child is still waited for, then the first error (in
/// the order of fns) is rethrown.
std::vector<std::string> run_in_children(const std::vector<std::function<std::string()>>& fns, int jobs);

}  // namespace tcsim::sim
