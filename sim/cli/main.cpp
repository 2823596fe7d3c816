// tcsim: the command-line entry point. Only this file turns errors into exit codes
// (run_command_line, which `tcsim sweep run` also calls per point in a forked copy).
#include <cstdio>
#include <exception>
#include <string>

#include <CLI/CLI.hpp>

#include "core/error.hpp"
#include "core/heap.hpp"
#include "core/log.hpp"
#include "sim/cli/commands.hpp"

namespace tcsim::cli {
int& exit_code() {
  static int code = 0;
  return code;
}

int run_command_line(int argc, char** argv) {
  exit_code() = 0;  // a forked sweep point starts from its runner's state (sweep/runner.hpp)
  CLI::App app{"tcsim: discrete-event simulator of GPU training clusters (SimGrid 3.32)\n"
               "How much do hardware restrictions (NVLink, NIC, compute) slow training?"};
  app.require_subcommand(1);
  std::string log_level = "warn";
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error or off")->capture_default_str();
  app.set_version_flag("--version", "tcsim 0.1");
  app.parse_complete_callback([&] { tcsim::core::init_logging(log_level); });

  tcsim::cli::register_run_commands(app);
  tcsim::cli::register_hw_commands(app);
  tcsim::cli::register_topo_commands(app);
  tcsim::cli::register_model_commands(app);
  tcsim::cli::register_trace_commands(app);
  tcsim::cli::register_sweep_commands(app);
  tcsim::cli::register_scale_commands(app);

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "error: command line: %s; see --help\n", e.what());
    return 2;
  } catch (const tcsim::core::InputError& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "internal error: %s\n", e.what());
    return 3;
  }
  return tcsim::cli::exit_code();
}

}  // namespace tcsim::cli

int main(int argc, char** argv) {
  tcsim::core::back_heap_with_huge_pages();  // page faults are the cost of short runs (core/heap.hpp)
  return tcsim::cli::run_command_line(argc, argv);
}
