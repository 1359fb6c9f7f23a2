// The yum/dnf path of the packages step, for real, without a CentOS mirror: tiny RPMs
// built with rpmbuild, published with createrepo_c, installed into a Debian fixture image
// that has dnf, by the same run_step code the CentOS recipes use (a file:// repository
// staged into the image, and the files: list), then asked for with rpm -q in the image.
#include "core/recipe/model.hpp"
#include "image/guestfs/guestfs.hpp"
#include "image/guestfs/guestfs_editor.hpp"
#include "image/steps/steps.hpp"
#include "support/rpm_repo.hpp"
#include "support/test_support.hpp"

#include <gtest/gtest.h>

namespace kiln {
namespace {

namespace fs = std::filesystem;

const fs::path k_cache = KILN_TEST_CACHE;

TEST(RpmPath, PackagesStepInstallsFromALocalRepoAndFilesWithDnf)
{
  test::ScratchDir dir;
  fs::path repo = dir / "repo";
  fs::create_directories(repo);
  fs::copy_file(test::build_rpm(dir / "rpmbuild", "kiln-hello", "1.0"), repo / "kiln-hello-1.0-1.noarch.rpm");
  fs::path loose = test::build_rpm(dir / "rpmbuild", "kiln-loose", "2.1");
  test::publish_rpm_repo(repo);
  ASSERT_TRUE(fs::exists(repo / "repodata/repomd.xml"));

  // The fixture image: Debian with dnf, built by kiln (its base is cached in KILN_TEST_CACHE).
  test::write_text(dir / "recipe.yaml",
                   "name: rpmfix\n"
                   "base:\n  bootstrap:\n    suite: bookworm\n    variant: minbase\n"
                   "    packages: [systemd, dnf, rpm]\n" // dnf needs librpm only; rpm -q needs the CLI
                   "size: 1G\n"
                   "stages:\n  - name: s\n    steps:\n"
                   "      - file: {path: /etc/kiln/rpmfix, content: x}\n");
  util::RunResult b = test::run_kiln(
    {"build", (dir / "recipe.yaml").string(), "-o", (dir / "out").string(), "--cache", k_cache.string()});
  ASSERT_EQ(b.exit_code, 0) << b.err;

  fs::path work = dir / "work.qcow2";
  util::run_checked({"qemu-img", "create", "-q", "-f", "qcow2", "-b", (dir / "out/rpmfix.qcow2").string(), "-F",
                     "qcow2", work.string()});
  gfs::Handle g;
  g.add_drive(work.string(), "qcow2");
  g.launch();
  std::vector<std::string> roots = g.inspect_os();
  ASSERT_EQ(roots.size(), 1u);
  g.mount_os(roots.front());
  // Stage the repository into the image (as a recipe's overlay or file steps would).
  g.mkdir_p("/srv/kiln-repo/repodata");
  for (const auto& e : fs::recursive_directory_iterator(repo)) {
    std::string rel = fs::relative(e.path(), repo).string();
    if (e.is_directory()) {
      g.mkdir_p("/srv/kiln-repo/" + rel);
    } else {
      g.upload(e.path().string(), "/srv/kiln-repo/" + rel);
    }
  }
  // The guest as the CentOS recipes see theirs: an rpm system managed by dnf.
  steps::GuestInfo guest{roots.front(), "centos", "rpm", "dnf", 7, g.inspect_mountpoints(roots.front())};
  gfs::GuestfsEditor editor(g);
  steps::StepContext ctx{editor, guest, false, {}, {}};
  recipe::PackagesStep from_repo;
  from_repo.repos.push_back({"kiln-local", "file:///srv/kiln-repo", false, std::nullopt});
  from_repo.install = {"kiln-hello"};
  steps::run_step(ctx, {"packages", from_repo, {}});
  recipe::PackagesStep from_files;
  from_files.files = {loose.string()};
  steps::run_step(ctx, {"packages", from_files, {}});

  gfs::CommandResult q = g.sh("rpm -q --qf '%{NAME}-%{VERSION}-%{RELEASE}\\n' kiln-hello kiln-loose");
  EXPECT_EQ(q.exit_code, 0) << q.out << q.err;
  EXPECT_EQ(q.out, "kiln-hello-1.0-1\nkiln-loose-2.1-1\n");
  EXPECT_EQ(g.read_file("/usr/share/kiln-hello/version"), "kiln-hello-1.0\n");
  EXPECT_NE(g.read_file("/etc/yum.repos.d/kiln-local.repo").find("baseurl=file:///srv/kiln-repo\n"), std::string::npos);
  EXPECT_FALSE(g.exists("/var/tmp/kiln-packages"));

  // A package that is nowhere: the step fails naming the package manager.
  recipe::PackagesStep missing;
  missing.repos = from_repo.repos;
  missing.install = {"kiln-absent"};
  Error e = test::error_of([&] { steps::run_step(ctx, {"packages", missing, {}}); });
  EXPECT_NE(std::string(e.what()).find("dnf failed"), std::string::npos) << e.what();
  g.umount_all();
  g.shutdown();
}

} // namespace
} // namespace kiln
