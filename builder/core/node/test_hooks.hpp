// Test hooks of kiln-node. Only the test build of kiln-node (target kiln-node-test,
// compiled with KILN_NODE_TEST_HOOKS) fills them, from its environment in main; the
// shipped kiln-node never does, and holds none of the variables' names. Empty means off.
// KILN_NODE_FAULT is not one of them: main parses it into the reimage and install
// options (node/fault.hpp), so only the commands told to fail do.
#pragma once

#include <filesystem>
#include <string>

namespace kiln::node {

struct TestHooks {
  std::filesystem::path cmdline; // a file read instead of /proc/cmdline
  std::string systemctl; // the program run instead of systemctl
  std::string mesos; // base URL asked instead of http://localhost:5050 or :5051
  std::string zookeeper; // HOST:PORT asked instead of localhost:2181
};

// The process's hooks (all empty unless the test build's main set them).
TestHooks& test_hooks();

} // namespace kiln::node
