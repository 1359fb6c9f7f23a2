#include "support/sparse_image.hpp"

#include "core/util/fs.hpp"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <random>
#include <unistd.h>

namespace kiln::test {

std::filesystem::path
sparse_image(const std::filesystem::path& dir)
{
  std::filesystem::path image = dir / "rootfs.img";
  util::Fd fd = util::open_file(image, O_WRONLY | O_CREAT | O_TRUNC);
  std::mt19937 rng(1);
  auto put = [&](off_t at, std::size_t size) {
    std::string data(size, '\0');
    for (auto& c : data) {
      c = static_cast<char>(rng() | 1);
    }
    ASSERT_EQ(::pwrite(fd.get(), data.data(), size, at), static_cast<ssize_t>(size));
  };
  put(0, 10000);
  put(1 << 20, 300000);
  put((8 << 20) - 1000, 1000 - 1); // ends 1 byte short of 8 MiB
  return image;
}

std::string
packed(const std::filesystem::path& image, const bmap::Bmap& map)
{
  std::string all = util::read_file(image);
  std::string out;
  for (const auto& r : map.ranges) {
    out += all.substr(static_cast<std::size_t>(map.offset_of(r)), static_cast<std::size_t>(map.length_of(r)));
  }
  return out;
}

manifest::Manifest
small_manifest(const std::string& name)
{
  manifest::Manifest m;
  m.name = name;
  m.recipe_name = "node";
  m.recipe_digest = std::string(64, 'c');
  m.packages = {{"bash", "4.2.46-34.el7", "x86_64"}};
  return m;
}

} // namespace kiln::test
