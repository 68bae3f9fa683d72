#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "launcher/relay/rewrite.hpp"

using namespace cagent::relay;

namespace {

const std::vector<Secret> kSecrets = {
    {"anthropic", "cagent-secret-anthropic-AAAA", "sk-real-anthropic", {"api.anthropic.test"}},
    {"github", "cagent-secret-github-BBBB", "ghp_realgithub", {"api.github.test", "github.test"}},
};

RequestHead head(std::vector<Header> headers, std::string target = "/v1/messages") {
  RequestHead h;
  h.method = "POST";
  h.target = std::move(target);
  h.version = "HTTP/1.1";
  h.headers = std::move(headers);
  return h;
}

}  // namespace

TEST_CASE("rewrite: a placeholder becomes the value on its own host, and only there") {
  const auto v = check_and_rewrite(
      head({{"Host", "api.anthropic.test"}, {"x-api-key", "cagent-secret-anthropic-AAAA"}}), "api.anthropic.test",
      kSecrets);
  REQUIRE(v.forward);
  CHECK(v.head == "POST /v1/messages HTTP/1.1\r\nHost: api.anthropic.test\r\nx-api-key: sk-real-anthropic\r\n\r\n");
  CHECK(v.used == std::vector<std::string>{"anthropic"});

  // Bearer, twice in one value, port 443 in Host.
  const auto b = check_and_rewrite(
      head({{"Host", "API.Anthropic.test:443"},
            {"Authorization", "Bearer cagent-secret-anthropic-AAAA cagent-secret-anthropic-AAAA"}}),
      "api.anthropic.test", kSecrets);
  REQUIRE(b.forward);
  CHECK(b.head.find("Authorization: Bearer sk-real-anthropic sk-real-anthropic\r\n") != std::string::npos);

  // The same placeholder on another secret host's connection: refused, named.
  const auto other = check_and_rewrite(
      head({{"Host", "api.github.test"}, {"x-api-key", "cagent-secret-anthropic-AAAA"}}), "api.github.test", kSecrets);
  CHECK_FALSE(other.forward);
  CHECK(other.reason == "secret anthropic sent to api.github.test");
  CHECK(other.secret == "anthropic");
  CHECK(other.host == "api.github.test");
  CHECK(other.head.empty());
}

TEST_CASE("rewrite: Basic credentials are decoded, replaced and encoded again") {
  // git sends "x-access-token:<placeholder>" as Basic.
  const std::string creds = base64_encode("x-access-token:cagent-secret-github-BBBB");
  const auto v =
      check_and_rewrite(head({{"Host", "github.test"}, {"Authorization", "Basic " + creds}}, "/o/r.git/info/refs"),
                        "github.test", kSecrets);
  REQUIRE(v.forward);
  CHECK(v.head.find("Authorization: Basic " + base64_encode("x-access-token:ghp_realgithub") + "\r\n") !=
        std::string::npos);
  // Basic with a placeholder of another host's secret: refused.
  const auto bad = check_and_rewrite(
      head({{"Host", "github.test"}, {"Authorization", "basic " + base64_encode("u:cagent-secret-anthropic-AAAA")}}),
      "github.test", kSecrets);
  CHECK_FALSE(bad.forward);
  CHECK(bad.reason == "secret anthropic sent to github.test");
  // Basic credentials without a placeholder pass unchanged.
  const auto plain = check_and_rewrite(
      head({{"Host", "github.test"}, {"Authorization", "Basic " + base64_encode("me:pass")}}), "github.test", kSecrets);
  REQUIRE(plain.forward);
  CHECK(plain.head.find("Authorization: Basic " + base64_encode("me:pass")) != std::string::npos);
  CHECK(plain.used.empty());
}

TEST_CASE("rewrite: a request for another site on a secret host's connection is refused") {
  const auto v = check_and_rewrite(
      head({{"Host", "evil.test"}, {"Authorization", "Bearer cagent-secret-anthropic-AAAA"}}), "api.anthropic.test",
      kSecrets);
  CHECK_FALSE(v.forward);
  CHECK(v.reason == "secret anthropic sent to evil.test");
  CHECK(v.host == "evil.test");
  const auto no_secret = check_and_rewrite(head({{"Host", "evil.test"}}), "api.anthropic.test", kSecrets);
  CHECK_FALSE(no_secret.forward);
  CHECK(no_secret.reason == "a request for evil.test on api.anthropic.test's connection");
  CHECK(no_secret.secret.empty());

  const std::vector<std::pair<std::vector<Header>, std::string>> refused = {
      {{}, "a request without Host"},
      {{{"Host", "api.anthropic.test"}, {"Host", "api.anthropic.test"}}, "more than one Host header"},
      {{{"Host", "api.anthropic.test:8443"}}, "a malformed Host"},
      {{{"Host", "user@api.anthropic.test"}}, "a malformed Host"},
      {{{"Host", "api.anthropic.test."}}, "a malformed Host"},
      {{{"Host", "api.anthropic.test"}, {"Upgrade", "websocket"}},
       "protocol upgrades are not relayed on a secret host's connection"},
  };
  for (const auto& [headers, why] : refused) {
    CAPTURE(why);
    const auto r = check_and_rewrite(head(headers), "api.anthropic.test", kSecrets);
    CHECK_FALSE(r.forward);
    CHECK(r.reason == why);
  }
  // Absolute-form targets must name the same site.
  CHECK_FALSE(check_and_rewrite(head({{"Host", "api.anthropic.test"}}, "https://evil.test/x"), "api.anthropic.test",
                                kSecrets)
                  .forward);
  CHECK(check_and_rewrite(head({{"Host", "api.anthropic.test"}}, "https://api.anthropic.test/x"), "api.anthropic.test",
                          kSecrets)
            .forward);
}

TEST_CASE("rewrite: placeholders outside header values are not replaced, and one for another host is refused") {
  // In the target: sent as it is (worthless), not replaced.
  const auto own = check_and_rewrite(head({{"Host", "api.anthropic.test"}}, "/x?k=cagent-secret-anthropic-AAAA"),
                                     "api.anthropic.test", kSecrets);
  REQUIRE(own.forward);
  CHECK(own.head.find("/x?k=cagent-secret-anthropic-AAAA ") != std::string::npos);
  CHECK(own.head.find("sk-real") == std::string::npos);
  const auto other = check_and_rewrite(head({{"Host", "api.anthropic.test"}}, "/x?k=cagent-secret-github-BBBB"),
                                       "api.anthropic.test", kSecrets);
  CHECK_FALSE(other.forward);
  CHECK(other.reason == "secret github sent to api.anthropic.test");
}

TEST_CASE("rewrite: CONNECT is refused") {
  RequestHead h = head({{"Host", "api.anthropic.test"}}, "api.anthropic.test:443");
  h.method = "CONNECT";
  CHECK(check_and_rewrite(h, "api.anthropic.test", kSecrets).reason == "CONNECT is not relayed");
}

TEST_CASE("base64: OpenSSL's coder round-trips and refuses what is not base64") {
  for (const std::string& s : std::vector<std::string>{"a", "ab", "abc", "abcd", std::string("\0\xff\x10", 3)}) {
    CHECK(base64_decode(base64_encode(s)) == std::optional<std::string>(s));
  }
  CHECK(base64_encode("x-access-token:t") == "eC1hY2Nlc3MtdG9rZW46dA==");
  CHECK_FALSE(base64_decode("abc"));
  CHECK_FALSE(base64_decode("ab!d"));
  CHECK_FALSE(base64_decode(""));
}
