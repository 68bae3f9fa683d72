#include <doctest/doctest.h>

#include <string>

#include "dnsguard/config.hpp"

using namespace cagent::dnsguard;

namespace {
Config load(const std::string& text, std::vector<IpEndpoint> defaults = {}) {
  return normalize(parse_policy(text, "test.toml"), defaults);
}
std::string error_of(const std::string& text) {
  try {
    load(text, {*parse_endpoint("192.0.2.1", 53)});
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}
}  // namespace

TEST_CASE("the contract config parses") {
  auto c = load(R"(
listen    = ["127.0.0.1:53", "[::1]:53"]
upstreams = ["192.0.2.53:53"]
allow     = ["github.com", "*.githubusercontent.com"]
deny_rcode = "refused"
allow_cidrs = ["203.0.113.0/24", "2001:db8::/32"]
[ttl]
min = 30
max = 3600
[refresh]
interval = 60
[cache]
size = 10000
[nft]
table = "cagent"
set4 = "allow4"
set6 = "allow6"
[log]
file = "/var/log/cagent/dnsguard.log"
level = "info"
)");
  CHECK(c.listen.size() == 2);
  CHECK(c.listen[1].addr.v6);
  CHECK(to_string(c.upstreams.at(0)) == "192.0.2.53:53");
  CHECK(c.allow == std::vector<std::string>{"github.com", "*.githubusercontent.com"});
  CHECK(c.deny_rcode == DenyRcode::refused);
  CHECK(c.allow_cidrs.size() == 2);
  CHECK(c.ttl_min == 30);
  CHECK(c.ttl_max == 3600);
  CHECK(c.cache_size == 10000);
  CHECK(c.log_file == "/var/log/cagent/dnsguard.log");
}

TEST_CASE("defaults and resolv.conf upstreams") {
  auto resolv = parse_resolv_conf("# c\nsearch x\nnameserver 192.0.2.9\nnameserver 2001:db8::9\n"
                                  "nameserver fe80::1%eth0\noptions ndots:1\n");
  REQUIRE(resolv.size() == 2);
  auto c = load("", resolv);
  CHECK(c.upstreams == resolv);
  CHECK(c.deny_rcode == DenyRcode::nxdomain);
  CHECK(c.refresh_interval == 60);
  CHECK(c.cache_size == 10000);
  CHECK(c.allow.empty());
  CHECK_THROWS_WITH_AS(load("", {}), doctest::Contains("upstreams"), ConfigError);
}

TEST_CASE("every bad key is named, with file and line") {
  struct Row {
    const char* text;
    const char* expect;
  };
  const Row rows[] = {
      {"bogus = 1", "test.toml:1: bogus: unknown key"},
      {"\n\n[ttl]\nmin = 1\nmaxx = 3", "test.toml:5: ttl.maxx: unknown key"},
      {"[colour]\nred = 1", "test.toml:1: colour: unknown key"},
      {"listen = \"127.0.0.1:53\"", "listen: must be an array of strings"},
      {"listen = []", "listen: must not be empty"},
      {"listen = [\"localhost:53\"]", "listen: 'localhost:53'"},
      {"upstreams = [1]", "upstreams: must be an array of strings"},
      {"upstreams = [\"192.0.2.1:70000\"]", "upstreams: '192.0.2.1:70000'"},
      {"allow = [\"*.*.test\"]", "allow: '*.*.test'"},
      {"allow = [\"a_b c.test\"]", "allow: 'a_b c.test'"},
      {"allow_cidrs = [\"10.0.0.1/8\"]", "allow_cidrs: '10.0.0.1/8'"},
      {"deny_rcode = \"servfail\"", "deny_rcode: must be"},
      {"deny_rcode = 3", "deny_rcode: must be a string"},
      {"[ttl]\nmin = 0", "test.toml:2: ttl.min: must be between 1"},
      {"[ttl]\nmin = 60\nmax = 30", "ttl.max: must be >= ttl.min"},
      {"[ttl]\nmax = \"1h\"", "ttl.max: must be an integer"},
      {"[refresh]\ninterval = -1", "refresh.interval: must be between 0"},
      {"[cache]\nsize = -5", "cache.size: must be between 0"},
      {"[nft]\ntable = \"a b\"", "nft.table: 'a b' is not a valid nft name"},
      {"[nft]\nset4 = \"\"", "nft.set4"},
      {"[log]\nlevel = \"loud\"", "log.level: must be"},
      {"[log]\nfile = \"\"", "log.file: must not be empty"},
      {"ttl = 5", "ttl: must be a table"},
      {"allow = [\"a.test\"", "test.toml:1:"},  // TOML syntax error, with position
  };
  for (const auto& row : rows) {
    CAPTURE(row.text);
    auto msg = error_of(row.text);
    CHECK(msg.find(row.expect) != std::string::npos);
    CHECK(msg.find('\n') == std::string::npos);  // one line
    CHECK(msg.rfind("test.toml:", 0) == 0);
  }
}

TEST_CASE("the example error in config.hpp's header is what dnsguard says") {
  CHECK_THROWS_WITH_AS(parse_policy("\n\n[ttl]\nmin = 0\n", "dnsguard.toml"),
                       "dnsguard.toml:4: ttl.min: must be between 1 and 604800, got 0", ConfigError);
}
