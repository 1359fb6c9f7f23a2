// The output writers (image/formats/outputs) without qemu-img: the command line each
// format runs, the raw image's bmap, the vhd's alignment to whole MiB, and a failing
// qemu-img reported naming the output. The guestfs build tests run the real qemu-img.
#include "core/bmap/bmap.hpp"
#include "core/util/error.hpp"
#include "image/formats/outputs.hpp"
#include "image/formats/qemu_img.hpp"
#include "support/fake_runner.hpp"
#include "support/test_support.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace kiln {
namespace {

namespace fs = std::filesystem;
using Argv = std::vector<std::string>;
constexpr std::uint64_t k_mib = 1ull << 20;

class output_formats : public ::testing::Test {
protected:
  output_formats() { m_source.image = "/layers/final.qcow2"; }

  std::vector<formats::Written> write(const std::string& format, bool compress = false)
  {
    return formats::write_format(m_runner, recipe::parse_format(format).value(), m_source, "node", m_dir.path(),
                                 compress);
  }
  std::string out(const std::string& name) const { return (m_dir / name).string(); }

  // `qemu-img info` reports `size` as the image's virtual size; every other call succeeds.
  void answer_virtual_size(std::uint64_t size)
  {
    m_runner.answer = [size](const test::FakeRunner::Call& call) {
      util::RunResult r;
      r.exit_code = 0;
      if (call.argv.at(1) == "info") {
        r.out = "{\"virtual-size\": " + std::to_string(size) + ", \"format\": \"qcow2\"}\n";
      }
      return r;
    };
  }

  test::ScratchDir m_dir;
  test::FakeRunner m_runner;
  formats::Source m_source;
};

TEST_F(output_formats, qcow2_is_converted_compressed_only_when_asked)
{
  auto written = write("qcow2");
  ASSERT_EQ(written.size(), 1u);
  EXPECT_EQ(written[0].name, "node.qcow2");
  EXPECT_EQ(written[0].role, "image");
  EXPECT_EQ(written[0].format, "qcow2");
  write("qcow2", true);
  ASSERT_EQ(m_runner.calls.size(), 2u);
  EXPECT_EQ(m_runner.calls[0].argv,
            (Argv{"qemu-img", "convert", "-q", "-O", "qcow2", "/layers/final.qcow2", out("node.qcow2")}));
  EXPECT_EQ(m_runner.calls[1].argv,
            (Argv{"qemu-img", "convert", "-q", "-O", "qcow2", "-c", "/layers/final.qcow2", out("node.qcow2")}));
}

TEST_F(output_formats, raw_is_converted_then_mapped)
{
  // The stand-in qemu-img leaves a sparse raw image with one block of data.
  m_runner.answer = [](const test::FakeRunner::Call& call) {
    std::string data(4 * k_mib, '\0');
    data[k_mib] = 'x';
    test::write_text(call.argv.back(), data);
    util::RunResult r;
    r.exit_code = 0;
    return r;
  };
  auto written = write("raw");
  ASSERT_EQ(m_runner.calls.size(), 1u);
  EXPECT_EQ(m_runner.calls[0].argv,
            (Argv{"qemu-img", "convert", "-q", "-O", "raw", "/layers/final.qcow2", out("node.raw")}));
  ASSERT_EQ(written.size(), 2u);
  EXPECT_EQ(written[0].name, "node.raw");
  EXPECT_EQ(written[1].name, "node.raw.bmap");
  EXPECT_EQ(written[1].role, "bmap");
  bmap::Bmap map = bmap::read_bmap_file(m_dir / "node.raw.bmap");
  EXPECT_EQ(map.image_size, 4 * k_mib);
  EXPECT_EQ(map.mapped_bytes(), map.block_size); // the one block of data
}

TEST_F(output_formats, vmdk_is_stream_optimized)
{
  auto written = write("vmdk");
  ASSERT_EQ(written.size(), 1u);
  EXPECT_EQ(written[0].name, "node.vmdk");
  ASSERT_EQ(m_runner.calls.size(), 1u);
  EXPECT_EQ(m_runner.calls[0].argv, (Argv{"qemu-img", "convert", "-q", "-O", "vmdk", "-o", "subformat=streamOptimized",
                                          "/layers/final.qcow2", out("node.vmdk")}));
}

TEST_F(output_formats, vhd_of_whole_mib_is_converted_fixed_as_it_is)
{
  answer_virtual_size(8 * k_mib);
  auto written = write("vhd");
  ASSERT_EQ(written.size(), 1u);
  EXPECT_EQ(written[0].name, "node.vhd");
  ASSERT_EQ(m_runner.calls.size(), 2u);
  EXPECT_EQ(m_runner.calls[0].argv, (Argv{"qemu-img", "info", "--output=json", "/layers/final.qcow2"}));
  EXPECT_EQ(m_runner.calls[1].argv, (Argv{"qemu-img", "convert", "-q", "-O", "vpc", "-o",
                                          "subformat=fixed,force_size=on", "/layers/final.qcow2", out("node.vhd")}));
}

TEST_F(output_formats, vhd_of_a_partial_mib_goes_through_an_overlay_rounded_up)
{
  answer_virtual_size(8 * k_mib + 512);
  write("vhd");
  ASSERT_EQ(m_runner.calls.size(), 3u);
  const std::string aligned = out(".node.vhd-aligned.qcow2");
  EXPECT_EQ(m_runner.calls[1].argv, (Argv{"qemu-img", "create", "-q", "-f", "qcow2", "-b", "/layers/final.qcow2", "-F",
                                          "qcow2", aligned, std::to_string(9 * k_mib)}));
  EXPECT_EQ(m_runner.calls[2].argv, (Argv{"qemu-img", "convert", "-q", "-O", "vpc", "-o",
                                          "subformat=fixed,force_size=on", aligned, out("node.vhd")}));
}

TEST_F(output_formats, a_failing_qemu_img_is_reported_naming_the_output)
{
  m_runner.fail_with(1, "qemu-img: Could not open '/layers/final.qcow2': No such file\n");
  for (const char* format : {"qcow2", "raw", "vmdk"}) {
    Error e = test::error_of([&] { write(format); });
    EXPECT_EQ(std::string(e.what()),
              "output " + std::string(format) +
                ": qemu-img convert failed: qemu-img: Could not open '/layers/final.qcow2': No such file");
  }
  // vhd asks for the virtual size first: that failure names the image.
  Error e = test::error_of([&] { write("vhd"); });
  EXPECT_EQ(std::string(e.what()),
            "/layers/final.qcow2: qemu-img info failed: qemu-img: Could not open '/layers/final.qcow2': No such file");
  EXPECT_FALSE(fs::exists(m_dir / "node.raw.bmap"));
}

TEST(qemu_img, overlays_name_their_backing_file_by_its_absolute_path)
{
  test::FakeRunner runner;
  formats::create_overlay(runner, "working layer", "layers/parent.qcow2", "raw", "/scratch/working.qcow2");
  formats::create_overlay(runner, "output vhd", "/l/final.qcow2", "qcow2", "/o/.node.vhd-aligned.qcow2", 3 * k_mib);
  formats::create_qcow2(runner, "base", "/c/layers/base.qcow2", 4ull << 30);
  ASSERT_EQ(runner.calls.size(), 3u);
  EXPECT_EQ(runner.calls[0].argv,
            (Argv{"qemu-img", "create", "-q", "-f", "qcow2", "-b",
                  (fs::current_path() / "layers/parent.qcow2").string(), "-F", "raw", "/scratch/working.qcow2"}));
  EXPECT_EQ(runner.calls[1].argv, (Argv{"qemu-img", "create", "-q", "-f", "qcow2", "-b", "/l/final.qcow2", "-F",
                                        "qcow2", "/o/.node.vhd-aligned.qcow2", std::to_string(3 * k_mib)}));
  EXPECT_EQ(runner.calls[2].argv,
            (Argv{"qemu-img", "create", "-q", "-f", "qcow2", "/c/layers/base.qcow2", std::to_string(4ull << 30)}));
  runner.fail_with(1, "qemu-img: /scratch/working.qcow2: Could not open backing file\n");
  Error e = test::error_of(
    [&] { formats::create_overlay(runner, "working layer", "/l/p.qcow2", "qcow2", "/scratch/working.qcow2"); });
  EXPECT_EQ(std::string(e.what()),
            "working layer: qemu-img create failed: qemu-img: /scratch/working.qcow2: Could not open backing file");
}

TEST(qemu_img, spans_are_raw_windows_over_the_disk_in_its_format)
{
  test::FakeRunner runner;
  formats::read_span(runner, "slot", {"/tmp/disk.raw", "raw", 5 * k_mib, 768 * k_mib}, "/tmp/a.raw");
  formats::write_span(runner, "root", "/tmp/new.raw", {"/l/final.qcow2", "qcow2", k_mib, 3 * k_mib});
  ASSERT_EQ(runner.calls.size(), 2u);
  const std::string raw_window = "driver=raw,offset=" + std::to_string(5 * k_mib) +
                                 ",size=" + std::to_string(768 * k_mib) +
                                 ",file.driver=file,file.filename=/tmp/disk.raw";
  // -U: an appliance may still hold the disk open.
  EXPECT_EQ(runner.calls[0].argv,
            (Argv{"qemu-img", "convert", "-q", "-U", "-O", "raw", "--image-opts", raw_window, "/tmp/a.raw"}));
  const std::string qcow2_window = "driver=raw,offset=" + std::to_string(k_mib) + ",size=" + std::to_string(3 * k_mib) +
                                   ",file.driver=qcow2,file.file.filename=/l/final.qcow2";
  // -n: the disk exists; only the window is written.
  EXPECT_EQ(runner.calls[1].argv, (Argv{"qemu-img", "convert", "-q", "-n", "-f", "raw", "/tmp/new.raw",
                                        "--target-image-opts", qcow2_window}));
}

TEST(qemu_img, info_gives_the_format_and_virtual_size_and_refuses_what_it_cannot_read)
{
  test::FakeRunner runner;
  runner.answer = [](const test::FakeRunner::Call&) {
    util::RunResult r;
    r.exit_code = 0;
    r.out = "{\"virtual-size\": 4294967296, \"filename\": \"/i.vhd\", \"format\": \"vpc\"}\n";
    return r;
  };
  formats::ImageInfo info = formats::image_info(runner, "/i.vhd");
  EXPECT_EQ(info.format, "vpc");
  EXPECT_EQ(info.virtual_size, 4ull << 30);
  EXPECT_EQ(runner.calls.at(0).argv, (Argv{"qemu-img", "info", "--output=json", "/i.vhd"}));

  runner.answer = [](const test::FakeRunner::Call&) {
    util::RunResult r;
    r.exit_code = 0;
    r.out = "{\"format\": \"raw\"}\n";
    return r;
  };
  Error e = test::error_of([&] { formats::image_info(runner, "/i.raw"); });
  EXPECT_EQ(e.subject(), "/i.raw");
  EXPECT_TRUE(e.reason().starts_with("unexpected qemu-img info output")) << e.reason();
  runner.fail_with(1, "qemu-img: Could not open '/i.raw': Permission denied\n");
  EXPECT_EQ(std::string(test::error_of([&] { formats::image_info(runner, "/i.raw"); }).what()),
            "/i.raw: qemu-img info failed: qemu-img: Could not open '/i.raw': Permission denied");
}

} // namespace
} // namespace kiln
