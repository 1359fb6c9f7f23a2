// The text logic of the edit step and of kiln's own configuration edits: line-based,
// pure functions (no guest needed).
#pragma once

#include <string>
#include <vector>

namespace kiln::steps {

// Edits key=value lines: replaces the first line assigning `key` (commented-out
// assignments too), else appends.
std::string set_key_value(const std::string& text, const std::string& key, const std::string& value,
                          const std::string& separator);
// Replaces every line matching `regex` (POSIX extended) with `line`; appends `line`
// when nothing matched.
std::string replace_lines(const std::string& text, const std::string& regex, const std::string& line);
// `each:` with a match: `lines` take the place of the first line matching `regex`, every
// other matching line goes; appended when nothing matched.
std::string replace_block(const std::string& text, const std::string& regex, const std::vector<std::string>& lines);
// `each:` without a match: appends the lines the text does not hold yet.
std::string append_missing(const std::string& text, const std::vector<std::string>& lines);
// `line` as a regex matching exactly that whole line.
std::string whole_line_regex(const std::string& line);

} // namespace kiln::steps
