// The seam at external programs (qemu-img, sfdisk, mkfs, grub tools): code that runs
// them takes a Runner, so unit tests check the argv and stdin it passes and feed it exit
// statuses without the programs (tests/support/fake_runner); the real one is util::run.
#pragma once

#include "core/util/process.hpp"

#include <string>
#include <vector>

namespace kiln::util {

class Runner {
public:
  virtual ~Runner() = default;
  // As util::run: a non-zero exit is in the result; a program that cannot start, a
  // deadline or an interruption throws.
  virtual RunResult run(const std::vector<std::string>& argv, const RunOptions& options = {}) = 0;
};

// util::run itself.
class SystemRunner final : public Runner {
public:
  RunResult run(const std::vector<std::string>& argv, const RunOptions& options = {}) override;
};

// The process's system runner.
Runner& system_runner();

} // namespace kiln::util
