// Owning handles for libext2fs's C objects and its error codes as text. A dropped file
// system handle is freed without being flushed (ext2fs_free): an image abandoned on an
// error path is never half written back; the writer closes it with close_filsys.
#pragma once

#include <ext2fs/ext2fs.h>

#include <memory>
#include <string>

namespace kiln::fsimage {

struct FilsysFree {
  void operator()(struct struct_ext2_filsys* fs) const noexcept { ext2fs_free(fs); }
};
struct FileClose {
  void operator()(struct ext2_file* file) const noexcept { ext2fs_file_close(file); }
};
struct XattrsClose {
  void operator()(struct ext2_xattr_handle* handle) const noexcept { ext2fs_xattrs_close(&handle); }
};

using FilsysHandle = std::unique_ptr<struct struct_ext2_filsys, FilsysFree>; // from ext2fs_open
using FileHandle = std::unique_ptr<struct ext2_file, FileClose>; // from ext2fs_file_open
using XattrsHandle = std::unique_ptr<struct ext2_xattr_handle, XattrsClose>; // from ext2fs_xattrs_open

// libext2fs's (or the system's) message for `code`.
std::string ext2fs_message(errcode_t code);

// Flushes and frees: the one way an image is written back. Returns the flush's error code.
errcode_t close_filsys(FilsysHandle& fs);

} // namespace kiln::fsimage
