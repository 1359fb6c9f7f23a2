// SPDX 2.3 software bill of materials (JSON) for an image's package list. The
// document is a pure function of its inputs: the creation time is passed in (for
// example from SOURCE_DATE_EPOCH), never read from the clock, and the document
// namespace derives from a digest, so a rebuild produces the same bytes.
#pragma once

#include "core/manifest/manifest.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace kiln::manifest {

struct SbomOptions {
  std::string name; // document name, usually the image name
  std::string digest; // image or recipe digest (hex): namespace https://kiln.invalid/spdx/DIGEST
  std::string created; // creation time, YYYY-MM-DDThh:mm:ssZ (see spdx_time)
  std::string kiln_version; // creator "Tool: kiln-VERSION"
  std::string distro; // package flavour: "rpm" (CentOS) or "deb" (Debian)
};

// The SPDX document. Packages are listed sorted by (name, version, arch), each with
// SPDXID SPDXRef-Package-NAME (characters outside [A-Za-z0-9.-] become '-', clashes
// get a -ARCH then -N suffix), a purl external reference and a DESCRIBES relationship
// from the document. Throws Error("sbom", reason) for bad options.
nlohmann::json make_sbom(const std::vector<Package>& packages, const SbomOptions& options);

// "pkg:rpm/centos/NAME@VERSION?arch=ARCH" or "pkg:deb/debian/NAME@VERSION?arch=ARCH",
// percent-encoded; an rpm epoch ("1:2.3-4") becomes the qualifier epoch=1.
std::string package_url(const Package& package, const std::string& distro);

// The SPDX id form of `name`: every character outside [A-Za-z0-9.-] becomes '-'.
std::string spdx_id_part(std::string_view name);

// Seconds since the epoch as SPDX time (UTC, YYYY-MM-DDThh:mm:ssZ).
std::string spdx_time(std::int64_t seconds);

} // namespace kiln::manifest
