// What a build is asked to do and where it reports: the options every part of the
// pipeline reads (engine, base, stages, A/B, publish), and the small helpers that route
// its lines.
#pragma once

#include "image/guestfs/guestfs.hpp"

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace kiln::build {

struct BuildOptions {
  std::filesystem::path output_dir;
  std::vector<std::string> formats; // empty: the recipe's
  bool no_cache = false; // build every layer afresh; the layer cache is neither read nor written
  bool network = false; // appliance network for every step (--network)
  std::optional<std::string> sign_key; // sign the manifest with this Ed25519 key
  std::function<void(const std::string&)> status; // progress lines: stages, steps, outputs
  std::function<void(const std::string&)> log; // appliance and tool messages, phase times (-v)
  // What the user must see even without -v: warnings, the KVM fallback, an SELinux
  // relabel that fell back to the first boot. One line each; unset: into the log.
  std::function<void(const std::string&)> notice;
  std::function<void(std::uint64_t, std::uint64_t)> progress;
};

// A progress line (options.status), if anyone listens.
void say(const BuildOptions& options, const std::string& line);

// Where notices go: options.notice, else the log (empty when neither is set).
std::function<void(const std::string&)> notice_sink(const BuildOptions& options);

// The appliance's options for this build: its log, notices and progress.
gfs::HandleOptions handle_options(const BuildOptions& options, bool network);

} // namespace kiln::build
