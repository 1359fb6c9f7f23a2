#include "core/archive/tar_entries.hpp"

#include "core/archive/error.hpp"
#include "core/archive/handles.hpp"
#include "core/util/error.hpp"
#include "core/util/term.hpp"

namespace kiln::archive {

void
for_each_tar_entry(const std::filesystem::path& tar, const std::string& subject, bool any_compression,
                   const std::function<void(struct archive*, struct archive_entry*)>& each)
{
  ReadHandle a(archive_read_new());
  archive_read_support_format_tar(a.get());
  archive_read_support_format_gnutar(a.get());
  if (any_compression) {
    archive_read_support_filter_all(a.get());
  }
  if (archive_read_open_filename(a.get(), tar.c_str(), 1 << 20) != ARCHIVE_OK) {
    throw Error(subject, error_message(a.get(), "cannot open the tar"));
  }
  struct archive_entry* e = nullptr;
  for (;;) {
    util::check_interrupted();
    int r = archive_read_next_header(a.get(), &e);
    if (r == ARCHIVE_EOF) {
      return;
    }
    if (r < ARCHIVE_WARN) {
      throw Error(subject, error_message(a.get(), "damaged tar"));
    }
    each(a.get(), e);
  }
}

} // namespace kiln::archive
