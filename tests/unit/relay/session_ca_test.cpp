#include <doctest/doctest.h>

#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include <memory>

#include "launcher/relay/session_ca.hpp"

using namespace cagent::relay;

namespace {

// OpenSSL's own verification of `leaf` against `ca` alone, for `host`.
int verify(const SessionCa& ca, X509* leaf, const std::string& host) {
  std::unique_ptr<X509_STORE, decltype(&X509_STORE_free)> store(X509_STORE_new(), X509_STORE_free);
  X509_STORE_add_cert(store.get(), ca.certificate());
  std::unique_ptr<X509_STORE_CTX, decltype(&X509_STORE_CTX_free)> ctx(X509_STORE_CTX_new(), X509_STORE_CTX_free);
  X509_STORE_CTX_init(ctx.get(), store.get(), leaf, nullptr);
  X509_VERIFY_PARAM* param = X509_STORE_CTX_get0_param(ctx.get());
  X509_VERIFY_PARAM_set1_host(param, host.c_str(), host.size());
  X509_VERIFY_PARAM_set_purpose(param, X509_PURPOSE_SSL_SERVER);
  if (X509_verify_cert(ctx.get()) == 1) return X509_V_OK;
  return X509_STORE_CTX_get_error(ctx.get());
}

}  // namespace

TEST_CASE("session CA: its leaf verifies for the host it was issued for") {
  const SessionCa ca({"api.anthropic.test", "github.test"});
  const Leaf leaf = ca.issue("api.anthropic.test");
  CHECK(verify(ca, leaf.cert.get(), "api.anthropic.test") == X509_V_OK);
  // Wrong host for that leaf.
  CHECK(verify(ca, leaf.cert.get(), "github.test") == X509_V_ERR_HOSTNAME_MISMATCH);
  CHECK(ca.certificate_pem().rfind("-----BEGIN CERTIFICATE-----", 0) == 0);
}

TEST_CASE("session CA: name constraints keep it from vouching for any other site") {
  const SessionCa ca({"api.anthropic.test"});
  // The control: a permitted name verifies.
  CHECK(verify(ca, ca.issue("api.anthropic.test").cert.get(), "api.anthropic.test") == X509_V_OK);
  // A leaf the same key signed for another name fails the CA's constraints.
  const Leaf other = ca.issue("evil.test");
  CHECK(verify(ca, other.cert.get(), "evil.test") == X509_V_ERR_PERMITTED_VIOLATION);
  CHECK_THROWS_WITH_AS(SessionCa({}), "session CA: no host to vouch for", std::runtime_error);
}

TEST_CASE("session CA: two sessions have two different keys") {
  const SessionCa a({"h.test"});
  const SessionCa b({"h.test"});
  CHECK(a.certificate_pem() != b.certificate_pem());
  // b's leaf is not trusted by a's certificate.
  CHECK(verify(a, b.issue("h.test").cert.get(), "h.test") != X509_V_OK);
}
