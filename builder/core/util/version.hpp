// Package versions compared the way rpm does (rpmvercmp, rpm's lib/rpmvercmp.c): the
// string is cut into runs of digits and runs of letters, everything else separates
// them; digit runs compare as numbers, letter runs as text, and a digit run is newer
// than a letter run. So CentOS 7's updated kernel 3.10.0-1160.83.1.el7 is newer than
// 3.10.0-1160.el7 ("83" against "el"), which plain text and `sort -V` get the wrong
// way round. Debian's kernel versions (6.1.0-18-amd64) order the same either way.
#pragma once

#include <string_view>

namespace kiln::util {

// <0, 0 or >0 as `a` is older than, as new as, or newer than `b`.
int rpm_version_compare(std::string_view a, std::string_view b);

} // namespace kiln::util
