// Subcommands of this area are registered here (work in progress by its owner).
#include "sim/cli/commands.hpp"

namespace tcsim::cli {
void register_hw_commands(CLI::App& /*app*/) {}
}  // namespace tcsim::cli
