// One SimGrid engine per process: simulations that a command runs several of (compare,
// bench) each run in a forked child. run_in_child() forks, runs fn there and returns the
// text fn produced; an InputError thrown in the child is rethrown here with the same
// where/what, anything else becomes std::runtime_error.
#pragma once

#include <functional>
#include <string>

namespace tcsim::sim {

std::string run_in_child(const std::function<std::string()>& fn);

}  // namespace tcsim::sim
