// kiln keygen / sign / verify-signature: Ed25519 keys and signed build manifests.
#include "kiln/commands.hpp"

#include "core/crypto/signing.hpp"
#include "core/manifest/manifest.hpp"
#include "core/util/error.hpp"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <iostream>
#include <memory>

namespace kiln::cmd {

namespace {

namespace fs = std::filesystem;

struct KeygenArgs {
  std::string out;
  std::string name = "kiln";
};

struct SignArgs {
  std::string manifest;
  std::string key;
};

struct VerifyArgs {
  std::string manifest;
  std::string trust;
  bool json = false;
};

int
do_keygen(const KeygenArgs& args)
{
  std::error_code ec;
  fs::create_directories(args.out, ec);
  if (ec) {
    throw Error(args.out, "cannot create directory: " + ec.message());
  }
  crypto::KeyPairFiles files = crypto::generate_keypair(args.out, args.name);
  std::cout << "private key: " << files.private_key.string() << "\n"
            << "public key:  " << files.public_key.string() << "\n"
            << "key id:      " << files.key_id << "\n";
  return 0;
}

int
do_sign(const SignArgs& args)
{
  crypto::PrivateKey key = crypto::load_private_key(args.key);
  std::string id = manifest::sign_manifest(args.manifest, key);
  std::cout << manifest::signature_path(args.manifest).string() << "\n";
  std::cout << "key id: " << id << "\n";
  return 0;
}

int
do_verify(const VerifyArgs& args)
{
  try {
    crypto::TrustStore trust = crypto::TrustStore::load(args.trust);
    manifest::Verified result = manifest::verify_manifest(args.manifest, trust);
    if (args.json) {
      nlohmann::json j = {
        {"ok", true}, {"manifest", args.manifest}, {"key_id", result.key_id}, {"files", result.manifest.files.size()}};
      std::cout << j.dump() << "\n";
    } else {
      std::cout << args.manifest << ": good signature by key " << result.key_id << ", " << result.manifest.files.size()
                << " file(s) verified\n";
    }
    return 0;
  } catch (const crypto::VerificationError& e) {
    if (args.json) {
      nlohmann::json j = {{"ok", false},
                          {"manifest", args.manifest},
                          {"refusal", std::string(crypto::refusal_name(e.refusal()))},
                          {"error", e.what()}};
      std::cout << j.dump() << "\n";
    }
    throw; // printed as `kiln: error: ...` by run_guarded
  }
}

} // namespace

void
add_trust_commands(CLI::App& app, int& status)
{
  auto keygen = std::make_shared<KeygenArgs>();
  auto* cmd = app.add_subcommand("keygen", "Create an Ed25519 signing key pair (NAME.key, NAME.pub)");
  cmd->add_option("--out", keygen->out, "Directory for the key files (created if missing)")->required();
  cmd->add_option("--name", keygen->name, "Key name: the files are NAME.key and NAME.pub (default: kiln)");
  cmd->callback([keygen, &status] { status = do_keygen(*keygen); });

  auto sign = std::make_shared<SignArgs>();
  cmd = app.add_subcommand("sign", "Sign a build manifest: writes MANIFEST.sig and MANIFEST.sig.bin");
  cmd->add_option("manifest", sign->manifest, "Manifest file (NAME.manifest.json)")->required();
  cmd->add_option("--key", sign->key, "Private key file (NAME.key from kiln keygen)")->required();
  cmd->callback([sign, &status] { status = do_sign(*sign); });

  auto verify = std::make_shared<VerifyArgs>();
  cmd = app.add_subcommand("verify-signature",
                           "Check a manifest's signature against trusted keys, then every file it lists");
  cmd->add_option("manifest", verify->manifest, "Manifest file (NAME.manifest.json)")->required();
  cmd->add_option("--trust", verify->trust, "Trust directory: *.pem public keys and an optional revoked.list")
    ->required();
  cmd->add_flag("--json", verify->json, "Machine-readable result on stdout");
  cmd->callback([verify, &status] { status = do_verify(*verify); });
}

} // namespace kiln::cmd
