#include "core/dcos/bundle.hpp"

#include "core/archive/error.hpp"
#include "core/archive/handles.hpp"
#include "core/crypto/sha256.hpp"
#include "core/util/error.hpp"
#include "core/util/fs.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <memory>
#include <regex>
#include <sstream>

namespace kiln::dcos {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// Ids are hex hashes in practice; accept what could be a file name component.
bool
valid_id(const std::string& id)
{
  static const std::regex re("[A-Za-z0-9][A-Za-z0-9_.+-]*");
  return std::regex_match(id, re) && id.find("..") == std::string::npos;
}

std::string
trim(const std::string& s)
{
  auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) {
    return "";
  }
  auto e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

// The value a script line gives a setup flag: `echo -n 'V' > FLAG`, `printf V > FLAG`,
// or a heredoc (`cat <<'EOF' > FLAG`, value on the next non-empty line).
std::string
flag_value(const std::vector<std::string>& lines, const std::string& flag)
{
  for (size_t i = 0; i < lines.size(); ++i) {
    const std::string& line = lines[i];
    if (line.find("setup-flags/" + flag) == std::string::npos) {
      continue;
    }
    if (line.find("<<") != std::string::npos) {
      for (size_t j = i + 1; j < lines.size(); ++j) {
        std::string v = trim(lines[j]);
        if (!v.empty()) {
          return v;
        }
      }
      return "";
    }
    static const std::regex echo(R"((?:echo|printf)(?:\s+-n)?\s+(['"]?)([^'"\s>]+)\1\s*>)");
    std::smatch m;
    if (std::regex_search(line, m, echo)) {
      return m[2].str();
    }
  }
  return "";
}

void
require_file(const fs::path& dir, const std::string& label, const std::string& rel, const std::string& why)
{
  std::error_code ec;
  if (!fs::is_regular_file(dir / rel, ec)) {
    throw Error(label + "/" + rel, "missing (" + why + ")");
  }
}

} // namespace

bool
is_url(const std::string& bundle)
{
  return bundle.rfind("http://", 0) == 0 || bundle.rfind("https://", 0) == 0;
}

std::string
package_path(const std::string& id, const std::string& subject)
{
  auto sep = id.find("--");
  if (sep == std::string::npos || sep == 0 || sep + 2 >= id.size() || !valid_id(id)) {
    throw Error(subject, "'" + id + "' is not a package id (NAME--VERSION)");
  }
  return "packages/" + id.substr(0, sep) + "/" + id + ".tar.xz";
}

std::string
bootstrap_path(const std::string& bootstrap_id)
{
  return "bootstrap/" + bootstrap_id + ".bootstrap.tar.xz";
}

std::string
package_list_path(const std::string& package_list_id)
{
  return "package_lists/" + package_list_id + ".package_list.json";
}

std::string
parse_id(const std::string& text, const std::string& subject)
{
  std::string id = trim(text);
  if (id.empty()) {
    throw Error(subject, "empty: it should hold one id");
  }
  if (!valid_id(id)) {
    throw Error(subject, "'" + id.substr(0, 80) + "' is not an id");
  }
  return id;
}

std::vector<std::string>
parse_package_list(const std::string& text, const std::string& subject)
{
  json doc;
  try {
    doc = json::parse(text);
  } catch (const json::exception& e) {
    throw Error(subject, std::string("not valid JSON: ") + e.what());
  }
  if (!doc.is_array()) {
    throw Error(subject, "not a JSON array of package ids");
  }
  std::vector<std::string> ids;
  for (const auto& item : doc) {
    if (!item.is_string()) {
      throw Error(subject, "not a JSON array of package ids (found " + item.dump() + ")");
    }
    ids.push_back(item.get<std::string>());
    package_path(ids.back(), subject);
  }
  if (ids.empty()) {
    throw Error(subject, "the package list is empty");
  }
  return ids;
}

InstallScript
parse_install_script(const std::string& text)
{
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    lines.push_back(line);
  }
  InstallScript s;
  s.bootstrap_url = flag_value(lines, "repository-url");
  s.package_list_id = flag_value(lines, "cluster-package-list");
  static const std::regex tarball(R"(([A-Za-z]+://[^\s'"]*?)/bootstrap/([A-Za-z0-9_.+-]+)\.bootstrap\.tar\.xz)");
  std::smatch m;
  if (std::regex_search(text, m, tarball)) {
    s.bootstrap_id = m[2].str();
    if (s.bootstrap_url.empty()) {
      s.bootstrap_url = m[1].str();
    }
  }
  return s;
}

std::string
regenerate_hint()
{
  return "regenerate the bundle for an offline install: set 'bootstrap_url: " + std::string(k_offline_bootstrap_url) +
         "' in genconf/config.yaml and rerun 'dcos_generate_config.sh --genconf'";
}

void
check_tar_xz(const fs::path& file, const std::string& subject)
{
  archive::ReadHandle a(archive_read_new());
  archive_read_support_filter_xz(a.get());
  archive_read_support_format_tar(a.get());
  if (archive_read_open_filename(a.get(), file.c_str(), 1 << 16) != ARCHIVE_OK) {
    throw Error(subject, "not a readable tar.xz: " + archive::error_message(a.get(), "unknown format"));
  }
  std::vector<char> buf(1 << 16);
  archive_entry* entry = nullptr;
  int rc = ARCHIVE_OK;
  while ((rc = archive_read_next_header(a.get(), &entry)) == ARCHIVE_OK || rc == ARCHIVE_WARN) {
    la_ssize_t n = 0;
    while ((n = archive_read_data(a.get(), buf.data(), buf.size())) > 0) {
    }
    if (n < 0) {
      rc = static_cast<int>(n);
      break;
    }
  }
  if (rc != ARCHIVE_EOF) {
    throw Error(subject, "not a readable tar.xz: " + archive::error_message(a.get(), "read error"));
  }
  if (archive_filter_code(a.get(), 0) != ARCHIVE_FILTER_XZ) {
    throw Error(subject, "not xz-compressed (the installer extracts packages as tar.xz)");
  }
}

Bundle
describe_bundle(const fs::path& dir, const std::string& label)
{
  Bundle b;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    throw Error(label, "not a directory (the bundle is the genconf/serve tree of dcos_generate_config.sh)");
  }
  for (const char* index : {"bootstrap.latest", "cluster-package-list.latest"}) {
    require_file(dir, label, index, "is this a genconf/serve tree?");
  }
  b.bootstrap_id = parse_id(util::read_file(dir / "bootstrap.latest"), label + "/bootstrap.latest");
  b.package_list_id =
    parse_id(util::read_file(dir / "cluster-package-list.latest"), label + "/cluster-package-list.latest");
  const std::string boot = bootstrap_path(b.bootstrap_id);
  const std::string list = package_list_path(b.package_list_id);
  require_file(dir, label, boot, "bootstrap.latest names bootstrap id " + b.bootstrap_id);
  require_file(dir, label, list, "cluster-package-list.latest names list id " + b.package_list_id);
  b.packages = parse_package_list(util::read_file(dir / list), label + "/" + list);

  // dcos_install.sh: the node must read everything from the staged copy.
  require_file(dir, label, "dcos_install.sh", "the installer every node runs");
  InstallScript script = parse_install_script(util::read_file(dir / "dcos_install.sh"));
  const std::string script_subject = label + "/dcos_install.sh";
  if (script.bootstrap_url.empty()) {
    throw Error(script_subject, "cannot find its bootstrap_url (setup-flags/repository-url); " + regenerate_hint());
  }
  if (script.bootstrap_url != k_offline_bootstrap_url) {
    throw Error(script_subject, "generated with bootstrap_url " + script.bootstrap_url +
                                  ", so a node would download DC/OS from there at first boot; " + regenerate_hint());
  }
  if (!script.bootstrap_id.empty() && script.bootstrap_id != b.bootstrap_id) {
    throw Error(script_subject, "installs bootstrap " + script.bootstrap_id + " but bootstrap.latest names " +
                                  b.bootstrap_id + " (files from different genconf runs)");
  }
  if (!script.package_list_id.empty() && script.package_list_id != b.package_list_id) {
    throw Error(script_subject, "installs package list " + script.package_list_id +
                                  " but cluster-package-list.latest names " + b.package_list_id +
                                  " (files from different genconf runs)");
  }

  std::vector<std::string> files{"dcos_install.sh", boot, list};
  for (const auto& id : b.packages) {
    std::string rel = package_path(id, label + "/" + list);
    require_file(dir, label, rel, "listed in " + list);
    files.push_back(rel);
  }
  std::sort(files.begin(), files.end());
  files.erase(std::unique(files.begin(), files.end()), files.end());
  json digest_src = {{"bootstrap", b.bootstrap_id}, {"package_list", b.package_list_id}, {"files", json::array()}};
  for (const auto& rel : files) {
    BundleFile f{rel, crypto::sha256_file(dir / rel), static_cast<std::uint64_t>(fs::file_size(dir / rel))};
    digest_src["files"].push_back({f.path, f.sha256});
    b.files.push_back(std::move(f));
  }
  b.digest = crypto::sha256_hex(digest_src.dump());
  return b;
}

Bundle
validate_bundle(const fs::path& dir, const std::string& label)
{
  Bundle b = describe_bundle(dir, label);
  for (const auto& f : b.files) {
    if (f.path.ends_with(".tar.xz")) {
      check_tar_xz(dir / f.path, label + "/" + f.path);
    }
  }
  return b;
}

} // namespace kiln::dcos
