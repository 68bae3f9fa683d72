#pragma once
// The relay's certificate authority, made at its start and living only in
// its memory: the agent's clients trust its certificate (cage-init adds it to
// the cage's bundle), and it signs one server certificate per secret host.
//
// Its key never touches a file. The certificate carries a critical
// nameConstraints extension permitting exactly the secret hosts, so even a
// stolen key could not vouch for any other site to a client that checks
// constraints (OpenSSL, Go, NSS do). Valid from an hour ago (clock skew) for
// 30 days; a session is far shorter. Every certificate operation is
// OpenSSL's; the handles are RAII.

#include <openssl/evp.h>
#include <openssl/x509.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace cagent::relay {

struct PkeyFree {
  void operator()(EVP_PKEY* p) const noexcept { EVP_PKEY_free(p); }
};
struct X509Free {
  void operator()(X509* p) const noexcept { X509_free(p); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;
using Cert = std::unique_ptr<X509, X509Free>;

struct Leaf {
  Cert cert;
  Pkey key;
};

class SessionCa {
 public:
  // `hosts`: the names it may vouch for (lower case). Throws
  // std::runtime_error naming the OpenSSL step that failed.
  explicit SessionCa(const std::vector<std::string>& hosts);

  // A server certificate for `host` (one of the hosts), signed now.
  Leaf issue(std::string_view host) const;
  // The CA certificate, PEM.
  std::string certificate_pem() const;
  X509* certificate() const noexcept { return cert_.get(); }

 private:
  Pkey key_;
  Cert cert_;
};

// PEM of a certificate (for tests and the bundle).
std::string to_pem(X509* cert);

}  // namespace cagent::relay
