// Each area of the CLI registers its subcommands on the root app. The callbacks throw
// core::InputError for bad input; main() turns that into `error: ...` and exit code 2.
#pragma once

#include <CLI/CLI.hpp>

namespace tcsim::cli {

void register_run_commands(CLI::App& app);    // run, compare, bench collective
void register_hw_commands(CLI::App& app);     // hw list/show/classify
void register_topo_commands(CLI::App& app);   // topo gen/check/show
void register_model_commands(CLI::App& app);  // model list/show, plan check/enumerate
void register_trace_commands(CLI::App& app);  // trace show/export (Chakra)
void register_sweep_commands(CLI::App& app);  // sweep run/slurm/merge
void register_scale_commands(CLI::App& app);  // bench scale (after run: shares `bench`)

/// The whole command line as main() runs it (argv[0] is the program name): parses it,
/// runs the subcommand and returns the exit code, printing `error: ...` for bad input.
/// `tcsim sweep run` also calls it in forked copies of itself, one per point command.
int run_command_line(int argc, char** argv);

/// Set by main(): exit code a subcommand asks for (0 unless it reports problems).
int& exit_code();

}  // namespace tcsim::cli
