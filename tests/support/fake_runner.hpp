// A recording stand-in for util::Runner: every call's argv and stdin kept in order, each
// answered by `answer` (default: exit 0, no output). Calls from several threads (the
// output conversions run side by side) are recorded one at a time. Lets the logic that drives sfdisk,
// mkfs and qemu-img run as unit tests; the guestfs and boot tests run the real programs.
#pragma once

#include "core/util/runner.hpp"

#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace kiln::test {

class FakeRunner final : public util::Runner {
public:
  struct Call {
    std::vector<std::string> argv;
    std::optional<std::string> stdin_data;
  };
  std::vector<Call> calls;
  std::function<util::RunResult(const Call&)> answer;

  // Every call from now on ends with `exit_code` and `err` on stderr.
  void fail_with(int exit_code, std::string err)
  {
    answer = [exit_code, err = std::move(err)](const Call&) {
      util::RunResult r;
      r.exit_code = exit_code;
      r.err = err;
      return r;
    };
  }

  util::RunResult run(const std::vector<std::string>& argv, const util::RunOptions& options = {}) override
  {
    std::lock_guard<std::mutex> lock(m_mutex);
    calls.push_back({argv, options.stdin_data});
    if (answer) {
      return answer(calls.back());
    }
    util::RunResult ok;
    ok.exit_code = 0;
    return ok;
  }

private:
  std::mutex m_mutex;
};

} // namespace kiln::test
