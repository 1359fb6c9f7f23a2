#include "test_support.hpp"

#include "image/guestfs/accel_probe.hpp"

#include "core/util/error.hpp"
#include "core/util/fs.hpp"

#include <curl/curl.h>

#include <fstream>
#include <cstdlib>
#include <sstream>
#include <fcntl.h>
#include <unistd.h>

namespace kiln::test {

namespace {
// Every test process remembers kiln's KVM decision where the kiln builds of the tests do
// (KILN_TEST_CACHE/accel), so the probe runs once per build tree, not once per process.
const bool g_accel_state_set = [] {
  gfs::set_accel_state_dir(std::filesystem::path(KILN_TEST_CACHE) / "accel");
  return true;
}();
} // namespace

ScratchDir::ScratchDir()
{
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string name = info ? std::string(info->test_suite_name()) + "." + info->name() : "test";
  for (auto& c : name) {
    if (c == '/') {
      c = '_';
    }
  }
  fs::path base = fs::temp_directory_path() / "kiln-tests";
  fs::create_directories(base);
  std::string templ = (base / (name + ".XXXXXX")).string();
  if (::mkdtemp(templ.data()) == nullptr) {
    throw std::runtime_error("mkdtemp failed");
  }
  m_path = templ;
}

ScratchDir::~ScratchDir()
{
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  // Kept when the test failed, or always with KILN_TEST_KEEP=1 (serial logs of passing
  // boot tests, for timing).
  const char* keep = std::getenv("KILN_TEST_KEEP");
  if ((info != nullptr && info->result()->Failed()) || (keep != nullptr && std::string(keep) == "1")) {
    std::fprintf(stderr, "test data kept in %s\n", m_path.c_str());
    return;
  }
  std::error_code ec;
  fs::remove_all(m_path, ec);
}

void
write_text(const fs::path& path, const std::string& content)
{
  if (path.has_parent_path()) {
    fs::create_directories(path.parent_path());
  }
  std::ofstream out(path, std::ios::binary);
  out << content;
  if (!out) {
    throw std::runtime_error("cannot write " + path.string());
  }
}

std::string
read_text(const fs::path& path)
{
  return util::read_file(path);
}

util::RunResult
run_kiln(const std::vector<std::string>& args, const std::map<std::string, std::string>& env)
{
  std::vector<std::string> argv{KILN_BIN};
  argv.insert(argv.end(), args.begin(), args.end());
  util::RunOptions options;
  options.env = env;
  return util::run(argv, options);
}

util::RunResult
run_kiln_node(const std::vector<std::string>& args, const std::map<std::string, std::string>& env)
{
  // The test build (it reads the KILN_NODE_* hooks). $KILN_NODE_WRAPPER, when set (ctest sets it
  // for the old-kernel run), is a program that runs it: tests/support/old-kernel.
  std::vector<std::string> argv;
  if (const char* wrapper = std::getenv("KILN_NODE_WRAPPER"); wrapper != nullptr && *wrapper != '\0') {
    argv.emplace_back(wrapper);
  }
  argv.emplace_back(KILN_NODE_TEST_BIN);
  argv.insert(argv.end(), args.begin(), args.end());
  util::RunOptions options;
  options.env = env;
  return util::run(argv, options);
}

EnvVar::EnvVar(const char* name, const char* value) : m_name(name)
{
  if (const char* old = std::getenv(name)) {
    m_old = old;
  }
  if (value != nullptr) {
    ::setenv(name, value, 1);
  } else {
    ::unsetenv(name);
  }
}

EnvVar::~EnvVar()
{
  if (m_old) {
    ::setenv(m_name.c_str(), m_old->c_str(), 1);
  } else {
    ::unsetenv(m_name.c_str());
  }
}

std::vector<std::string>
lines(const std::string& text)
{
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    out.push_back(line);
  }
  return out;
}

std::string
require_program(const std::string& program, const std::string& package)
{
  std::string path = util::find_program(program);
  if (path.empty()) {
    ADD_FAILURE() << program << " not found: install " << package << " (ci/packages.txt)";
  }
  return path;
}

fs::path
source_dir()
{
  return KILN_SOURCE_DIR;
}

fs::path
support_dir()
{
  return KILN_TEST_SUPPORT_DIR;
}

HttpServer::HttpServer(const fs::path& root, const std::vector<std::string>& extra_args)
{
  std::vector<std::string> argv{"python3", (support_dir() / "httpd.py").string(), "--root", root.string()};
  argv.insert(argv.end(), extra_args.begin(), extra_args.end());
  if (!extra_args.empty() && extra_args.front() == "--tls-cert") {
    m_scheme = "https";
  }
  util::RunOptions options;
  options.capture_stderr = false;
  m_child = std::make_unique<util::Child>(argv, options);
  auto line = m_child->read_line();
  if (!line || line->rfind("PORT ", 0) != 0) {
    throw std::runtime_error("test HTTP server did not start");
  }
  m_port = std::stoi(line->substr(5));
}

std::string
HttpServer::url(const std::string& path) const
{
  return m_scheme + "://127.0.0.1:" + std::to_string(m_port) + path;
}

namespace {
size_t
collect(char* data, size_t size, size_t count, void* out)
{
  static_cast<std::string*>(out)->append(data, size * count);
  return size * count;
}
} // namespace

nlohmann::json
HttpServer::requests() const
{
  CURL* c = curl_easy_init();
  std::string body;
  std::string u = url("/__log");
  curl_easy_setopt(c, CURLOPT_URL, u.c_str());
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L); // the test server's own self-signed certificate
  CURLcode rc = curl_easy_perform(c);
  curl_easy_cleanup(c);
  if (rc != CURLE_OK) {
    throw std::runtime_error("cannot read the test server's log");
  }
  return nlohmann::json::parse(body);
}

int
HttpServer::count(const std::string& path) const
{
  int n = 0;
  for (const auto& r : requests()) {
    n += r["path"] == path ? 1 : 0;
  }
  return n;
}

bool
o_direct_allowed(const fs::path& dir)
{
  fs::path probe = dir / ".o_direct.probe";
  write_text(probe, "x");
  int fd = ::open(probe.c_str(), O_RDONLY | O_DIRECT | O_CLOEXEC);
  bool ok = fd >= 0;
  if (ok) {
    ::close(fd);
  }
  fs::remove(probe);
  return ok;
}

} // namespace kiln::test
