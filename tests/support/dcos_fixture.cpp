#include "support/dcos_fixture.hpp"

#include "core/crypto/sha256.hpp"
#include "core/util/error.hpp"
#include "core/util/process.hpp"
#include "support/test_support.hpp"

#include <nlohmann/json.hpp>

namespace kiln::test {

namespace {

void
make_tar_xz(const fs::path& out, const std::string& member, const std::string& content)
{
  fs::path src = out.parent_path() / (".src-" + out.filename().string());
  write_text(src / member, content);
  fs::create_directories(out.parent_path());
  // Members sorted, owned 0:0, one time: the same bytes in every run (README, "Reproducible
  // builds": the test fixtures are inputs like any other).
  util::run_checked({"tar", "-C", src.string(), "--sort=name", "--mtime=@1700000000", "--owner=0", "--group=0",
                     "--numeric-owner", "--format=gnu", "-cJf", out.string(), "."});
  fs::remove_all(src);
}

std::string
stand_in_script(const ServeTree& t, const ServeTreeOptions& o)
{
  return "#!/bin/bash\n"
         "# kiln test stand-in for a generated dcos_install.sh: records, does not install.\n"
         "# What a generated script says about itself (never run here):\n"
         "configure_dcos() {\n"
         "mkdir -p /etc/mesosphere/setup-flags\n"
         "cat <<'EOF' > \"/etc/mesosphere/setup-flags/repository-url\"\n" +
         o.bootstrap_url +
         "\nEOF\n"
         "cat <<'EOF' > \"/etc/mesosphere/setup-flags/cluster-package-list\"\n" +
         t.package_list_id +
         "\nEOF\n"
         "}\n"
         "# dcos-download.service: ExecStartPre=/usr/bin/curl -fLsSv --retry 20 " +
         o.bootstrap_url + "/bootstrap/" + t.bootstrap_id +
         ".bootstrap.tar.xz -o /tmp/bootstrap.tar.xz\n"
         "record=\"${KILN_ROOT:-}" +
         std::string(k_install_record) +
         "\"\n"
         "mkdir -p \"$(dirname \"$record\")\"\n"
         "{\n"
         "  echo \"args: $*\"\n"
         "  echo \"pwd: $PWD\"\n"
         "  echo \"uid: $(id -u)\"\n"
         "  env | sort | sed 's/^/env: /'\n"
         "} > \"$record\"\n"
         "echo \"stand-in dcos_install.sh: $*\"\n" +
         (o.exit_status != 0 ? "exit " + std::to_string(o.exit_status) + "\n" : std::string()) +
         // What the real script does after preflight (dcos/dcos gen/dcos-services.yaml, in
         // order): restart journald, then enable dcos-setup and start it, --no-block when
         // asked. Only ever against the fake systemd (tests/support/fake-systemd).
         "case \"$(command -v systemctl)\" in\n"
         "  */fake-systemd/systemctl) ;;\n"
         "  *) echo 'stand-in dcos_install.sh: refusing to drive a real systemctl' >&2; exit 97 ;;\n"
         "esac\n"
         "set -e\n"
         "no_block=0\n"
         "for a in \"$@\"; do [ \"$a\" = --no-block-dcos-setup ] && no_block=1; done\n"
         "systemctl restart systemd-journald\n"
         "echo 'stand-in dcos_install.sh: after the journald restart'\n"
         "systemctl enable dcos-setup\n"
         "if [ \"$no_block\" = 1 ]; then\n"
         "  systemctl start dcos-setup --no-block\n"
         "else\n"
         "  systemctl start dcos-setup\n"
         "fi\n"
         "echo 'stand-in dcos_install.sh: done'\n";
}

} // namespace

ServeTree
make_serve_tree(const fs::path& dir, const ServeTreeOptions& o)
{
  ServeTree t;
  t.dir = dir;
  fs::create_directories(dir);
  t.bootstrap_id = crypto::sha256_hex("bootstrap" + o.salt).substr(0, 40);
  for (const auto& p : o.packages) {
    t.packages.push_back(o.salt.empty() ? p : p + o.salt);
  }
  nlohmann::json list = t.packages;
  t.package_list_id = crypto::sha256_hex(list.dump()).substr(0, 40);

  write_text(dir / "bootstrap.latest", t.bootstrap_id + "\n");
  write_text(dir / "cluster-package-list.latest", t.package_list_id + "\n");
  make_tar_xz(dir / ("bootstrap/" + t.bootstrap_id + ".bootstrap.tar.xz"), "bootstrap",
              "bootstrap " + t.bootstrap_id + "\n");
  write_text(dir / ("bootstrap/" + t.bootstrap_id + ".active.json"), "[]\n");
  write_text(dir / ("package_lists/" + t.package_list_id + ".package_list.json"), list.dump() + "\n");
  nlohmann::json info = nlohmann::json::object();
  for (const auto& id : t.packages) {
    std::string name = id.substr(0, id.find("--"));
    make_tar_xz(dir / ("packages/" + name + "/" + id + ".tar.xz"), "pkginfo.json", "{\"id\": \"" + id + "\"}\n");
    info[name] = {{"id", id}, {"filename", "packages/" + name + "/" + id + ".tar.xz"}};
  }
  write_text(dir / "cluster-package-info.json", info.dump(2) + "\n");
  write_text(dir / "dcos_install.sh", stand_in_script(t, o));
  fs::permissions(dir / "dcos_install.sh", fs::perms::owner_exec | fs::perms::group_exec | fs::perms::others_exec,
                  fs::perm_options::add);
  return t;
}

std::vector<std::string>
failed_checks(const std::vector<dcos::CheckResult>& results)
{
  std::vector<std::string> out;
  for (const auto& r : results) {
    if (!r.pass) {
      out.push_back(r.name);
    }
  }
  return out;
}

std::string
check_lines(const std::vector<dcos::CheckResult>& results)
{
  std::string s;
  for (const auto& r : results) {
    s += dcos::format_line(r) + "\n";
  }
  return s;
}

} // namespace kiln::test
