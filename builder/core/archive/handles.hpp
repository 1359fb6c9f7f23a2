// Owning handles for libarchive's C objects, shared by every libarchive user (tar
// overlays, slot bundles, DC/OS bundles, PXE cpio). Header-only, so a program that only
// writes archives (kiln-node) links no reader.
#pragma once

#include <archive.h>
#include <archive_entry.h>

#include <memory>

namespace kiln::archive {

struct WriteFree {
  void operator()(struct archive* a) const noexcept { archive_write_free(a); }
};
struct ReadFree {
  void operator()(struct archive* a) const noexcept { archive_read_free(a); }
};
struct EntryFree {
  void operator()(struct archive_entry* e) const noexcept { archive_entry_free(e); }
};

using WriteHandle = std::unique_ptr<struct archive, WriteFree>; // from archive_write_new()
using ReadHandle = std::unique_ptr<struct archive, ReadFree>; // from archive_read_new()
using EntryHandle = std::unique_ptr<struct archive_entry, EntryFree>;

} // namespace kiln::archive
