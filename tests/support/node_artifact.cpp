#include "support/node_artifact.hpp"

#include "support/test_support.hpp"

namespace kiln::test {

namespace fs = std::filesystem;

fs::path
make_node_artifact(const fs::path& root, const std::string& version)
{
  fs::create_directories(root / "usr/bin");
  fs::create_directories(root / "usr/lib/kiln/node/lib");
  fs::copy_file(KILN_NODE_BIN, root / "usr/bin/kiln-node", fs::copy_options::overwrite_existing);
  fs::permissions(root / "usr/bin/kiln-node", fs::perms(0755));
  write_text(root / "usr/lib/kiln/node/VERSION", version + "\n");
  write_text(root / "usr/lib/kiln/node/lib/libnode.so.1", "not really a library: " + version + "\n");
  fs::permissions(root / "usr/lib/kiln/node/lib/libnode.so.1", fs::perms(0755));
  fs::remove(root / "usr/lib/kiln/node/lib/libnode.so");
  fs::create_symlink("libnode.so.1", root / "usr/lib/kiln/node/lib/libnode.so");
  return root;
}

} // namespace kiln::test
