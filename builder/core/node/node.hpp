// kiln-node's commands, as library calls (the executable only parses arguments and
// prints): status, reimage, rollback, mark-good, wipe --dcos and install. Each takes
// the disk holding the A/B layout (abi.hpp) and returns its report (report.hpp), which
// the CLI prints as JSON (--json, report_json.hpp) or renders as text. Refusals are kiln::Error (one line); signature
// problems are crypto::VerificationError and happen before a byte is written.
#pragma once

#include "core/bundle/bundle.hpp"
#include "core/node/fault.hpp"
#include "core/node/report.hpp"
#include "core/node/wipe.hpp" // wipe --dcos

#include <chrono>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>

namespace kiln::node {

namespace fs = std::filesystem;

using Progress = std::function<void(std::uint64_t done, std::uint64_t total)>;

struct DiskOptions {
  fs::path disk;
  std::optional<char> booted; // --booted: names the booted slot when /proc/cmdline does not
  bool force = false; // --force: --booted wins even against /proc/cmdline
};

// Both slots (state, tries, digest, name), the booted slot, the next boot as GRUB will
// compute it, and the DC/OS first-boot state read under `root`.
StatusReport status(const DiskOptions& disk, const fs::path& root);

struct ReimageOptions {
  DiskOptions disk;
  std::string source; // bundle path or URL
  fs::path trust_dir = "/etc/kiln/trust.d";
  bool verify_signature = true;
  std::optional<unsigned> tries; // default slots::k_default_tries
  bool allow_downgrade = false; // accept a manifest version below the node's highest
  std::optional<std::string> expect_name; // the manifest's name must be this (image family)
  bundle::SourceOptions source_options;
  Progress progress;
  Fault fault = Fault::none; // crash tests: _exit(99) at this point (node/fault.hpp)
};

// Writes the bundle into the slot that is not booted (see README "kiln-node").
ReimageReport reimage(const ReimageOptions& options);

struct RollbackOptions {
  DiskOptions disk;
  fs::path root = "/"; // the booted slot's running root, where its DC/OS version is read
  bool force = false; // roll back to an older DC/OS anyway (RollbackReport::warning says so)
};

// Next boot the other slot (it must be good, and must not run an older DC/OS than the
// slot rolled back from unless forced).
RollbackReport rollback(const RollbackOptions& options);

struct MarkGoodOptions {
  DiskOptions disk;
  bool when_healthy = false;
  fs::path root = "/";
  std::chrono::seconds deadline{0}; // --deadline: ask for health until then (0: once)
  std::chrono::seconds interval{30}; // --interval: between two asks
  std::function<void(const std::string& problem)> waiting; // told before each wait
};

// Confirms the booted slot (optionally only when the node is healthy).
MarkGoodReport mark_good(const MarkGoodOptions& options);

struct InstallOptions {
  fs::path disk;
  std::string source; // NAME.raw path or URL (a raw whole-disk image)
  std::string bmap; // default SOURCE.bmap
  std::string manifest; // default NAME.manifest.json beside SOURCE
  fs::path trust_dir = "/etc/kiln/trust.d";
  bool verify_signature = true;
  bundle::SourceOptions source_options;
  Progress progress;
  Fault fault = Fault::none; // crash tests: mid-write or before-verify (node/fault.hpp)
};

// Writes a whole-disk image to a disk (installer ramdisk).
InstallReport install(const InstallOptions& options);

} // namespace kiln::node
