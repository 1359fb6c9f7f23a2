// The host side of the A/B disk: a sparse raw disk, its partition table (sfdisk), every
// file system made with the host's mkfs and the features CentOS 7 reads (kernel 3.10,
// xfsprogs 4.5, e2fsprogs 1.42.9, GRUB 2.02), copied in at its offset, and a partition's
// bytes taken out again (the slot bundle). External programs run through a util::Runner.
#pragma once

#include "core/util/runner.hpp"
#include "image/ab/disk_layout.hpp"

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace kiln::ab {

// Runs a host tool; a non-zero exit throws "layout ab: WHAT: TOOL exit status N: TAIL".
void run_tool(util::Runner& runner, const std::string& what, const std::vector<std::string>& argv,
              const util::RunOptions& options = {});

// A file of `size` bytes that allocates none.
void make_sparse_file(const std::filesystem::path& path, std::uint64_t size);

// Copies the allocated ranges of `from` into `to` at `offset` (holes stay holes).
void copy_sparse(const std::filesystem::path& from, const std::filesystem::path& to, std::uint64_t offset);

// `from` written over the `size` bytes at `offset` of the raw file `to`: the range is
// first made a hole (so whatever `from` leaves unwritten reads as zeros), then `from`'s
// data copied in. Plain writes: a running appliance may have `to` open (it then drops
// its buffers of the range).
void replace_range(const std::filesystem::path& from, const std::filesystem::path& to, std::uint64_t offset,
                   std::uint64_t size);

// The mkfs command for one file system ("xfs", "ext4" or "vfat") of `size` bytes in
// `file`, labelled, with `uuid` (vfat: its first 8 hex digits as the volume id).
std::vector<std::string> mkfs_argv(const std::string& type, const std::filesystem::path& file, std::uint64_t size,
                                   const std::string& label, const std::string& uuid);

// Makes that file system into a fresh sparse file of `size` bytes.
void make_fs(util::Runner& runner, const std::string& type, const std::filesystem::path& file, std::uint64_t size,
             const std::string& label, const std::string& uuid);

// Writes the table onto `disk` (a file: no re-read, no kernel notification).
void partition(util::Runner& runner, const std::filesystem::path& disk, const Layout& layout);

} // namespace kiln::ab
