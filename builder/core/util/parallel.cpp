#include "core/util/parallel.hpp"

#include <algorithm>
#include <atomic>
#include <exception>
#include <thread>
#include <vector>

namespace kiln::util {

void
parallel_for(std::size_t count, std::size_t jobs, const std::function<void(std::size_t)>& fn)
{
  if (jobs == 0) {
    jobs = std::max(1u, std::thread::hardware_concurrency());
  }
  jobs = std::min(jobs, count);
  std::atomic<std::size_t> next = 0;
  std::atomic<bool> failed = false;
  std::vector<std::exception_ptr> errors(count); // errors[i]: only the call of i writes it
  auto worker = [&] {
    for (std::size_t i = next++; i < count && !failed; i = next++) {
      try {
        fn(i);
      } catch (...) {
        errors[i] = std::current_exception();
        failed = true;
      }
    }
  };
  std::vector<std::thread> threads;
  for (std::size_t t = 1; t < jobs; ++t) {
    threads.emplace_back(worker);
  }
  worker();
  for (auto& t : threads) {
    t.join();
  }
  for (const auto& e : errors) {
    if (e) {
      std::rethrow_exception(e);
    }
  }
}

} // namespace kiln::util
