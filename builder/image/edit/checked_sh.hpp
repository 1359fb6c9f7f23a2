// Commands in the guest whose failure is the build's failure.
#pragma once

#include "image/edit/editor.hpp"

#include <string>

namespace kiln::edit {

// Runs `script` through the editor; a non-zero exit throws Error(what, "exit status N: "
// + the last five non-empty lines of stderr, else stdout, joined by " | ").
CommandResult checked_sh(Editor& g, const std::string& script, const std::string& what);

} // namespace kiln::edit
