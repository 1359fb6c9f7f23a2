// A slot bundle as a VerifiedSource: bundle::Reader verified before anything is read of
// rootfs.data, whose bytes are the packed mapped data already.
#include "core/bundle/verified_source.hpp"

#include "core/util/error.hpp"

namespace kiln::bundle {

namespace {

class SlotBundleSource final : public VerifiedSource {
public:
  SlotBundleSource(const std::string& source, const SourceOptions& options, const crypto::TrustStore* trust)
    : m_reader(source, options), m_verified(m_reader.verify(trust))
  {
    m_reader.defer_data_digest(); // fed by consumed()
  }

  const std::string& source() const override { return m_reader.source(); }
  const Verified& verified() const override { return m_verified; }

  void read_mapped(char* buffer, std::size_t size) override
  {
    std::size_t done = 0;
    while (done < size) {
      std::size_t n = m_reader.read_data(buffer + done, size - done);
      if (n == 0) {
        throw Error(source(), "rootfs.data ends early");
      }
      done += n;
    }
  }

  void consumed(const char* data, std::size_t size) override { m_reader.hash_data(data, size); }

  void finish() override
  {
    char probe = 0;
    if (m_reader.read_data(&probe, 1) != 0) { // end of data: whole-data digest, no trailing members
      throw Error(source(), "rootfs.data is longer than the bmap maps");
    }
  }

  int resumes() const override { return m_reader.resumes(); }

private:
  Reader m_reader;
  Verified m_verified;
};

} // namespace

std::unique_ptr<VerifiedSource>
open_slot_bundle(const std::string& source, const SourceOptions& options, const crypto::TrustStore* trust)
{
  return std::make_unique<SlotBundleSource>(source, options, trust);
}

} // namespace kiln::bundle
