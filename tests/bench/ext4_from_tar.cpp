// ext4-from-tar TAR OUT SIZE_MIB EPOCH: fsimage::make_ext4_from_tar on a tar, timed. For
// tests/bench/ext4-from-tar.sh; the UUID and hash seed are fixed, the features kiln's default.
#include "core/util/error.hpp"
#include "image/fsimage/ext4_image.hpp"

#include <chrono>
#include <cstdio>
#include <string>

int
main(int argc, char** argv)
{
  if (argc != 5) {
    std::fprintf(stderr, "usage: ext4-from-tar TAR OUT SIZE_MIB EPOCH\n");
    return 2;
  }
  kiln::fsimage::Ext4Params params;
  params.size = std::stoull(argv[3]) << 20;
  params.epoch = std::stoll(argv[4]);
  params.label = "bench";
  params.uuid = "0b6a4f4e-8d2c-4a57-9c1e-3f5d2e7a9b10";
  params.hash_seed = "5e3c1a2b-7d4f-4e6a-8b9c-0d1e2f3a4b5c";
  try {
    auto start = std::chrono::steady_clock::now();
    kiln::fsimage::Ext4Report r =
      kiln::fsimage::make_ext4_from_tar(kiln::util::system_runner(), argv[1], argv[2], params);
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::printf("entries %llu, bytes %llu, skipped %llu, implicit directories %llu: %.2f s\n",
                static_cast<unsigned long long>(r.entries), static_cast<unsigned long long>(r.bytes),
                static_cast<unsigned long long>(r.skipped), static_cast<unsigned long long>(r.implicit_dirs), seconds);
  } catch (const kiln::Error& e) {
    std::fprintf(stderr, "ext4-from-tar: error: %s: %s\n", e.subject().c_str(), e.reason().c_str());
    return 1;
  }
  return 0;
}
