#include "kiln/commands.hpp"

#include "core/cli/report.hpp"
#include "core/util/term.hpp"

#include <CLI/CLI.hpp>

#include <iostream>

namespace kiln::cmd {

int
kiln_main(int argc, char** argv)
{
  util::install_interrupt_handlers();
  return cli::run_guarded(k_prog, [&]() -> int {
    CLI::App app{"kiln: bake immutable DC/OS node images from YAML recipes", "kiln"};
    app.set_version_flag("--version", std::string("kiln ") + KILN_VERSION);
    app.require_subcommand(1);
    int status = 0;
    add_plan_command(app, status);
    add_build_command(app, status);
    add_verify_command(app, status);
    add_fetch_command(app, status);
    add_cache_command(app, status);
    add_trust_commands(app, status);
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
