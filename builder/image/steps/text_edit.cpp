#include "image/steps/text_edit.hpp"

#include <algorithm>
#include <regex>
#include <set>
#include <sstream>

namespace kiln::steps {

std::string
set_key_value(const std::string& text, const std::string& key, const std::string& value, const std::string& separator)
{
  std::istringstream in(text);
  std::string out;
  bool done = false;
  const std::string assignment = key + separator;
  for (std::string line; std::getline(in, line);) {
    std::string trimmed = line.substr(std::min(line.size(), line.find_first_not_of(" \t")));
    std::string uncommented = trimmed;
    if (!uncommented.empty() && uncommented[0] == '#') {
      uncommented = uncommented.substr(std::min(uncommented.size(), uncommented.find_first_not_of("# \t")));
    }
    if (!done && (trimmed.rfind(assignment, 0) == 0 || uncommented.rfind(assignment, 0) == 0)) {
      out += assignment + value + "\n";
      done = true;
      continue;
    }
    out += line + "\n";
  }
  if (!done) {
    out += assignment + value + "\n";
  }
  return out;
}

std::string
replace_lines(const std::string& text, const std::string& regex, const std::string& line_text)
{
  std::regex re(regex, std::regex::extended);
  std::istringstream in(text);
  std::string out;
  bool matched = false;
  for (std::string line; std::getline(in, line);) {
    if (std::regex_search(line, re)) {
      out += line_text + "\n";
      matched = true;
    } else {
      out += line + "\n";
    }
  }
  if (!matched) {
    out += line_text + "\n";
  }
  return out;
}

std::string
replace_block(const std::string& text, const std::string& regex, const std::vector<std::string>& lines)
{
  std::regex re(regex, std::regex::extended);
  std::string block;
  for (const auto& l : lines) {
    block += l + "\n";
  }
  std::istringstream in(text);
  std::string out;
  bool matched = false;
  for (std::string line; std::getline(in, line);) {
    if (!std::regex_search(line, re)) {
      out += line + "\n";
    } else if (!matched) {
      out += block;
      matched = true;
    }
  }
  return matched ? out : out + block;
}

std::string
append_missing(const std::string& text, const std::vector<std::string>& lines)
{
  std::string out = text;
  if (!out.empty() && out.back() != '\n') {
    out += '\n';
  }
  std::istringstream in(text);
  std::set<std::string> present;
  for (std::string line; std::getline(in, line);) {
    present.insert(line);
  }
  for (const auto& l : lines) {
    if (present.insert(l).second) {
      out += l + "\n";
    }
  }
  return out;
}

std::string
whole_line_regex(const std::string& line)
{
  return "^" + std::regex_replace(line, std::regex(R"([.^$|()\[\]{}*+?\\])"), "\\$&") + "$";
}

} // namespace kiln::steps
