// kiln-node: the reimaging tool that runs on a node or in an installer ramdisk.
// It links kiln_core only (never libguestfs), so it stays small.
#include "core/cli/report.hpp"
#include "core/util/error.hpp"
#include "core/util/term.hpp"

#include <CLI/CLI.hpp>

#include <iostream>

int
main(int argc, char** argv)
{
  kiln::util::install_interrupt_handlers();
  return kiln::cli::run_guarded("kiln-node", [&]() -> int {
    CLI::App app{"kiln-node: reimage this node from A/B slots, roll back, wipe DC/OS state", "kiln-node"};
    app.set_version_flag("--version", std::string("kiln-node ") + KILN_VERSION);
    app.require_subcommand(1);
    std::string disk;
    app.add_option("--disk", disk, "Disk holding the A/B layout (block device, image file or loop device)");
    auto* status = app.add_subcommand("status", "Show both slots and which one boots next");
    bool json = false;
    status->add_flag("--json", json, "Machine-readable output");
    try {
      app.parse(argc, argv);
    } catch (const CLI::CallForHelp&) {
      std::cout << app.help();
      return 0;
    } catch (const CLI::CallForVersion&) {
      std::cout << "kiln-node " << KILN_VERSION << "\n";
      return 0;
    }
    throw kiln::Error("status", "the A/B slot layout is not implemented yet");
  });
}
