#include "kiln/commands.hpp"

#include "core/cli/report.hpp"
#include "core/util/term.hpp"

#include <CLI/CLI.hpp>

#include <iostream>

namespace kiln::cmd {

namespace {

// The command table: each entry adds its subcommands (cmd_*.cpp), in the order help lists them.
using AddCommands = void (*)(CLI::App& app, int& status);
constexpr AddCommands k_commands[] = {add_plan_command,  add_build_command, add_verify_command, add_diff_command,
                                      add_fetch_command, add_cache_command, add_trust_commands};

} // namespace

int
kiln_main(int argc, char** argv)
{
  util::install_interrupt_handlers();
  return cli::run_guarded(k_prog, [&]() -> int {
    CLI::App app{"kiln: bake immutable DC/OS node images from YAML recipes", "kiln"};
    app.set_version_flag("--version", std::string("kiln ") + KILN_VERSION);
    app.require_subcommand(1);
    int status = 0;
    for (AddCommands add : k_commands) {
      add(app, status);
    }
    try {
      app.parse(argc, argv);
    } catch (const CLI::CallForHelp&) {
      std::cout << app.help();
      return 0;
    } catch (const CLI::CallForAllHelp&) {
      std::cout << app.help("", CLI::AppFormatMode::All);
      return 0;
    } catch (const CLI::CallForVersion&) {
      std::cout << "kiln " << KILN_VERSION << "\n";
      return 0;
    }
    return status;
  });
}

} // namespace kiln::cmd
