// The kiln-node artifact kiln installs into every `layout: ab` image (slot A) and into
// the PXE installer: a ROOT tree laid out as installed on a node,
//   usr/bin/kiln-node          the launcher (or a static binary)
//   usr/lib/kiln/node/...      its loader, libraries and real binary, and VERSION
//                              ("kiln-node <version> (kiln <commit>)")
// or, named by `ab: {node: FILE}`, a single executable installed as /usr/bin/kiln-node.
// kiln's own artifact sits beside the kiln executable (build tree) or in
// <prefix>/lib/kiln (installed).
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

namespace kiln::recipe {

inline constexpr std::string_view k_node_artifact_dir = "kiln-node-artifact";
inline constexpr std::string_view k_node_artifact_bin = "usr/bin/kiln-node";
inline constexpr std::string_view k_node_artifact_lib = "usr/lib/kiln/node";
inline constexpr std::string_view k_node_artifact_version = "usr/lib/kiln/node/VERSION";

struct NodeArtifact {
  std::filesystem::path path; // absolute: the ROOT tree, or the single executable
  bool directory = true;
  std::string version; // VERSION's line; for a single executable "unknown (single executable)"
  std::string sha256; // sha256_tree of the ROOT tree, sha256_file of a single executable
};

// Checks the shape of `path` and digests it. Throws Error (subject: the path) when it is
// neither a ROOT tree with usr/bin/kiln-node and a one-line VERSION nor an executable file.
NodeArtifact describe_node_artifact(const std::filesystem::path& path);

// kiln's own artifact for the kiln executable `exe`: EXEDIR/kiln-node-artifact, else
// EXEDIR/../lib/kiln/kiln-node-artifact. Throws Error naming both places when neither exists.
std::filesystem::path own_node_artifact(const std::filesystem::path& exe);
// The same for the running executable (/proc/self/exe).
std::filesystem::path own_node_artifact();

} // namespace kiln::recipe
