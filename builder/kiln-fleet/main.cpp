// kiln-fleet: reimage or wipe a DC/OS cluster's nodes through kiln-node, one batch at a
// time, through the Mesos maintenance protocol (ARCHITECTURE.md, "kiln-fleet").
#include "core/cli/report.hpp"
#include "core/fleet/clock.hpp"
#include "core/fleet/cluster.hpp"
#include "core/fleet/controller.hpp"
#include "core/fleet/master_health.hpp"
#include "core/fleet/mesos_http.hpp"
#include "core/fleet/plan.hpp"
#include "core/fleet/state.hpp"
#include "core/fleet/transport.hpp"
#include "core/util/error.hpp"
#include "core/util/fs.hpp"
#include "core/util/term.hpp"
#include "kiln-fleet/render.hpp"

#include <CLI/CLI.hpp>

#include <csignal>
#include <cstdlib>
#include <iostream>
#include <unistd.h>

namespace {

using namespace kiln;
using namespace kiln::fleet;

struct Args {
  std::string cluster;
  bool json = false;
  bool force_wipe_masters = false;
};

#ifdef KILN_FLEET_TEST_HOOKS
// KILN_FLEET_STOP_AFTER=PHASE: die by SIGKILL once the state file holds a node at PHASE,
// as a crash or a lost machine would (the resume tests); =reboot-sent: once the reboot
// command ran, before `rebooting` is saved.
void
read_test_hooks(ControlOptions& options)
{
  const char* phase = std::getenv("KILN_FLEET_STOP_AFTER");
  if (phase == nullptr || *phase == '\0') {
    return;
  }
  options.stop = [] { ::raise(SIGKILL); };
  if (std::string(phase) == "reboot-sent") {
    options.stop_after_reboot_sent = true;
    return;
  }
  options.stop_after = parse_phase(phase);
  if (!options.stop_after) {
    throw UsageError("KILN_FLEET_STOP_AFTER", std::string("unknown phase '") + phase + "'");
  }
}
#endif

int
plan_command(const Args& a)
{
  Cluster c = load_cluster(a.cluster);
  Plan plan = make_plan(c, {a.force_wipe_masters});
  for (const auto& line : describe_plan(plan, c)) {
    std::cout << line << "\n";
  }
  return 0;
}

int
status_command(const Args& a)
{
  Cluster c = load_cluster(a.cluster);
  auto state = load_state(c.state_file);
  RunState s = start_state(c, state);
  fleet::cli::render_status(std::cout, c, s, a.json);
  return 0;
}

int
run_command(const Args& a)
{
  Cluster c = load_cluster(a.cluster);
  Plan plan = make_plan(c, {a.force_wipe_masters});
  // One run per state file at a time: a second one is refused at once, never waits.
  auto lock = util::FileLock::try_acquire(c.state_file.string() + ".lock");
  if (!lock) {
    throw Error(c.state_file.string(), "another kiln-fleet run holds it");
  }
  RunState state = start_state(c, load_state(c.state_file));
  save_state(c.state_file, state);
  HttpMesosApi api(c);
  CommandTransport transport(c.transport);
  NetworkMasterProbe probe(c, read_token(c));
  SystemClock clock;
  // A terminal sees each node of the batch on a line of its own, redrawn; CI and --json a
  // line per phase.
  fleet::cli::LineEvents lines(std::cout, a.json);
  fleet::cli::TerminalEvents terminal(std::cout);
  Events& events = !a.json && util::is_smart_terminal(STDOUT_FILENO) ? static_cast<Events&>(terminal) : lines;
  ControlOptions options;
#ifdef KILN_FLEET_TEST_HOOKS
  read_test_hooks(options);
#endif
  Controller controller(c, {api, transport, probe, clock, events}, options);
  controller.run(plan, state);
  return 0;
}

} // namespace

int
main(int argc, char** argv)
{
  util::install_interrupt_handlers();
  return kiln::cli::run_guarded("kiln-fleet", [&]() -> int {
    CLI::App app{"kiln-fleet: reimage or wipe a DC/OS cluster's nodes with kiln-node, batch by batch", "kiln-fleet"};
    app.set_version_flag("--version", "kiln-fleet " KILN_VERSION);
    app.require_subcommand(1);
    app.fallthrough(true);
    Args a;
    app.add_flag("--json", a.json, "JSON lines (run) or a JSON document (status)");
    CLI::App* plan = app.add_subcommand("plan", "Print what run would do, in order; change nothing");
    CLI::App* run = app.add_subcommand("run", "Run the plan, or resume it from the state file");
    CLI::App* status = app.add_subcommand("status", "Show each node's phase from the state file");
    for (CLI::App* sub : {plan, run, status}) {
      sub->add_option("CLUSTER", a.cluster, "The cluster file (YAML)")->required();
    }
    for (CLI::App* sub : {plan, run}) {
      sub->add_flag("--force-wipe-masters", a.force_wipe_masters,
                    "Allow wiping masters: deletes each one's ZooKeeper and replicated-log state (one at a time)");
    }
    if (auto answered = kiln::cli::parse_command_line(app, argc, argv, "kiln-fleet " KILN_VERSION)) {
      return *answered;
    }
    if (plan->parsed()) {
      return plan_command(a);
    }
    if (status->parsed()) {
      return status_command(a);
    }
    return run_command(a);
  });
}
