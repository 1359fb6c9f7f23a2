// The "dcos" stage's staging (image/pipeline/dcos_stage) against the in-memory guest:
// exactly the bundle's files under /opt/dcos_install_tmp, the role, the first-boot script
// and its unit enabled; an image that already has DC/OS is refused before anything is
// written. tests/guestfs/dcos_verify_test.cpp and the boot tests check built images.
#include "core/dcos/firstboot.hpp"
#include "core/recipe/model.hpp"
#include "core/util/error.hpp"
#include "image/pipeline/dcos_stage.hpp"
#include "support/fake_editor.hpp"
#include "support/test_support.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace kiln {
namespace {

struct DcosStage : ::testing::Test {
  test::ScratchDir dir;
  test::FakeEditor g;
  steps::GuestInfo info{"/dev/sda1", "centos", "rpm", "yum", 7, {{"/", "/dev/sda1"}}};
  steps::StepContext ctx{g, info, false, {}, {}};
  recipe::Recipe recipe;

  DcosStage()
  {
    test::write_text(dir / "serve/dcos_install.sh", "#!/bin/bash\necho install\n");
    test::write_text(dir / "serve/bootstrap/0123.bootstrap.tar.xz", "bootstrap");
    test::write_text(dir / "serve/genconf/config.yaml", "cluster_name: t\n");
    nlohmann::json bundle = {{"dir", (dir / "serve").string()},
                             {"files",
                              {{{"path", "dcos_install.sh"}},
                               {{"path", "bootstrap/0123.bootstrap.tar.xz"}},
                               {{"path", "genconf/config.yaml"}}}}};
    test::write_text(dir / "scratch/dcos-bundle.json", bundle.dump());
    recipe.dcos = recipe::DcosSpec{(dir / "serve").string(), dcos::Role::slave, std::nullopt, {}};
    g.add_dir("/etc/systemd/system");
  }
};

TEST_F(DcosStage, StagesTheBundleTheRoleAndTheFirstBootUnit)
{
  g.add_file("/opt/dcos_install_tmp/stale", "from an older bundle");
  build::dcos_stage::run(ctx, recipe, dir / "scratch");
  EXPECT_FALSE(g.exists("/opt/dcos_install_tmp/stale")); // the directory is the bundle's alone
  EXPECT_EQ(g.read_file("/opt/dcos_install_tmp/dcos_install.sh"), "#!/bin/bash\necho install\n");
  EXPECT_EQ(g.node("/opt/dcos_install_tmp/dcos_install.sh")->mode, 0755u);
  EXPECT_EQ(g.read_file("/opt/dcos_install_tmp/bootstrap/0123.bootstrap.tar.xz"), "bootstrap");
  EXPECT_EQ(g.node("/opt/dcos_install_tmp/genconf/config.yaml")->mode, 0644u);
  EXPECT_EQ(g.read_file("/etc/kiln/dcos-role"), "slave\n");
  EXPECT_EQ(g.read_file(dcos::k_firstboot_script), dcos::firstboot_script(dcos::Role::slave));
  EXPECT_EQ(g.node(dcos::k_firstboot_script)->mode, 0755u);
  EXPECT_EQ(g.read_file("/etc/systemd/system/kiln-dcos-install.service"), dcos::firstboot_unit());
  EXPECT_EQ(g.readlink("/etc/systemd/system/multi-user.target.wants/kiln-dcos-install.service"),
            "/etc/systemd/system/kiln-dcos-install.service");
  EXPECT_TRUE(g.is_dir("/var/log/kiln"));
  EXPECT_TRUE(g.is_dir("/var/lib/kiln"));
}

TEST_F(DcosStage, AnImageWithDcosOnItIsRefusedBeforeAnythingIsWritten)
{
  g.add_dir("/etc/mesosphere");
  auto before = g.paths();
  Error e = test::error_of([&] { build::dcos_stage::run(ctx, recipe, dir / "scratch"); });
  EXPECT_EQ(std::string(e.what()),
            "dcos stage: the image already has /etc/mesosphere (a DC/OS install); the installer would refuse it");
  EXPECT_EQ(g.paths(), before);
}

} // namespace
} // namespace kiln
