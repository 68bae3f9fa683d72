#pragma once
// Extra CA certificates: the `ca_certificates` sources are read
// on the host and concatenated into one PEM bundle for the session. The
// bundle goes into the image build context (image/build-ca/extra-ca.pem,
// used only in throwaway build stages) and is mounted read-only into the
// cage, where cage-init adds it to the trust store.
//
// Only "CERTIFICATE" PEM blocks are taken: a private key that happens to sit
// in a named file never leaves the host.

#include <cstddef>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "launcher/host/config.hpp"

namespace cagent::launcher::host {

struct CaError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct CaBundle {
  std::string pem;        // deduplicated certificates, each ending in '\n'
  std::size_t count = 0;  // certificates in pem
  bool empty() const { return count == 0; }
};

// Where the host's system bundle may be, first existing wins.
std::vector<std::filesystem::path> default_system_bundles();

// The PEM CERTIFICATE blocks of `text`, normalized (one block per string).
std::vector<std::string> extract_pem_certificates(std::string_view text);

// Throws CaError naming the file (and the config entry) that is unreadable,
// not PEM, or a directory without certificates.
CaBundle collect_ca_bundle(const std::vector<CaSource>& sources,
                           const std::vector<std::filesystem::path>& system_bundles);

}  // namespace cagent::launcher::host
