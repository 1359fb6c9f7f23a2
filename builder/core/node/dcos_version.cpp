#include "core/node/dcos_version.hpp"

#include "core/node/under_root.hpp"
#include "core/slots/abi.hpp"
#include "core/util/error.hpp"
#include "core/util/fs.hpp"

#include <nlohmann/json.hpp>

#include <cctype>

namespace kiln::node {

std::optional<std::string>
read_dcos_version(const std::filesystem::path& root)
{
  std::filesystem::path file = under(root, slots::k_dcos_version_file);
  std::error_code ec;
  if (!std::filesystem::exists(file, ec)) {
    return std::nullopt;
  }
  nlohmann::json j = nlohmann::json::parse(util::read_file(file), nullptr, false);
  if (!j.is_object() || !j.contains("version") || !j["version"].is_string()) {
    throw Error(file.string(), "not a DC/OS version document (no \"version\" string)");
  }
  std::string version = j["version"].get<std::string>();
  version_numbers(version); // refuses one that is not a version
  return version;
}

std::vector<unsigned long>
version_numbers(const std::string& text)
{
  std::vector<unsigned long> numbers;
  std::size_t i = 0;
  while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i])) != 0) {
    unsigned long n = 0;
    for (; i < text.size() && std::isdigit(static_cast<unsigned char>(text[i])) != 0; ++i) {
      n = n * 10 + static_cast<unsigned long>(text[i] - '0');
    }
    numbers.push_back(n);
    if (i + 1 < text.size() && text[i] == '.' && std::isdigit(static_cast<unsigned char>(text[i + 1])) != 0) {
      ++i;
    } else {
      break; // the end, or a suffix such as "-beta1"
    }
  }
  if (numbers.empty()) {
    throw Error(text, "not a DC/OS version (expected digits and dots, e.g. 2.2.1)");
  }
  return numbers;
}

int
compare_dcos_versions(const std::string& a, const std::string& b)
{
  std::vector<unsigned long> x = version_numbers(a);
  std::vector<unsigned long> y = version_numbers(b);
  for (std::size_t i = 0; i < std::max(x.size(), y.size()); ++i) {
    unsigned long p = i < x.size() ? x[i] : 0;
    unsigned long q = i < y.size() ? y[i] : 0;
    if (p != q) {
      return p < q ? -1 : 1;
    }
  }
  return 0;
}

} // namespace kiln::node
