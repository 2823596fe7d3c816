// (being written)
#include "sim/cli/commands.hpp"
namespace tcsim::cli {
void register_run_commands(CLI::App& /*app*/) {}
}  // namespace tcsim::cli
