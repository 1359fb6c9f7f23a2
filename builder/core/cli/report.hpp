// The executables' shared front door: turns every exception into the one-line
// `PROG: error: SUBJECT: REASON` form and an exit status.
#pragma once

#include <functional>
#include <optional>
#include <string>

namespace CLI {
class App;
} // namespace CLI

namespace kiln::cli {

// Runs `body`, printing errors as `PROG: error: ...` lines on stderr. Returns the exit
// status: body's result, 1 for failures, 2 for bad input, 130 when interrupted.
int run_guarded(const std::string& prog, const std::function<int()>& body);

// Parses the command line into `app`. --help and --version print to stdout and give the
// exit status (0); nullopt means the program goes on; a malformed command line throws
// UsageError("arguments", ...).
std::optional<int> parse_command_line(CLI::App& app, int argc, char** argv, const std::string& version_line);

// Prints `PROG: warning: MESSAGE` or `PROG: MESSAGE` lines on stderr.
void warn(const std::string& prog, const std::string& message);
void note(const std::string& prog, const std::string& message);

} // namespace kiln::cli
