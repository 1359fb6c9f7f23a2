#include "core/cli/report.hpp"

#include "core/util/error.hpp"
#include "core/util/term.hpp"

#include <CLI/CLI.hpp>

#include <cstdio>
#include <iostream>

namespace kiln::cli {

int
run_guarded(const std::string& prog, const std::function<int()>& body)
{
  try {
    return body();
  } catch (const MultiLineError& e) {
    for (const auto& line : e.lines()) {
      std::cerr << prog << ": error: " << line << "\n";
    }
    return e.exit_code();
  } catch (const Error& e) {
    std::cerr << prog << ": error: " << e.what() << "\n";
    return e.exit_code();
  } catch (const CLI::ParseError& e) {
    std::cerr << prog << ": error: usage: " << e.what() << " (see " << prog << " --help)\n";
    return k_exit_usage;
  } catch (const std::bad_alloc&) {
    std::cerr << prog << ": error: memory: out of memory\n";
    return k_exit_failure;
  } catch (const std::exception& e) {
    std::cerr << prog << ": error: internal: " << e.what() << "\n";
    return k_exit_failure;
  }
}

std::optional<int>
parse_command_line(CLI::App& app, int argc, char** argv, const std::string& version_line)
{
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    std::cout << app.help();
    return 0;
  } catch (const CLI::CallForAllHelp&) {
    std::cout << app.help("", CLI::AppFormatMode::All);
    return 0;
  } catch (const CLI::CallForVersion&) {
    std::cout << version_line << "\n";
    return 0;
  } catch (const CLI::ParseError& e) {
    throw UsageError("arguments", e.what());
  }
  return std::nullopt;
}

void
warn(const std::string& prog, const std::string& message)
{
  std::cerr << prog << ": warning: " << message << "\n";
}

void
note(const std::string& prog, const std::string& message)
{
  std::cerr << prog << ": " << message << "\n";
}

} // namespace kiln::cli
