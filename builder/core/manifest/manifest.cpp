#include "core/manifest/manifest.hpp"

#include "core/crypto/sha256.hpp"
#include "core/util/error.hpp"
#include "core/util/fs.hpp"

#include <algorithm>
#include <cerrno>
#include <set>
#include <sys/stat.h>

namespace kiln::manifest {

namespace {

using nlohmann::json;

// nlohmann's messages start with "[json.exception.KIND.N] "; keep the readable part.
std::string
json_message(const json::exception& e)
{
  std::string text = e.what();
  if (!text.empty() && text.front() == '[') {
    std::size_t end = text.find("] ");
    if (end != std::string::npos) {
      text.erase(0, end + 2);
    }
  }
  return text;
}

bool
valid_file_name(const std::string& name)
{
  return !name.empty() && name != "." && name != ".." && name.find('/') == std::string::npos &&
         name.find('\0') == std::string::npos;
}

bool
valid_role(const std::string& role)
{
  return !role.empty() && std::all_of(role.begin(), role.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
  });
}

class Checker {
public:
  explicit Checker(const std::string& subject) : m_subject(subject) {}

  void require(bool ok, const std::string& where, const std::string& what) const
  {
    if (!ok) {
      throw Error(m_subject, where + ": " + what);
    }
  }
  void non_empty(const std::string& value, const std::string& where) const
  {
    require(!value.empty(), where, "must not be empty");
  }
  void digest(const std::string& value, const std::string& where, bool optional = false) const
  {
    require((optional && value.empty()) || crypto::is_sha256_hex(value), where,
            "not a sha256 digest (64 lower-case hex digits): '" + value + "'");
  }

private:
  const std::string& m_subject;
};

// Typed access to a JSON object's fields with errors that name the field.
class Reader {
public:
  Reader(const json& object, std::string where, const std::string& subject)
    : m_object(object), m_where(std::move(where)), m_subject(subject)
  {
    if (!m_object.is_object()) {
      throw Error(m_subject, m_where + ": expected an object");
    }
  }

  const json& field(const char* key) const
  {
    auto it = m_object.find(key);
    if (it == m_object.end()) {
      throw Error(m_subject, path(key) + ": missing");
    }
    return *it;
  }
  std::string string(const char* key) const
  {
    const json& value = field(key);
    if (!value.is_string()) {
      throw Error(m_subject, path(key) + ": expected a string");
    }
    return value.get<std::string>();
  }
  std::uint64_t unsigned_number(const char* key) const
  {
    const json& value = field(key);
    // A parsed non-negative number is unsigned; one built in memory may be signed.
    if (!value.is_number_integer() || (!value.is_number_unsigned() && value.get<std::int64_t>() < 0)) {
      throw Error(m_subject, path(key) + ": expected a non-negative integer");
    }
    return value.get<std::uint64_t>();
  }
  const json& array(const char* key) const
  {
    const json& value = field(key);
    if (!value.is_array()) {
      throw Error(m_subject, path(key) + ": expected an array");
    }
    return value;
  }
  std::string path(const std::string& key) const { return m_where.empty() ? key : m_where + "." + key; }

private:
  const json& m_object;
  std::string m_where;
  const std::string& m_subject;
};

std::string
item(const char* list, std::size_t index)
{
  return std::string(list) + "[" + std::to_string(index) + "]";
}

void
remove_if_present(const fs::path& path)
{
  std::error_code ec;
  fs::remove(path, ec);
  if (ec && ec != std::errc::no_such_file_or_directory) {
    throw Error(path.string(), "cannot remove stale signature: " + ec.message());
  }
}

} // namespace

fs::path
manifest_path(const fs::path& dir, const std::string& name)
{
  return dir / (name + ".manifest.json");
}

fs::path
signature_path(const fs::path& manifest)
{
  return fs::path(manifest.string() + ".sig");
}

fs::path
raw_signature_path(const fs::path& manifest)
{
  return fs::path(manifest.string() + ".sig.bin");
}

File
describe_file(const fs::path& path, std::string role, std::string format)
{
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    throw Error(path.string(), errno_text(errno));
  }
  if (!S_ISREG(st.st_mode)) {
    throw Error(path.string(), "not a regular file");
  }
  return File{path.filename().string(), std::move(role), std::move(format), crypto::sha256_file(path),
              static_cast<std::uint64_t>(st.st_size)};
}

bool
valid_image_name(std::string_view name)
{
  if (name.empty() || name.size() > k_max_image_name || name == "." || name == "..") {
    return false;
  }
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
           c == '-';
  });
}

std::string
image_name_problem(std::string_view name)
{
  // Quoted only when short and printable without spaces: never a line of something else.
  bool quotable = name.size() <= k_max_image_name &&
                  std::all_of(name.begin(), name.end(), [](char c) { return c > ' ' && c < 0x7f; });
  std::string shown = quotable ? "'" + std::string(name) + "'" : std::to_string(name.size()) + " characters";
  return "must be 1-" + std::to_string(k_max_image_name) +
         " characters of A-Z a-z 0-9 . _ - (not '.' or '..'): " + shown;
}

void
validate(const Manifest& m, const std::string& subject)
{
  Checker check(subject);
  check.require(valid_image_name(m.name), "name", image_name_problem(m.name));
  check.non_empty(m.kiln_version, "kiln_version");
  check.non_empty(m.recipe_name, "recipe.name");
  check.digest(m.recipe_digest, "recipe.digest");
  for (std::size_t i = 0; i < m.inputs.size(); ++i) {
    check.non_empty(m.inputs[i].kind, item("inputs", i) + ".kind");
    check.non_empty(m.inputs[i].source, item("inputs", i) + ".source");
    check.digest(m.inputs[i].sha256, item("inputs", i) + ".sha256", true);
  }
  for (std::size_t i = 0; i < m.stages.size(); ++i) {
    check.non_empty(m.stages[i].name, item("stages", i) + ".name");
    check.digest(m.stages[i].key, item("stages", i) + ".key");
  }
  std::set<std::string> names;
  for (std::size_t i = 0; i < m.files.size(); ++i) {
    const File& f = m.files[i];
    std::string where = item("files", i);
    check.require(valid_file_name(f.name), where + ".name",
                  "must be a file name relative to the manifest's directory (no '/', not '.' or '..'): '" + f.name +
                    "'");
    check.require(names.insert(f.name).second, where + ".name", "listed twice: '" + f.name + "'");
    check.require(valid_role(f.role), where + ".role",
                  "must be a lower-case word (image, bmap, kernel, ...): '" + f.role + "'");
    check.non_empty(f.format, where + ".format");
    check.digest(f.sha256, where + ".sha256");
  }
  for (std::size_t i = 0; i < m.packages.size(); ++i) {
    check.non_empty(m.packages[i].name, item("packages", i) + ".name");
    check.non_empty(m.packages[i].version, item("packages", i) + ".version");
    check.non_empty(m.packages[i].arch, item("packages", i) + ".arch");
  }
  check.require(m.sbom.is_null() || m.sbom.is_object(), "sbom", "must be an object (an SPDX document)");
}

nlohmann::json
to_json(const Manifest& m)
{
  json j = json::object();
  j["kiln_manifest"] = k_manifest_format;
  j["name"] = m.name;
  if (m.version != 0) {
    j["version"] = m.version;
  }
  j["kiln_version"] = m.kiln_version;
  j["libguestfs_version"] = m.libguestfs_version;
  j["recipe"] = {{"name", m.recipe_name}, {"digest", m.recipe_digest}};
  j["inputs"] = json::array();
  for (const auto& in : m.inputs) {
    j["inputs"].push_back({{"kind", in.kind}, {"source", in.source}, {"sha256", in.sha256}});
  }
  j["stages"] = json::array();
  for (const auto& s : m.stages) {
    j["stages"].push_back({{"name", s.name}, {"key", s.key}});
  }
  j["files"] = json::array();
  for (const auto& f : m.files) {
    j["files"].push_back(
      {{"name", f.name}, {"role", f.role}, {"format", f.format}, {"sha256", f.sha256}, {"size", f.size}});
  }
  j["packages"] = json::array();
  for (const auto& p : m.packages) {
    j["packages"].push_back({{"name", p.name}, {"version", p.version}, {"arch", p.arch}});
  }
  if (!m.sbom.is_null()) {
    j["sbom"] = m.sbom;
  }
  return j;
}

Manifest
from_json(const nlohmann::json& j, const std::string& subject)
{
  if (!j.is_object() || !j.contains("kiln_manifest")) {
    throw Error(subject, "not a kiln manifest (no kiln_manifest field)");
  }
  Reader top(j, "", subject);
  const json& format = top.field("kiln_manifest");
  if (!format.is_number_integer() || format.get<std::int64_t>() <= 0) {
    throw Error(subject, "kiln_manifest: expected a format number");
  }
  if (format.get<std::int64_t>() != k_manifest_format) {
    throw Error(subject, "manifest format " + format.dump() + " is not supported by this kiln (it reads format " +
                           std::to_string(k_manifest_format) + ")");
  }
  Manifest m;
  m.name = top.string("name");
  m.version = j.contains("version") ? top.unsigned_number("version") : 0;
  m.kiln_version = top.string("kiln_version");
  m.libguestfs_version = top.string("libguestfs_version");
  Reader recipe(top.field("recipe"), "recipe", subject);
  m.recipe_name = recipe.string("name");
  m.recipe_digest = recipe.string("digest");
  const json& inputs = top.array("inputs");
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    Reader r(inputs[i], item("inputs", i), subject);
    m.inputs.push_back({r.string("kind"), r.string("source"), r.string("sha256")});
  }
  const json& stages = top.array("stages");
  for (std::size_t i = 0; i < stages.size(); ++i) {
    Reader r(stages[i], item("stages", i), subject);
    m.stages.push_back({r.string("name"), r.string("key")});
  }
  const json& files = top.array("files");
  for (std::size_t i = 0; i < files.size(); ++i) {
    Reader r(files[i], item("files", i), subject);
    m.files.push_back(
      {r.string("name"), r.string("role"), r.string("format"), r.string("sha256"), r.unsigned_number("size")});
  }
  const json& packages = top.array("packages");
  for (std::size_t i = 0; i < packages.size(); ++i) {
    Reader r(packages[i], item("packages", i), subject);
    m.packages.push_back({r.string("name"), r.string("version"), r.string("arch")});
  }
  if (auto it = j.find("sbom"); it != j.end()) {
    m.sbom = *it;
  }
  validate(m, subject);
  return m;
}

std::string
canonical_text(const nlohmann::json& j)
{
  try {
    // nlohmann's object type is a std::map: keys are always sorted.
    return j.dump(2, ' ', false, json::error_handler_t::strict) + "\n";
  } catch (const json::exception& e) {
    throw Error("json", json_message(e));
  }
}

namespace {

// Signed bytes must be the one spelling kiln writes: a duplicate key, other spacing or
// escapes would let the signed text mean something other than what a reader sees.
void
require_canonical(std::string_view text, const json& j, const std::string& subject)
{
  if (canonical_text(j) != text) {
    throw Error(subject, "not in canonical form (duplicate keys, or spacing, order or escapes kiln does not "
                         "write); refusing it");
  }
}

// A signed manifest that lists nothing proves nothing about the files beside it.
void
require_files(const Manifest& m, const std::string& subject)
{
  if (m.files.empty()) {
    throw Error(subject, "lists no file: nothing to verify");
  }
}

} // namespace

Manifest
parse_manifest(std::string_view text, const std::string& subject)
{
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {
    throw Error(subject, "not valid JSON: " + json_message(e));
  }
  require_canonical(text, j, subject);
  return from_json(j, subject);
}

Manifest
read_manifest(const fs::path& path)
{
  return parse_manifest(util::read_file(path), path.string());
}

void
write_manifest(const fs::path& path, const Manifest& manifest)
{
  validate(manifest, path.string());
  std::string text = canonical_text(to_json(manifest));
  // Drop an earlier signature first: a stale one beside the new manifest would read
  // as tampering, while a missing one reads (correctly) as "not signed".
  remove_if_present(signature_path(path));
  remove_if_present(raw_signature_path(path));
  util::write_file_atomic(path, text);
}

std::string
sign_manifest(const fs::path& path, const crypto::PrivateKey& key)
{
  std::string text = util::read_file(path);
  parse_manifest(text, path.string()); // never sign something that is not a manifest
  std::string signature = crypto::sign(text, key);
  std::string id = crypto::key_id(key.public_key());
  json sig = {{"algorithm", "ed25519"}, {"key_id", id}, {"signature", crypto::base64_encode(signature)}};
  util::write_file_atomic(raw_signature_path(path), signature);
  util::write_file_atomic(signature_path(path), canonical_text(sig));
  return id;
}

std::optional<crypto::Signature>
read_signature(const fs::path& manifest)
{
  using crypto::Refusal;
  using crypto::VerificationError;
  fs::path path = signature_path(manifest);
  std::error_code ec;
  if (!fs::exists(fs::symlink_status(path, ec))) {
    return std::nullopt;
  }
  std::string subject = path.string();
  json j;
  try {
    j = json::parse(util::read_file(path));
  } catch (const json::exception& e) {
    throw VerificationError(Refusal::bad_signature, subject, "malformed signature file: " + json_message(e));
  }
  auto text_field = [&](const char* key) {
    if (!j.is_object() || !j.contains(key) || !j[key].is_string()) {
      throw VerificationError(Refusal::bad_signature, subject,
                              std::string("malformed signature file: no string field '") + key + "'");
    }
    return j[key].get<std::string>();
  };
  std::string algorithm = text_field("algorithm");
  if (algorithm != "ed25519") {
    throw VerificationError(Refusal::bad_signature, subject,
                            "unsupported signature algorithm '" + algorithm + "' (kiln signs with ed25519)");
  }
  crypto::Signature sig;
  sig.key_id = text_field("key_id");
  if (!crypto::is_sha256_hex(sig.key_id)) {
    throw VerificationError(Refusal::bad_signature, subject, "malformed signature file: key_id is not a key id");
  }
  auto bytes = crypto::base64_decode(text_field("signature"));
  if (!bytes || bytes->size() != crypto::k_ed25519_signature_size) {
    throw VerificationError(Refusal::bad_signature, subject,
                            "malformed signature file: signature is not 64 bytes in base64");
  }
  sig.bytes = std::move(*bytes);
  return sig;
}

Verified
verify_manifest(const fs::path& path, const crypto::TrustStore& trust)
{
  using crypto::Refusal;
  using crypto::VerificationError;
  std::string text = util::read_file(path);
  std::optional<crypto::Signature> sig = read_signature(path);
  if (!sig) {
    throw VerificationError(Refusal::not_signed, path.string(),
                            "not signed: no signature file " + signature_path(path).filename().string());
  }
  Verified result;
  result.key_id = trust.verify(path.string(), text, sig);
  result.manifest = parse_manifest(text, path.string());
  require_files(result.manifest, path.string());
  fs::path dir = path.parent_path(); // empty for a bare name: files are then relative to "."
  std::string listed = "listed in " + path.filename().string();
  // Existence and sizes first (cheap), then the digests of possibly large images.
  for (const auto& f : result.manifest.files) {
    fs::path file = dir / f.name;
    struct stat st {};
    if (::stat(file.c_str(), &st) != 0) {
      int err = errno;
      if (err == ENOENT) {
        throw VerificationError(Refusal::file_missing, file.string(), "missing (" + listed + ")");
      }
      throw Error(file.string(), errno_text(err));
    }
    if (!S_ISREG(st.st_mode)) {
      throw VerificationError(Refusal::file_missing, file.string(), "not a regular file (" + listed + ")");
    }
    if (static_cast<std::uint64_t>(st.st_size) != f.size) {
      throw VerificationError(Refusal::file_size, file.string(),
                              "size " + std::to_string(st.st_size) + " bytes, but " + path.filename().string() +
                                " lists " + std::to_string(f.size) + "; modified after signing?");
    }
  }
  for (const auto& f : result.manifest.files) {
    fs::path file = dir / f.name;
    std::string digest = crypto::sha256_file(file);
    if (digest != f.sha256) {
      throw VerificationError(Refusal::file_digest, file.string(),
                              "sha256 " + digest + ", but " + path.filename().string() + " lists " + f.sha256 +
                                "; modified after signing?");
    }
  }
  return result;
}

} // namespace kiln::manifest
