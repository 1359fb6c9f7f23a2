// kiln-node's command table: each command adds its own options to the parser and runs
// with what was parsed, returning the report core/node made in both forms: its JSON
// (report_json.hpp) and its text (render.hpp). main.cpp only builds the parser from the
// table and dispatches.
#pragma once

#include "core/bundle/bundle.hpp"
#include "core/node/node.hpp"
#include "core/node/report_json.hpp"
#include "core/util/term.hpp"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <functional>
#include <iosfwd>
#include <memory>
#include <string>
#include <vector>

namespace kiln::node_cli {

// Options every command sees (given before or after the command).
struct Globals {
  std::string disk;
  std::string booted;
  bool force = false;
  bool json = false;
  bool verbose = false;
  node::Fault fault = node::Fault::none; // the test build's KILN_NODE_FAULT (reimage, install)
};

// What a command's run needs from main: the disk options from the globals, the CA
// bundle choice for an https source, the terminal's progress line.
class Context {
public:
  explicit Context(const Globals& globals);
  node::DiskOptions disk_options() const;
  // https sources: --ca-file, else the node's own trust store (the first well-known CA
  // bundle that exists), never the build host's compiled-in path.
  void choose_ca_file(const std::string& source, bundle::SourceOptions& options) const;
  node::Progress progress();
  void finish_progress();
  const Globals& globals() const { return m_globals; }

private:
  const Globals& m_globals;
  std::shared_ptr<util::ProgressLine> m_progress_line; // created on first use
};

// A command's report, as --json prints it and as text.
struct Result {
  nlohmann::json json;
  std::function<void(std::ostream&)> render;
  std::vector<std::string> warnings; // each printed on stderr as "kiln-node: warning: ..."
};

template <class Report>
Result
report_result(const Report& report, void (*render)(std::ostream&, const Report&),
              std::vector<std::string> warnings = {})
{
  return Result{report, [report, render](std::ostream& out) { render(out, report); }, std::move(warnings)};
}

// One command: `add` registers its options on its subcommand and returns the function
// that runs it once parsing is done.
struct Command {
  const char* name;
  const char* help;
  std::function<std::function<Result(Context&)>(CLI::App& sub)> add;
};

const std::vector<Command>& commands();

} // namespace kiln::node_cli
