// A kiln-node artifact ROOT tree for tests (core/recipe/node_artifact.hpp): usr/bin/kiln-node
// (a copy of the built kiln-node), usr/lib/kiln/node/VERSION, a library file and a symlink
// to it, so copies of the tree can be compared file by file.
#pragma once

#include <filesystem>
#include <string>

namespace kiln::test {

std::filesystem::path make_node_artifact(const std::filesystem::path& root,
                                         const std::string& version = "kiln-node 9.9.9 (kiln test)");

} // namespace kiln::test
