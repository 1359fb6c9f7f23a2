#include "support/ab_fixture.hpp"

#include "core/bundle/bundle.hpp"
#include "core/crypto/sha256.hpp"
#include "core/crypto/signing.hpp"
#include "core/manifest/manifest.hpp"
#include "core/slots/abi.hpp"
#include "core/slots/gpt.hpp"
#include "core/util/error.hpp"
#include "core/util/fs.hpp"
#include "core/util/process.hpp"
#include "image/guestfs/accel_probe.hpp"
#include "image/guestfs/guestfs.hpp"
#include "support/test_support.hpp"

#include <chrono>
#include <cstdio>

namespace kiln::test {

namespace fs = std::filesystem;

namespace {

std::string
digest_of_files(const std::vector<fs::path>& files)
{
  std::string all;
  for (const auto& f : files) {
    all += f.string() + "=" + crypto::sha256_file(f) + "\n";
  }
  return crypto::sha256_hex(all);
}

// A slot bundle that never comes up: slot A of the fixture with /sbin/init pointing at
// /usr/bin/false, so its kernel panics at every boot (and panic=N reboots it). Made from the
// fixture's own disk in one appliance launch rather than a second kiln build.
void
make_bad_bundle(const fs::path& out, const fs::path& key, const fs::path& bundle_file)
{
  const fs::path raw = out / "ab-fixture.raw";
  slots::Gpt gpt = slots::read_gpt(raw);
  const slots::Partition& a = gpt.by_label(slots::k_part_a);
  fs::path rootfs = out / ".bad-rootfs.raw";
  util::run_checked({"dd", "if=" + raw.string(), "of=" + rootfs.string(), "bs=1M", "iflag=skip_bytes,count_bytes",
                     "skip=" + std::to_string(a.offset), "count=" + std::to_string(a.size), "conv=sparse",
                     "status=none"});
  {
    gfs::Handle g;
    g.add_drive(rootfs.string(), "raw");
    g.launch();
    g.mount("/dev/sda", "/");
    // Relative, so initramfs-tools' check of the new root's init (made before it
    // switches root) finds it; an absolute link would send it to its /bin/sh fallback.
    g.ln_sf("../bin/false", "/usr/sbin/init");
    g.umount_all();
    g.shutdown();
  }
  manifest::Manifest base = manifest::read_manifest(out / "ab-fixture.manifest.json");
  base.name = "ab-fixture-bad";
  crypto::PrivateKey signer = crypto::load_private_key(key);
  bundle::write_bundle(rootfs, bundle_file, base, &signer);
  fs::remove(rootfs);
}

AbFixture
build_fixture()
{
  AbFixture fx;
  const fs::path cache = ab_fixture_cache();
  fs::create_directories(cache);
  gfs::set_accel_state_dir(cache / "accel");
  fx.recipe = source_dir() / "tests/boot/fixture/ab-fixture.yaml";
  fx.key = source_dir() / "tests/fixtures/ab-keys/release.key";
  fx.trust = source_dir() / "tests/fixtures/ab-keys/release.pub";
  // kiln_tag: a new kiln builds the A/B stage (the subject of the layout tests) afresh.
  fx.sets = {"trust_key=" + fx.trust.string(), "kiln_tag=" + crypto::sha256_file(KILN_BIN).substr(0, 16)};

  std::vector<std::string> plan_args{"plan", fx.recipe.string(), "--json"};
  for (const auto& s : fx.sets) {
    plan_args.insert(plan_args.end(), {"--set", s});
  }
  util::RunResult plan = run_kiln(plan_args, ab_fixture_env());
  if (!plan.ok()) {
    fx.error = "kiln plan of the A/B fixture failed: " + plan.err;
    return fx;
  }
  const std::string key = crypto::sha256_hex(plan.out + digest_of_files({KILN_BIN, KILN_NODE_BIN, fx.key}));
  fx.out = cache / "ab-fixture" / key.substr(0, 16);
  fx.bad = fx.out / "ab-fixture-bad.kbundle";
  const fs::path done = fx.out / ".complete";
  util::FileLock lock(cache / "ab-fixture.lock");
  if (fs::exists(done)) {
    return fx;
  }
  auto started = std::chrono::steady_clock::now();
  fs::remove_all(fx.out);
  std::vector<std::string> build_args{
    "build",         fx.recipe.string(), "--cache", cache.string(), "--sign", fx.key.string(), "-o",
    fx.out.string(), "--json",           "-v"};
  for (const auto& s : fx.sets) {
    build_args.insert(build_args.end(), {"--set", s});
  }
  util::RunResult r = run_kiln(build_args, ab_fixture_env());
  if (!r.ok()) {
    fx.error = "building the A/B fixture (ab-fixture.yaml) failed:\n" + r.err + r.out;
    return fx;
  }
  util::write_file_atomic(fx.out / "build.json", r.out);
  util::write_file_atomic(fx.out / "build.log", r.err); // -v: where the time went ("time:" lines)
  try {
    make_bad_bundle(fx.out, fx.key, fx.bad);
  } catch (const std::exception& e) {
    fx.error = std::string("making the bad bundle failed: ") + e.what();
    return fx;
  }
  util::write_file_atomic(done, "");
  std::fprintf(stderr, "A/B fixture built in %.0f s (accelerator %s): %s\n",
               std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count(),
               gfs::accel_name(gfs::probe_acceleration().accel), fx.out.c_str());
  return fx;
}

} // namespace

fs::path
ab_fixture_cache()
{
  return KILN_TEST_CACHE;
}

const AbFixture&
ab_fixture()
{
  static const AbFixture f = build_fixture();
  return f;
}

std::map<std::string, std::string>
ab_fixture_env()
{
  return {{"SOURCE_DATE_EPOCH", std::to_string(k_fixture_epoch)}};
}

std::string
ab_fixture_base_and_size()
{
  std::string text = read_text(std::filesystem::path(KILN_SOURCE_DIR) / "tests/boot/fixture/ab-fixture.yaml");
  const std::size_t from = text.find("\nbase:\n");
  const std::size_t size = text.find("\nsize:", from == std::string::npos ? 0 : from);
  const std::size_t to = size == std::string::npos ? size : text.find('\n', size + 1);
  if (from == std::string::npos || to == std::string::npos) {
    throw Error("ab-fixture.yaml", "no base: block followed by size:");
  }
  return text.substr(from + 1, to - from);
}

} // namespace kiln::test
