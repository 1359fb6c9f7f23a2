#include "support/rpm_repo.hpp"

#include "core/util/process.hpp"
#include "support/test_support.hpp"

namespace kiln::test {

namespace fs = std::filesystem;

fs::path
build_rpm(const fs::path& top, const std::string& name, const std::string& version)
{
  const fs::path spec = top / "SPECS" / (name + ".spec");
  write_text(spec, "Name: " + name + "\nVersion: " + version +
                     "\nRelease: 1\nSummary: kiln test package\n"
                     "License: MIT\nBuildArch: noarch\nAutoReqProv: no\n"
                     "%description\nkiln test package\n"
                     "%install\nmkdir -p %{buildroot}/usr/share/" +
                     name + "\necho " + name + "-" + version + " > %{buildroot}/usr/share/" + name +
                     "/version\n%files\n/usr/share/" + name + "/version\n");
  util::run_checked({"env", "SOURCE_DATE_EPOCH=" + std::to_string(k_rpm_fixture_epoch),
                     require_program("rpmbuild", "rpm"), "--quiet", "--define", "_topdir " + top.string(), "--define",
                     "use_source_date_epoch_as_buildtime 1", "--define", "clamp_mtime_to_source_date_epoch 1",
                     "--define", "_buildhost kiln-tests", "-bb", spec.string()});
  return top / "RPMS/noarch" / (name + "-" + version + "-1.noarch.rpm");
}

void
publish_rpm_repo(const fs::path& repo)
{
  for (const auto& e : fs::directory_iterator(repo)) {
    if (e.path().extension() == ".rpm") {
      util::run_checked({"touch", "-d", "@" + std::to_string(k_rpm_fixture_epoch), e.path().string()});
    }
  }
  util::run_checked({require_program("createrepo_c", "createrepo-c"), "--quiet", "--revision",
                     std::to_string(k_rpm_fixture_epoch), "--set-timestamp-to-revision", repo.string()});
}

} // namespace kiln::test
