// dnsguard/ip.hpp: the one address/endpoint/CIDR parser of everything that
// links cagent_policy (dnsguard, cage-init, cagent, cagent-bench).
#include <doctest/doctest.h>

#include "../common/address_cases.hpp"
#include "dnsguard/ip.hpp"

using namespace cagent::dnsguard;

TEST_CASE("parse_ip agrees with the shared address table") {
  for (const auto& row : cagent::test::kAddressCases) {
    CAPTURE(row.text);
    const auto parsed = parse_ip(row.text);
    REQUIRE(parsed.has_value() == row.valid);
    if (!row.valid) continue;
    CHECK(to_string(*parsed) == row.canonical);
    CHECK(parsed->v6 == row.v6);
  }
  CHECK(parse_ip("192.0.2.1")->bytes[4] == 0);  // unused bytes stay zero (equality)
}

TEST_CASE("parse_endpoint: the forms the policy's listen and upstreams take") {
  struct Row {
    const char* text;
    const char* formatted;  // nullptr: refused
  };
  const Row rows[] = {
      {"192.0.2.1", "192.0.2.1:53"},
      {"192.0.2.1:5353", "192.0.2.1:5353"},
      {"192.0.2.53:5353", "192.0.2.53:5353"},
      {"2001:db8::1", "[2001:db8::1]:53"},
      {"[2001:db8::1]", "[2001:db8::1]:53"},
      {"[2001:db8::1]:853", "[2001:db8::1]:853"},
      {"192.0.2.1:0", "192.0.2.1:0"},  // syntax only; the policy refuses port 0
      {"", nullptr},
      {"example.com", nullptr},
      {"host.test:53", nullptr},
      {"192.0.2.1:", nullptr},
      {"192.0.2.1:65536", nullptr},
      {"192.0.2.1:99999", nullptr},
      {"[2001:db8::1", nullptr},
      {"[2001:db8::1]x", nullptr},
      {"[::1]53", nullptr},
      {"[192.0.2.1]:53", nullptr},
      {"192.0.2.256", nullptr},
  };
  for (const auto& row : rows) {
    CAPTURE(row.text);
    const auto ep = parse_endpoint(row.text, 53);
    REQUIRE(ep.has_value() == (row.formatted != nullptr));
    if (ep) CHECK(to_string(*ep) == row.formatted);
  }
  CHECK(to_string(*parse_endpoint("[2001:db8::1]:53", 1)) == "[2001:db8::1]:53");
  CHECK(parse_endpoint("2001:db8::1", 53)->port == 53);
  CHECK(parse_endpoint("192.0.2.1", 53)->addr == *parse_ip("192.0.2.1"));
}

TEST_CASE("parse_endpoint without a default port requires one") {
  CHECK(to_string(*parse_endpoint("192.0.2.53:53", std::nullopt)) == "192.0.2.53:53");
  CHECK(to_string(*parse_endpoint("[2001:db8::1]:5353", std::nullopt)) == "[2001:db8::1]:5353");
  CHECK(parse_endpoint("192.0.2.53:0", std::nullopt)->port == 0);
  for (const char* bad : {"192.0.2.53", "[2001:db8::1]", "2001:db8::1:53", "example.com:53", "192.0.2.53:70000"}) {
    CAPTURE(bad);
    CHECK_FALSE(parse_endpoint(bad, std::nullopt));
  }
}

TEST_CASE("parse_cidr: host bits refused, a bare address is a host route") {
  const auto c24 = parse_cidr("203.0.113.0/24");
  REQUIRE(c24);
  CHECK(c24->prefix == 24);
  CHECK(c24->base == *parse_ip("203.0.113.0"));
  CHECK(to_string(*c24) == "203.0.113.0/24");
  CHECK(parse_cidr("198.51.100.9")->prefix == 32);
  CHECK(parse_cidr("192.0.2.7")->prefix == 32);
  CHECK(parse_cidr("2001:db8::1")->prefix == 128);
  CHECK(parse_cidr("2001:db8::/32"));
  const auto v6 = parse_cidr("2001:db8:8000::/33");
  REQUIRE(v6);
  CHECK(v6->base.v6);
  CHECK(v6->prefix == 33);
  CHECK(v6->base.bytes[4] == 0x80);
  CHECK(v6->base.bytes[5] == 0);
  CHECK(v6->base.bytes[15] == 0);
  // Host bits below the prefix: a typo more often than not. (cage-init used
  // to clear them; the policy has one rule now, and it refuses.)
  for (const char* bad : {"203.0.113.1/24", "203.0.113.77/24", "2001:db8:ffff::1/33", "203.0.113.0/33",
                          "2001:db8::/129", "203.0.113.0/", "x/8", "203.0.113.0/8x", "/8", ""}) {
    CAPTURE(bad);
    CHECK_FALSE(parse_cidr(bad));
  }
  auto c = *parse_cidr("10.0.0.0/9");
  CHECK(contains(c, *parse_ip("10.127.255.255")));
  CHECK_FALSE(contains(c, *parse_ip("10.128.0.0")));
  CHECK_FALSE(contains(c, *parse_ip("::a00:1")));
}
