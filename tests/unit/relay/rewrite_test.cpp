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

TEST_CASE("rewrite: a placeholder goes only into credential headers, never where a server could send it back") {
  // The control: the credential headers take it.
  for (const char* name : {"Authorization", "Proxy-Authorization", "X-Api-Key", "api-key"}) {
    CAPTURE(name);
    const auto v = check_and_rewrite(head({{"Host", "api.anthropic.test"}, {name, "cagent-secret-anthropic-AAAA"}}),
                                     "api.anthropic.test", kSecrets);
    CHECK(v.forward);
    CHECK(v.head.find("sk-real-anthropic") != std::string::npos);
  }
  // Reflected headers (a request id echoed), the target, a header name,
  // a Basic user name: refused, nothing forwarded.
  const std::vector<std::pair<RequestHead, std::string>> refused = {
      {head({{"Host", "api.anthropic.test"}, {"X-Request-Id", "cagent-secret-anthropic-AAAA"}}),
       "a placeholder in header X-Request-Id: only Authorization, Proxy-Authorization, X-Api-Key and Api-Key (and a "
       "Basic password) carry a secret"},
      {head({{"Host", "api.anthropic.test"}}, "/x?k=cagent-secret-anthropic-AAAA"),
       "a placeholder in the request target: only Authorization, Proxy-Authorization, X-Api-Key and Api-Key (and a "
       "Basic password) carry a secret"},
      {head({{"Host", "api.anthropic.test"}, {"X-cagent-secret-anthropic-AAAA", "1"}}),
       "a placeholder in a header name: only Authorization, Proxy-Authorization, X-Api-Key and Api-Key (and a "
       "Basic password) carry a secret"},
      {head({{"Host", "github.test"}, {"Authorization", "Basic " + base64_encode("cagent-secret-github-BBBB:x")}}),
       "a placeholder in a Basic user name: only Authorization, Proxy-Authorization, X-Api-Key and Api-Key (and a "
       "Basic password) carry a secret"},
  };
  for (const auto& [h, why] : refused) {
    CAPTURE(why);
    const auto v = check_and_rewrite(h, h.find("host")->find("github") != std::string_view::npos ? "github.test"
                                                                                                : "api.anthropic.test",
                                     kSecrets);
    CHECK_FALSE(v.forward);
    CHECK(v.reason == why);
    CHECK(v.head.empty());
  }
  // Another host's placeholder there is named as what it is.
  const auto other = check_and_rewrite(head({{"Host", "api.anthropic.test"}}, "/x?k=cagent-secret-github-BBBB"),
                                       "api.anthropic.test", kSecrets);
  CHECK_FALSE(other.forward);
  CHECK(other.reason == "secret github sent to api.anthropic.test");
}

TEST_CASE("rewrite: TRACE, odd request targets and forwarding headers are refused on a secret host's connection") {
  RequestHead trace = head({{"Host", "api.anthropic.test"}, {"Authorization", "Bearer cagent-secret-anthropic-AAAA"}});
  trace.method = "TRACE";
  CHECK(check_and_rewrite(trace, "api.anthropic.test", kSecrets).reason ==
        "TRACE is not relayed on a secret host's connection");
  for (const char* target : {"//evil.test/x", "evil.test:443", "https://api.anthropic.test//evil.test/", "x", "*"}) {
    CAPTURE(target);
    const auto v = check_and_rewrite(head({{"Host", "api.anthropic.test"}}, target), "api.anthropic.test", kSecrets);
    CHECK_FALSE(v.forward);
    CHECK(v.reason.find("a request target the relay does not take") == 0);
  }
  RequestHead options = head({{"Host", "api.anthropic.test"}}, "*");
  options.method = "OPTIONS";
  CHECK(check_and_rewrite(options, "api.anthropic.test", kSecrets).forward);
  for (const char* name : {"Forwarded", "X-Forwarded-Host"}) {
    CAPTURE(name);
    CHECK(check_and_rewrite(head({{"Host", "api.anthropic.test"}, {name, "evil.test"}}), "api.anthropic.test", kSecrets)
              .reason == "forwarding headers are not relayed on a secret host's connection");
  }
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
