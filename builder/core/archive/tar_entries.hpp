// One loop over a tar's entries for the readers that take a tar whole (archive::Tree,
// fsimage's spool): opened, read header by header, interruptible between entries, a
// damaged tar one Error.
#pragma once

#include <filesystem>
#include <functional>
#include <string>

struct archive;
struct archive_entry;

namespace kiln::archive {

// Calls `each` with every entry of the tar at `tar` (ustar, pax or GNU tar; compressed
// with anything libarchive reads when `any_compression`), its data not yet read. Throws
// Error(subject, reason) for a tar that cannot be opened or is damaged.
void for_each_tar_entry(const std::filesystem::path& tar, const std::string& subject, bool any_compression,
                        const std::function<void(struct archive*, struct archive_entry*)>& each);

} // namespace kiln::archive
