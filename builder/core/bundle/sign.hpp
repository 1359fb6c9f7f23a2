// Signing a slot bundle after the fact: the A/B stage caches an unsigned bundle beside
// its layer, and a build that signs turns that bundle into a signed one without
// rebuilding it from the root file system image.
#pragma once

#include "core/bundle/bundle.hpp"
#include "core/crypto/signing.hpp"

#include <filesystem>

namespace kiln::bundle {

// Reads the unsigned bundle `unsigned_bundle` (a local file) front to back and writes
// it signed with `key` atomically to `out_path` (the bundle file, or an existing
// directory to write NAME.kbundle into; the input itself may be the target). The
// manifest.json bytes are kept, so the manifest digest still names the bundle;
// rootfs.bmap and rootfs.data are streamed through. The result is byte-identical to
// write_bundle(image, out_path, base, &key) for the image and base the input was made
// from. The input is checked as Reader does (member order, the manifest against the
// bmap and rootfs.data's size and digest); a signed input is refused. Throws Error (or
// crypto::VerificationError for a bundle that contradicts its manifest); nothing
// appears on failure.
BundleInfo sign_bundle(const fs::path& unsigned_bundle, const fs::path& out_path, const crypto::PrivateKey& key);

} // namespace kiln::bundle
