#include "image/formats/qemu_img.hpp"

#include "core/util/error.hpp"

#include <nlohmann/json.hpp>

namespace kiln::formats {

namespace fs = std::filesystem;

void
qemu_img(util::Runner& runner, const std::string& subject, const std::vector<std::string>& args)
{
  std::vector<std::string> argv{"qemu-img"};
  argv.insert(argv.end(), args.begin(), args.end());
  util::RunResult r = runner.run(argv);
  if (!r.ok()) {
    throw Error(subject, "qemu-img " + args.front() + " failed: " + r.tail(3));
  }
}

void
create_qcow2(util::Runner& runner, const std::string& subject, const fs::path& path, std::uint64_t size)
{
  qemu_img(runner, subject, {"create", "-q", "-f", "qcow2", path.string(), std::to_string(size)});
}

void
create_overlay(util::Runner& runner, const std::string& subject, const fs::path& backing,
               const std::string& backing_format, const fs::path& path, std::uint64_t size)
{
  std::vector<std::string> args{"create", "-q",           "-f",         "qcow2", "-b", fs::absolute(backing).string(),
                                "-F",     backing_format, path.string()};
  if (size != 0) {
    args.push_back(std::to_string(size));
  }
  qemu_img(runner, subject, args);
}

namespace {

// qemu's --image-opts for the span: a raw window over the disk file in its format.
std::string
span_options(const DiskSpan& span)
{
  const std::string file = fs::absolute(span.disk).string();
  std::string spec = "driver=raw,offset=" + std::to_string(span.offset) + ",size=" + std::to_string(span.size);
  return spec + (span.format == "raw" ? ",file.driver=file,file.filename=" + file
                                      : ",file.driver=" + span.format + ",file.file.filename=" + file);
}

} // namespace

void
read_span(util::Runner& runner, const std::string& subject, const DiskSpan& span, const fs::path& out)
{
  qemu_img(runner, subject, {"convert", "-q", "-U", "-O", "raw", "--image-opts", span_options(span), out.string()});
}

void
write_span(util::Runner& runner, const std::string& subject, const fs::path& raw, const DiskSpan& span)
{
  qemu_img(runner, subject,
           {"convert", "-q", "-n", "-f", "raw", raw.string(), "--target-image-opts", span_options(span)});
}

ImageInfo
image_info(util::Runner& runner, const fs::path& image)
{
  util::RunResult r = runner.run({"qemu-img", "info", "--output=json", image.string()});
  if (!r.ok()) {
    throw Error(image.string(), "qemu-img info failed: " + r.tail(3));
  }
  try {
    nlohmann::json j = nlohmann::json::parse(r.out);
    return {j.at("format").get<std::string>(), j.at("virtual-size").get<std::uint64_t>()};
  } catch (const nlohmann::json::exception& e) {
    throw Error(image.string(), std::string("unexpected qemu-img info output: ") + e.what());
  }
}

} // namespace kiln::formats
