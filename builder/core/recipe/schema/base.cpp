#include "core/recipe/schema/base.hpp"

#include "core/recipe/schema/reader.hpp"

#include <regex>

namespace kiln::recipe::detail {

BaseImage
read_base(const Value& v, const LoadOptions& options, Diagnostics& diags)
{
  BaseImage base;
  base.location = v.location;
  MapReader r(v, "base", diags);
  if (!r.ok()) {
    return base;
  }
  const Value* url = r.get("url");
  const Value* bootstrap = r.get("bootstrap");
  const Value* path = r.get("path");
  int given = (url != nullptr) + (bootstrap != nullptr) + (path != nullptr);
  if (given != 1) {
    diags.error(v.location, given == 0 ? "base: give one of url, bootstrap or path"
                                       : "base: give only one of url, bootstrap or path");
  }
  if (url != nullptr) {
    base.kind = BaseImage::Kind::url;
    if (auto u = r.string("url")) {
      static const std::regex scheme("(https?|file)://.+");
      if (!std::regex_match(*u, scheme)) {
        diags.error(url->location, "url must start with http://, https:// or file://, not " + quote_token(*u));
      }
      base.urls.push_back(*u);
    }
    for (const auto& m : r.list("mirrors")) {
      base.urls.push_back(m);
    }
    base.sha256 = r.sha256("sha256");
    if (!base.sha256 && r.get("sha256") == nullptr && !options.allow_unpinned) {
      diags.error(v.location, "base: missing required field 'sha256' (a remote input must be pinned; "
                              "--allow-unpinned accepts it unverified)");
    }
    base.size = r.size("size");
    base.format = r.one_of("format", {"qcow2", "raw"}).value_or("qcow2");
  } else if (bootstrap != nullptr) {
    base.kind = BaseImage::Kind::bootstrap;
    MapReader b(*bootstrap, "base.bootstrap", diags);
    base.suite = b.string("suite", true).value_or("");
    base.mirror = b.string("mirror").value_or("");
    base.variant = b.one_of("variant", {"minbase", "required", "important", "standard"}).value_or("minbase");
    base.packages = b.list("packages");
    b.finish();
    base.format = "qcow2";
  } else if (path != nullptr) {
    base.kind = BaseImage::Kind::path;
    if (auto p = r.local_file("path")) {
      base.path = *p;
    }
    base.sha256 = r.sha256("sha256");
    std::string guess = "qcow2";
    if (base.path.ends_with(".raw") || base.path.ends_with(".img")) {
      guess = "raw";
    } else if (base.path.find(".tar") != std::string::npos) {
      guess = "tar";
    }
    base.format = r.one_of("format", {"qcow2", "raw", "tar"}).value_or(guess);
  }
  r.finish();
  return base;
}

} // namespace kiln::recipe::detail
