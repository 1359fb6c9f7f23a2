// kiln-node: the reimaging tool that runs on a node or in an installer ramdisk.
// It links kiln_base and kiln_node_lib only (never libguestfs, no YAML parser). The
// commands' logic lives in core/node, their options and rendering in commands.cpp and
// render.cpp; this file builds the parser from the command table and dispatches.
#include "core/cli/report.hpp"
#include "core/node/test_hooks.hpp"
#include "core/util/error.hpp"
#include "core/util/term.hpp"
#include "kiln-node/commands.hpp"

#include <CLI/CLI.hpp>

#include <cstdlib>
#include <iostream>
#include <optional>

namespace {

namespace cli = kiln::node_cli;

// `kiln-node VERSION (kiln COMMIT)`: the commit is configure time's `git describe`.
std::string
version_line()
{
  return std::string("kiln-node ") + KILN_VERSION + " (kiln " + KILN_COMMIT + ")";
}

#ifdef KILN_NODE_TEST_HOOKS
// The test build only (target kiln-node-test): the tests' hooks come from the environment.
// The fault goes into the commands' options (through the globals), the rest into
// core/node's test_hooks(). A fault point no command has is refused, not ignored: a
// crash test with a misspelt point would otherwise pass without crashing anything.
void
read_test_hooks(cli::Globals& globals)
{
  auto env = [](const char* name) {
    const char* v = std::getenv(name);
    return std::string(v != nullptr ? v : "");
  };
  kiln::node::TestHooks& hooks = kiln::node::test_hooks();
  hooks.cmdline = env("KILN_NODE_CMDLINE");
  hooks.systemctl = env("KILN_NODE_SYSTEMCTL");
  hooks.mesos = env("KILN_NODE_MESOS");
  hooks.zookeeper = env("KILN_NODE_ZOOKEEPER");
  std::string fault = env("KILN_NODE_FAULT");
  if (!fault.empty()) {
    std::optional<kiln::node::Fault> parsed = kiln::node::parse_fault(fault);
    if (!parsed) {
      throw kiln::UsageError("KILN_NODE_FAULT",
                             "unknown fault point '" + fault + "'; one of " + kiln::node::fault_names());
    }
    globals.fault = *parsed;
  }
}
#endif

} // namespace

int
main(int argc, char** argv)
{
  kiln::util::install_interrupt_handlers();
  return kiln::cli::run_guarded("kiln-node", [&]() -> int {
    CLI::App app{"kiln-node: reimage this node from A/B slots, roll back, wipe DC/OS state", "kiln-node"};
    app.set_version_flag("--version", version_line());
    app.require_subcommand(1);
    app.fallthrough(true); // global options may also follow the command
    cli::Globals globals;
#ifdef KILN_NODE_TEST_HOOKS
    read_test_hooks(globals);
#endif
    app.add_option("--disk", globals.disk,
                   "Disk holding the A/B layout (block device, loop device or image file); "
                   "default: the disk the running system booted from");
    app.add_option("--booted", globals.booted, "Treat slot A or B as booted (tests, rescue); default: /proc/cmdline")
      ->check(CLI::IsMember({"A", "B"}));
    app.add_flag("--force", globals.force, "Let --booted override a kernel command line that names the other slot");
    app.add_flag("--json", globals.json, "Machine-readable output");
    app.add_flag("-v,--verbose", globals.verbose,
                 "Say on stderr what kiln-node chose (the CA bundle of https sources)");

    std::vector<std::pair<CLI::App*, std::function<cli::Result(cli::Context&)>>> runners;
    for (const cli::Command& command : cli::commands()) {
      CLI::App* sub = app.add_subcommand(command.name, command.help);
      runners.emplace_back(sub, command.add(*sub));
    }

    if (auto answered = kiln::cli::parse_command_line(app, argc, argv, version_line())) {
      return *answered;
    }

    cli::Context context(globals);
    for (auto& [sub, run] : runners) {
      if (!sub->parsed()) {
        continue;
      }
      cli::Result result = run(context);
      for (const std::string& warning : result.warnings) {
        std::cerr << "kiln-node: warning: " << warning << "\n";
      }
      if (globals.json) {
        std::cout << result.json.dump(2) << "\n";
      } else {
        result.render(std::cout);
      }
      return 0;
    }
    return 0;
  });
}
