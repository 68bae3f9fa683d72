#include <doctest/doctest.h>

#include <algorithm>

#include "launcher/host/ca_bundle.hpp"
#include "tests/unit/launcher/test_util.hpp"

using namespace cagent::launcher::host;
using cagent::launcher::host::test::TempDir;

namespace {
std::string pem(const std::string& body) {
  return "-----BEGIN CERTIFICATE-----\n" + body + "\n-----END CERTIFICATE-----\n";
}
CaSource file_source(const std::filesystem::path& p) {
  return CaSource{p, false, SourcePos{"/cfg.yaml", 7, 5}};
}
template <typename F>
std::string error_of(F f) {
  try {
    f();
  } catch (const CaError& e) {
    return e.what();
  }
  return "(no error)";
}
}  // namespace

TEST_CASE("PEM extraction keeps certificates only, normalized") {
  const std::string text = "subject=CN=Corp\r\n" + pem("QUJD\r\nREVG") +
                           "-----BEGIN PRIVATE KEY-----\nc2VjcmV0\n-----END PRIVATE KEY-----\n" +
                           pem("R0hJ") + "-----BEGIN CERTIFICATE-----\nbroken, never ends";
  const auto certs = extract_pem_certificates(text);
  REQUIRE(certs.size() == 2);
  CHECK(certs[0] == pem("QUJDREVG"));
  CHECK(certs[1] == pem("R0hJ"));
  CHECK(extract_pem_certificates(pem("not base64 !!")).empty());
}

TEST_CASE("bundle: files, directories, system, dedupe") {
  TempDir t;
  const auto a = t.file("a.pem", pem("QUFB"));
  const auto b = t.file("dir/b.crt", pem("QkJC") + pem("QUFB"));  // duplicate of a
  t.file("dir/notes.txt", "ignored: not a certificate extension");
  const auto sys = t.file("system.crt", pem("U1lT"));
  const CaBundle bundle = collect_ca_bundle(
      {file_source(a), file_source(t / "dir"), CaSource{{}, true, SourcePos{"cli", 3, 0}}},
      {t / "missing.crt", sys});
  CHECK(bundle.count == 3);
  CHECK(bundle.pem == pem("QUFB") + pem("QkJC") + pem("U1lT"));
  CHECK(collect_ca_bundle({}, {sys}).empty());
}

TEST_CASE("bundle errors name the file and the config entry") {
  TempDir t;
  const auto key = t.file("id_rsa", "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n");
  CHECK(error_of([&] { collect_ca_bundle({file_source(key)}, {}); }) ==
        "/cfg.yaml:7:5: CA certificate file " + key.string() +
            " holds no PEM certificate (-----BEGIN CERTIFICATE-----)");
  const std::string missing = error_of([&] { collect_ca_bundle({file_source(t / "nope.pem")}, {}); });
  CHECK(missing.find("/cfg.yaml:7:5: CA certificate file " + (t / "nope.pem").string() +
                     " is unreadable") == 0);
  t.dir("empty");
  CHECK(error_of([&] { collect_ca_bundle({file_source(t / "empty")}, {}); }).find("has no .pem or .crt") !=
        std::string::npos);
  CHECK(error_of([&] { collect_ca_bundle({CaSource{{}, true, SourcePos{"cli", 2, 0}}}, {t / "x"}); }) ==
        "cli:2: 'system': no system CA bundle found on this host");
}
