// Quoting words for a POSIX shell and for GRUB's script language, which quote the same
// way: inside single quotes every character is literal, and a single quote is written
// as '\'' (close, escaped quote, reopen).
#pragma once

#include <string>

namespace kiln::util {

// `s` as one single-quoted word: "it's" -> 'it'\''s'.
std::string shell_quote(const std::string& s);

} // namespace kiln::util
