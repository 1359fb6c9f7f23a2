// libarchive's failures as kiln's messages. A file of its own: kiln-node links libarchive
// statically and must not pull in archive.cpp's readers (every compression filter).
#pragma once

#include <string>
#include <string_view>

struct archive;

namespace kiln::archive {

// libarchive's message for the last failure of `a`, with the system's reason when
// libarchive kept one ("Write error: No space left on device"); `fallback` when it kept
// no message at all.
std::string error_message(struct archive* a, std::string_view fallback);

} // namespace kiln::archive
