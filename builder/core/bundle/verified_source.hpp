// The one verified source kiln-node writes from: `reimage` opens a slot bundle, `install`
// a whole-disk image with its bmap and signed manifest beside it. Both are verified the
// same way before a byte of the image is read (signature against the trust store,
// manifest, the bmap's bytes against the manifest, the bmap itself), with the same
// limits (bundle.hpp) and the same refusals (crypto::VerificationError); the commands
// only consume what was verified.
#pragma once

#include "core/bundle/bundle.hpp"
#include "core/crypto/signing.hpp"

#include <cstddef>
#include <memory>
#include <string>

namespace kiln::bundle {

class VerifiedSource {
public:
  virtual ~VerifiedSource() = default;

  // The source as given (path or URL), the subject of its errors.
  virtual const std::string& source() const = 0;
  // The verified manifest, its digest, the signer (empty when not checked), the bmap.
  virtual const Verified& verified() const = 0;
  // The image's name (the manifest's).
  const std::string& name() const { return verified().manifest.name; }

  // Fills `buffer` with the next `size` bytes of the image's mapped data: the bmap's
  // ranges in order, packed (what bmap::write_mapped asks for). A slot bundle's data is
  // a tar member read once front to back, so this is sequential for both sources.
  // Throws Error(source, reason) when the data ends early. Each range is checked against
  // verified().bmap by the reader (bmap::write_mapped does).
  virtual void read_mapped(char* buffer, std::size_t size) = 0;
  // Every byte read_mapped gave, handed back in order once used, on the consumer's
  // thread: a bundle's whole-data digest is computed there, beside the reads (the write
  // engine reads on a thread of its own). A consumer that reads everything and calls
  // finish() must hand back everything.
  virtual void consumed(const char* /*data*/, std::size_t /*size*/) {}
  // After the last mapped byte: checks that nothing follows it (and a bundle's
  // whole-data digest). Throws Error or crypto::VerificationError(file_digest).
  virtual void finish() = 0;

  // Connections resumed so far.
  virtual int resumes() const = 0;
};

// A slot bundle (path or URL), verified as Reader::verify does; `trust` nullptr: the
// signature is not checked.
std::unique_ptr<VerifiedSource> open_slot_bundle(const std::string& source, const SourceOptions& options,
                                                 const crypto::TrustStore* trust);

// A whole-disk image as kiln build names it: NAME.raw, NAME.raw.bmap and
// NAME.manifest.json (+ .sig) beside it, each a path or URL.
struct DiskImageFiles {
  std::string image; // NAME.raw
  std::string bmap; // empty: IMAGE.bmap
  std::string manifest; // empty: NAME.manifest.json beside IMAGE
};

// Reads and verifies the manifest (signed when `trust` is given; nullptr: not checked),
// which must list the image and the bmap (role bmap), then the bmap against the
// manifest's sha256 and size and the image size it maps against the manifest's.
// Throws crypto::VerificationError (not_signed, unknown_key, revoked_key,
// bad_signature, file_missing, file_digest, file_size) or Error.
std::unique_ptr<VerifiedSource> open_disk_image(const DiskImageFiles& files, const SourceOptions& options,
                                                const crypto::TrustStore* trust);

} // namespace kiln::bundle
