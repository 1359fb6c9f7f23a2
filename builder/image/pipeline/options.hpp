// What a build is asked to do and where it reports: the options every part of the
// pipeline reads (engine, base, stages, A/B, publish), the build-events interface, and
// the sinks that route events to the parts that take callbacks.
#pragma once

#include "core/recipe/model.hpp"
#include "core/util/runner.hpp"
#include "image/guestfs/guestfs.hpp"

#include <cstdint>
#include <filesystem>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace kiln::build {

// What a build tells as it goes. The pipeline says what happens in typed events; the
// executable renders them (kiln build: notes on stderr, a progress line on a terminal,
// -v for the log). Every method has a default that drops the event.
enum class StageState { cached, running };

struct StageEvent {
  std::string name; // a recipe stage's name, dcos, finalize or ab
  std::string key; // its key in the resolved plan
  StageState state = StageState::running;
  std::string detail; // what it does, when it runs ("running 5 steps")
};

class BuildEvents {
public:
  virtual ~BuildEvents() = default;
  // A stage is taken from the cache or starts.
  virtual void stage(const StageEvent& /*event*/) {}
  // What the build is doing: the base, steps, outputs, signing. One line each.
  virtual void note(const std::string& /*line*/) {}
  // What the user must see: libguestfs warnings, the KVM fallback, an SELinux relabel
  // that fell back to the first boot. One line each.
  virtual void warning(const std::string& /*line*/) {}
  // Appliance and tool messages and phase times; asked for only when verbose().
  virtual void log(const std::string& /*line*/) {}
  virtual bool verbose() const { return false; }
  // Bytes of a transfer (a download, an upload into the appliance).
  virtual void progress(std::uint64_t /*done*/, std::uint64_t /*total*/) {}
};

// Forwards every event to `inner` under a lock: for the parts of a build that run side
// by side (the output conversions).
class LockedEvents final : public BuildEvents {
public:
  explicit LockedEvents(BuildEvents& inner) : m_inner(inner) {}
  void stage(const StageEvent& event) override;
  void note(const std::string& line) override;
  void warning(const std::string& line) override;
  void log(const std::string& line) override;
  bool verbose() const override { return m_inner.verbose(); }
  void progress(std::uint64_t done, std::uint64_t total) override;

private:
  BuildEvents& m_inner;
  std::mutex m_mutex;
};

struct BuildOptions {
  std::filesystem::path output_dir;
  std::vector<recipe::OutputFormat> formats; // empty: the recipe's
  bool no_cache = false; // build every layer afresh; the layer cache is neither read nor written
  bool network = false; // appliance network for every step (--network)
  std::optional<std::string> sign_key; // sign the manifest with this Ed25519 key
  BuildEvents* events = nullptr; // unset: every event dropped
  util::Runner* runner = nullptr; // external programs (qemu-img, mmdebstrap, sfdisk, mkfs, cp); unset: the system's
  // SOURCE_DATE_EPOCH: the time stamps kiln's containers carry (vhd) come from it; unset:
  // fixed ones (README, "Reproducible builds").
  std::optional<std::int64_t> source_date_epoch;
};

// The runner external programs go through (util::system_runner() when unset).
util::Runner& runner_of(const BuildOptions& options);

// The build's events (a sink that drops everything when unset).
BuildEvents& events(const BuildOptions& options);
// A note (BuildEvents::note).
void say(const BuildOptions& options, const std::string& line);

// The sinks the parts below the pipeline take as callbacks (the libguestfs handle, the
// steps, fetches, the phase timer): warnings; the log (empty unless verbose, so nobody
// formats lines no one reads); transfer progress.
std::function<void(const std::string&)> notice_sink(const BuildOptions& options);
std::function<void(const std::string&)> log_sink(const BuildOptions& options);
std::function<void(std::uint64_t, std::uint64_t)> progress_sink(const BuildOptions& options);

// The appliance's options for this build: its log, warnings and progress.
gfs::HandleOptions handle_options(const BuildOptions& options, bool network);

} // namespace kiln::build
