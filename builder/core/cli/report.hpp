// The executables' shared front door: turns every exception into the one-line
// `PROG: error: SUBJECT: REASON` form and an exit status.
#pragma once

#include <functional>
#include <string>

namespace kiln::cli {

// Runs `body`, printing errors as `PROG: error: ...` lines on stderr. Returns the exit
// status: body's result, 1 for failures, 2 for bad input, 130 when interrupted.
int run_guarded(const std::string& prog, const std::function<int()>& body);

// Prints `PROG: warning: MESSAGE` or `PROG: MESSAGE` lines on stderr.
void warn(const std::string& prog, const std::string& message);
void note(const std::string& prog, const std::string& message);

} // namespace kiln::cli
