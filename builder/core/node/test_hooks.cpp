#include "core/node/test_hooks.hpp"

namespace kiln::node {

TestHooks&
test_hooks()
{
  static TestHooks hooks;
  return hooks;
}

} // namespace kiln::node
