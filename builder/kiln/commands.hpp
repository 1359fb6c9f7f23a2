// kiln's subcommands. Each cmd_*.cpp file adds its subcommands to the CLI11 app;
// a subcommand's callback runs the command and stores its exit status in `status`.
#pragma once

namespace CLI {
class App;
}

namespace kiln::cmd {

inline constexpr const char* k_prog = "kiln";

int kiln_main(int argc, char** argv);

void add_plan_command(CLI::App& app, int& status);
void add_fetch_command(CLI::App& app, int& status);
void add_trust_commands(CLI::App& app, int& status);
void add_build_command(CLI::App& app, int& status);

} // namespace kiln::cmd
