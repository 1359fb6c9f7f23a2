#include "core/recipe/node_artifact.hpp"

#include "core/crypto/sha256.hpp"
#include "core/util/error.hpp"
#include "core/util/fs.hpp"

#include <sys/stat.h>

namespace kiln::recipe {

namespace fs = std::filesystem;

namespace {

constexpr std::uintmax_t k_max_version_bytes = 4096;

} // namespace

NodeArtifact
describe_node_artifact(const fs::path& path)
{
  NodeArtifact a;
  a.path = fs::absolute(path).lexically_normal();
  const std::string subject = a.path.string();
  std::error_code ec;
  fs::file_status st = fs::status(a.path, ec);
  if (fs::is_regular_file(st)) {
    if ((st.permissions() & fs::perms::owner_exec) == fs::perms::none) {
      throw Error(subject, "the kiln-node artifact is a file but not executable");
    }
    a.directory = false;
    a.version = "unknown (single executable)";
    a.sha256 = crypto::sha256_file(a.path);
    return a;
  }
  if (!fs::is_directory(st)) {
    throw Error(subject, "no kiln-node artifact here (a ROOT tree with usr/bin/kiln-node, or an executable)");
  }
  const fs::path bin = a.path / k_node_artifact_bin;
  fs::file_status bin_st = fs::status(bin, ec);
  if (!fs::is_regular_file(bin_st) || (bin_st.permissions() & fs::perms::owner_exec) == fs::perms::none) {
    throw Error(subject, "the kiln-node artifact has no executable " + std::string(k_node_artifact_bin));
  }
  const fs::path version = a.path / k_node_artifact_version;
  if (!fs::is_regular_file(version, ec) || fs::file_size(version, ec) > k_max_version_bytes || ec) {
    throw Error(subject, "the kiln-node artifact has no " + std::string(k_node_artifact_version) +
                           " (one line, at most " + std::to_string(k_max_version_bytes) + " bytes)");
  }
  std::string text = util::read_file(version);
  a.version = text.substr(0, text.find('\n'));
  if (a.version.rfind("kiln-node ", 0) != 0) {
    throw Error(version.string(), "does not start with 'kiln-node ': '" + a.version + "'");
  }
  a.sha256 = crypto::sha256_tree(a.path);
  return a;
}

fs::path
own_node_artifact(const fs::path& exe)
{
  const fs::path dir = exe.parent_path();
  const fs::path beside = dir / k_node_artifact_dir;
  const fs::path installed = (dir / ".." / "lib" / "kiln" / k_node_artifact_dir).lexically_normal();
  std::error_code ec;
  for (const auto& candidate : {beside, installed}) {
    if (fs::exists(candidate, ec)) {
      return candidate;
    }
  }
  throw Error("kiln-node artifact", "none beside kiln (" + beside.string() + ") nor installed (" + installed.string() +
                                      "); build the kiln_node_artifact target, or name one with ab: {node: PATH}");
}

fs::path
own_node_artifact()
{
  std::error_code ec;
  fs::path self = fs::read_symlink("/proc/self/exe", ec);
  if (ec) {
    throw Error("/proc/self/exe", "cannot find the kiln executable: " + ec.message());
  }
  return own_node_artifact(self);
}

} // namespace kiln::recipe
