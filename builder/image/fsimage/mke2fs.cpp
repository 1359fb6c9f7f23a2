#include "image/fsimage/mke2fs.hpp"

#include "core/util/error.hpp"
#include "core/util/fs.hpp"
#include "image/ab/host_fs.hpp"

#include <cstdlib>

namespace kiln::fsimage {

namespace fs = std::filesystem;

std::string
mke2fs_config()
{
  // The ext4 features are 1.47.0's (misc/mke2fs.conf.in), which Debian's own file trims:
  // callers turn features off with "^name" in Ext4Params::features.
  return "[defaults]\n"
         "\tbase_features = sparse_super,large_file,filetype,resize_inode,dir_index,ext_attr\n"
         "\tdefault_mntopts = acl,user_xattr\n"
         "\tenable_periodic_fsck = 0\n"
         "\tblocksize = 4096\n"
         "\tinode_size = 256\n"
         "\tinode_ratio = 16384\n"
         "\treserved_ratio = 5.0\n"
         "\thash_alg = half_md4\n"
         "\tflex_bg_size = 16\n"
         "\n"
         "[fs_types]\n"
         "\text4 = {\n"
         "\t\tfeatures = has_journal,extent,huge_file,flex_bg,metadata_csum,metadata_csum_seed,64bit,"
         "dir_nlink,extra_isize,orphan_file\n"
         "\t}\n"
         "\tdefault = {\n"
         "\t}\n";
}

std::vector<std::string>
mke2fs_argv(const Ext4Params& params, const fs::path& image, const fs::path& config)
{
  const char* path = std::getenv("PATH");
  std::vector<std::string> argv{"env",
                                "-i",
                                std::string("PATH=") + (path != nullptr ? path : "/usr/sbin:/usr/bin:/sbin:/bin"),
                                "E2FSPROGS_FAKE_TIME=" + std::to_string(params.epoch),
                                "MKE2FS_CONFIG=" + config.string(),
                                "mke2fs",
                                "-q",
                                "-F",
                                "-t",
                                "ext4",
                                "-T",
                                "default",
                                "-b",
                                std::to_string(params.block_size),
                                "-I",
                                std::to_string(params.inode_size)};
  if (params.inodes != 0) {
    argv.insert(argv.end(), {"-N", std::to_string(params.inodes)});
  }
  argv.insert(argv.end(),
              {"-O", params.features, "-L", params.label, "-U", params.uuid, "-E",
               "hash_seed=" + params.hash_seed + ",root_owner=0:0,lazy_itable_init=0,lazy_journal_init=0,nodiscard",
               image.string(), std::to_string(params.size / params.block_size)});
  return argv;
}

void
make_empty_ext4(util::Runner& runner, const Ext4Params& params, const fs::path& image, const fs::path& scratch,
                const std::string& subject)
{
  fs::path config = scratch / "mke2fs.conf";
  util::write_file_atomic(config, mke2fs_config());
  ab::make_sparse_file(image, params.size);
  std::vector<std::string> argv = mke2fs_argv(params, image, config);
  util::RunResult r = runner.run(argv);
  if (!r.ok()) {
    throw Error(subject, "mke2fs exit status " + std::to_string(r.exit_code) + ": " + r.tail(3));
  }
}

} // namespace kiln::fsimage
