// libguestfs's and the appliance's text made fit for kiln's one-line errors and logs.
// Internal to image/guestfs.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace kiln::gfs::detail {

std::string strip(std::string_view text);

// Drops control characters and ANSI escape sequences (the appliance's console colours its
// messages).
std::string printable(std::string_view text);

std::vector<std::string> split_lines(std::string_view text);

bool starts_with(std::string_view text, std::string_view prefix);

bool contains_nocase(std::string_view text, std::string_view word);

// The generic advice libguestfs appends to launch failures says nothing about the cause.
bool is_boilerplate(std::string_view line);

// libguestfs's last error, reduced to one line: boilerplate dropped, at most a few lines
// joined with "; ", bounded in length.
std::string one_line(const char* message);

std::string subject_of(std::string_view op, const std::string& subject);

} // namespace kiln::gfs::detail
