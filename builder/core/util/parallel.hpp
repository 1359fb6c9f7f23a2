// Independent pieces of work side by side: the output conversions of one build, each its
// own qemu-img process over the same final layer.
#pragma once

#include <cstddef>
#include <functional>

namespace kiln::util {

// Runs fn(0) .. fn(count - 1) on up to `jobs` threads (0: one per processor) and returns
// once every call has ended. When calls fail, the failure of the lowest index is thrown
// then, and calls not yet started when the first failed are not started.
void parallel_for(std::size_t count, std::size_t jobs, const std::function<void(std::size_t)>& fn);

} // namespace kiln::util
