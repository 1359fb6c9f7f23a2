#include "core/util/runner.hpp"

namespace kiln::util {

RunResult
SystemRunner::run(const std::vector<std::string>& argv, const RunOptions& options)
{
  return util::run(argv, options);
}

Runner&
system_runner()
{
  static SystemRunner runner;
  return runner;
}

} // namespace kiln::util
