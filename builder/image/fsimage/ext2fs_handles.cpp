#include "image/fsimage/ext2fs_handles.hpp"

#include <et/com_err.h>
#include <ext2fs/ext2_err.h>

#include <mutex>

namespace kiln::fsimage {

std::string
ext2fs_message(errcode_t code)
{
  static std::once_flag table;
  std::call_once(table, [] { initialize_ext2_error_table(); });
  return error_message(code);
}

errcode_t
close_filsys(FilsysHandle& fs)
{
  ext2_filsys raw = fs.release();
  return raw == nullptr ? 0 : ext2fs_close_free(&raw);
}

} // namespace kiln::fsimage
