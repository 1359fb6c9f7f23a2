// kiln's subcommands. Each cmd_*.cpp file adds its subcommands to the CLI11 app;
// a subcommand's callback runs the command and stores its exit status in `status`.
#pragma once

#include "core/recipe/loader.hpp"

#include <string>
#include <vector>

namespace CLI {
class App;
}

namespace kiln::cmd {

inline constexpr const char* k_prog = "kiln";

int kiln_main(int argc, char** argv);

// Recipe load options from --set NAME=VALUE assignments and --allow-unpinned.
recipe::LoadOptions recipe_load_options(const std::vector<std::string>& set, bool allow_unpinned);

void add_plan_command(CLI::App& app, int& status);
void add_fetch_command(CLI::App& app, int& status);
void add_cache_command(CLI::App& app, int& status);
void add_trust_commands(CLI::App& app, int& status);
void add_build_command(CLI::App& app, int& status);
void add_verify_command(CLI::App& app, int& status);
void add_diff_command(CLI::App& app, int& status);

} // namespace kiln::cmd
