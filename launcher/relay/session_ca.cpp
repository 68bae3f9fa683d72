#include "launcher/relay/session_ca.hpp"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include <stdexcept>

namespace cagent::relay {
namespace {

[[noreturn]] void fail(std::string_view step) {
  const unsigned long code = ERR_get_error();
  char text[256] = "no OpenSSL error";
  if (code != 0) ERR_error_string_n(code, text, sizeof text);
  ERR_clear_error();
  throw std::runtime_error("session CA: " + std::string(step) + ": " + text);
}

void check(int ok, std::string_view step) {
  if (ok != 1) fail(step);
}

Pkey new_key() {
  Pkey key(EVP_EC_gen("P-256"));
  if (!key) fail("EC key generation");
  return key;
}

// A random positive 127-bit serial, as the CA/Browser rules ask.
void set_serial(X509* cert) {
  unsigned char bytes[16];
  check(RAND_bytes(bytes, sizeof bytes), "random serial");
  bytes[0] &= 0x7f;
  std::unique_ptr<BIGNUM, decltype(&BN_free)> bn(BN_bin2bn(bytes, sizeof bytes, nullptr), BN_free);
  if (!bn || !BN_to_ASN1_INTEGER(bn.get(), X509_get_serialNumber(cert))) fail("serial");
}

void set_validity(X509* cert) {
  if (!X509_gmtime_adj(X509_getm_notBefore(cert), -3600) || !X509_gmtime_adj(X509_getm_notAfter(cert), 30L * 24 * 3600)) {
    fail("validity");
  }
}

void set_name(X509_NAME* name, std::string_view common_name) {
  check(X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8, reinterpret_cast<const unsigned char*>("cagent"), -1, -1, 0),
        "name");
  check(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                   reinterpret_cast<const unsigned char*>(std::string(common_name).c_str()), -1, -1, 0),
        "name");
}

// One extension from OpenSSL's own configuration syntax.
void add_extension(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  std::unique_ptr<X509_EXTENSION, decltype(&X509_EXTENSION_free)> ext(
      X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str()), X509_EXTENSION_free);
  if (!ext) fail(std::string("extension ") + OBJ_nid2sn(nid));
  check(X509_add_ext(cert, ext.get(), -1), "add extension");
}

}  // namespace

std::string to_pem(X509* cert) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), BIO_free);
  if (!bio || PEM_write_bio_X509(bio.get(), cert) != 1) fail("PEM");
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(n));
}

SessionCa::SessionCa(const std::vector<std::string>& hosts) : key_(new_key()), cert_(X509_new()) {
  if (!cert_) fail("X509_new");
  if (hosts.empty()) throw std::runtime_error("session CA: no host to vouch for");
  X509* c = cert_.get();
  check(X509_set_version(c, 2), "version");
  set_serial(c);
  set_validity(c);
  set_name(X509_get_subject_name(c), "cagent session CA (secrets relay)");
  check(X509_set_issuer_name(c, X509_get_subject_name(c)), "issuer");
  check(X509_set_pubkey(c, key_.get()), "public key");
  add_extension(c, c, NID_basic_constraints, "critical,CA:TRUE,pathlen:0");
  add_extension(c, c, NID_key_usage, "critical,keyCertSign,cRLSign");
  add_extension(c, c, NID_subject_key_identifier, "hash");
  std::string permitted = "critical";
  for (const std::string& host : hosts) permitted += ",permitted;DNS:" + host;
  add_extension(c, c, NID_name_constraints, permitted);
  if (X509_sign(c, key_.get(), EVP_sha256()) == 0) fail("sign");
}

Leaf SessionCa::issue(std::string_view host) const {
  Leaf leaf{Cert(X509_new()), new_key()};
  if (!leaf.cert) fail("X509_new");
  X509* c = leaf.cert.get();
  check(X509_set_version(c, 2), "version");
  set_serial(c);
  set_validity(c);
  set_name(X509_get_subject_name(c), host);
  check(X509_set_issuer_name(c, X509_get_subject_name(cert_.get())), "issuer");
  check(X509_set_pubkey(c, leaf.key.get()), "public key");
  add_extension(c, cert_.get(), NID_basic_constraints, "critical,CA:FALSE");
  add_extension(c, cert_.get(), NID_key_usage, "critical,digitalSignature");
  add_extension(c, cert_.get(), NID_ext_key_usage, "serverAuth");
  add_extension(c, cert_.get(), NID_authority_key_identifier, "keyid:always");
  add_extension(c, cert_.get(), NID_subject_alt_name, "DNS:" + std::string(host));
  if (X509_sign(c, key_.get(), EVP_sha256()) == 0) fail("sign");
  return leaf;
}

std::string SessionCa::certificate_pem() const { return to_pem(cert_.get()); }

}  // namespace cagent::relay
