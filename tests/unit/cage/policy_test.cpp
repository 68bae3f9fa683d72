#include <doctest/doctest.h>

#include "launcher/cage/policy.hpp"

using namespace cagent;
using cagent::cage::parse_cidr;
using cagent::cage::parse_endpoint;

namespace {
nft::Address v4(std::uint8_t a, std::uint8_t b, std::uint8_t c, std::uint8_t d) {
  nft::Address address;
  address.bytes[0] = a;
  address.bytes[1] = b;
  address.bytes[2] = c;
  address.bytes[3] = d;
  return address;
}
const std::string data = CAGE_TEST_DATA;
}  // namespace

TEST_CASE("parse_endpoint accepts the forms dnsguard's config uses") {
  struct Row {
    const char* text;
    const char* formatted;
  };
  const Row rows[] = {
      {"192.0.2.1", "192.0.2.1:53"},
      {"192.0.2.1:5353", "192.0.2.1:5353"},
      {"2001:db8::1", "[2001:db8::1]:53"},
      {"[2001:db8::1]", "[2001:db8::1]:53"},
      {"[2001:db8::1]:853", "[2001:db8::1]:853"},
  };
  for (const auto& row : rows) {
    CAPTURE(row.text);
    CHECK(cage::format_endpoint(parse_endpoint(row.text)) == row.formatted);
  }
  CHECK(parse_endpoint("192.0.2.1").addr == v4(192, 0, 2, 1));
}

TEST_CASE("parse_endpoint rejects junk with the text in the message") {
  for (const char* bad : {"", "example.com", "192.0.2.1:", "192.0.2.1:0", "192.0.2.1:65536", "[2001:db8::1",
                          "[2001:db8::1]x", "192.0.2.256"}) {
    CAPTURE(bad);
    CHECK_THROWS_AS(parse_endpoint(bad), std::invalid_argument);
  }
}

TEST_CASE("parse_cidr clears host bits and defaults to a host prefix") {
  const auto cidr = parse_cidr("203.0.113.77/24");
  CHECK(cidr.prefix_len == 24);
  CHECK(cidr.base == v4(203, 0, 113, 0));
  CHECK(parse_cidr("198.51.100.9").prefix_len == 32);
  const auto v6 = parse_cidr("2001:db8:ffff::1/33");
  CHECK(v6.base.family == nft::Family::v6);
  CHECK(v6.prefix_len == 33);
  CHECK(v6.base.bytes[4] == 0x80);
  CHECK(v6.base.bytes[5] == 0);
  CHECK(v6.base.bytes[15] == 0);
  CHECK(parse_cidr("2001:db8::1").prefix_len == 128);
  for (const char* bad : {"203.0.113.0/33", "2001:db8::/129", "203.0.113.0/", "x/8", "203.0.113.0/8x"}) {
    CAPTURE(bad);
    CHECK_THROWS_AS(parse_cidr(bad), std::invalid_argument);
  }
}

TEST_CASE("parse_resolv_conf keeps nameservers in order and skips the rest") {
  const auto servers = cage::parse_resolv_conf(
      "# generated\nsearch example.com\nnameserver 192.0.2.53\noptions ndots:0\n"
      "nameserver   2001:db8::53  \nnameserver fe80::1%eth0\nnameserver\nnameserver 198.51.100.53");
  REQUIRE(servers.size() == 3);
  CHECK(cage::format_endpoint(servers[0]) == "192.0.2.53:53");
  CHECK(cage::format_endpoint(servers[1]) == "[2001:db8::53]:53");
  CHECK(cage::format_endpoint(servers[2]) == "198.51.100.53:53");
  CHECK(cage::parse_resolv_conf("").empty());
}

TEST_CASE("read_policy reads the keys cage-init acts on") {
  const auto policy = cage::read_policy(data + "/policy-full.toml");
  REQUIRE(policy.listen.size() == 2);
  CHECK(policy.listen[0].port == 5353);
  REQUIRE(policy.upstreams.size() == 2);
  CHECK(cage::format_endpoint(policy.upstreams[1]) == "[2001:db8::53]:5300");
  REQUIRE(policy.allow_cidrs.size() == 2);
  CHECK(policy.allow_cidrs[0].base == v4(203, 0, 113, 0));
  CHECK(policy.table == "t1");
  CHECK(policy.set4 == "a4");
  CHECK(policy.set6 == "a6");
  CHECK(policy.log_file == "/tmp/cagent-log/dnsguard.log");
  CHECK(policy.inbound == std::vector<nft::InboundPort>{{6, 8080, 8080}, {17, 6000, 6010}});
}

TEST_CASE("parse_inbound_port: PORT[-PORT]/PROTO, nothing else") {
  CHECK(cage::parse_inbound_port("80/tcp") == nft::InboundPort{6, 80, 80});
  CHECK(cage::parse_inbound_port("53/udp") == nft::InboundPort{17, 53, 53});
  CHECK(cage::parse_inbound_port("9/sctp") == nft::InboundPort{132, 9, 9});
  CHECK(cage::parse_inbound_port("5000-5010/tcp") == nft::InboundPort{6, 5000, 5010});
  for (const char* bad : {"80", "80/icmp", "0/tcp", "65536/tcp", "x/tcp", "90-80/tcp", "80-/tcp",
                          "/tcp", "80 /tcp", "-1/tcp", "80/TCP"}) {
    CAPTURE(bad);
    CHECK_THROWS_AS(cage::parse_inbound_port(bad), std::invalid_argument);
  }
}

TEST_CASE("read_policy defaults match DESIGN.md") {
  const auto policy = cage::read_policy(data + "/policy-minimal.toml");
  CHECK(policy.upstreams.empty());
  REQUIRE(policy.listen.size() == 1);
  CHECK(cage::format_endpoint(policy.listen[0]) == "127.0.0.1:53");
  CHECK(policy.table == "cagent");
  CHECK(policy.set4 == "allow4");
  CHECK(policy.set6 == "allow6");
  CHECK(policy.log_file == "/var/log/cagent/dnsguard.log");
  CHECK(policy.inbound.empty());  // nothing comes in unless published
}

TEST_CASE("read_policy errors name the file, line and key") {
  try {
    cage::read_policy(data + "/policy-bad-upstream.toml");
    FAIL("no error");
  } catch (const cage::PolicyError& error) {
    const std::string what = error.what();
    CHECK(what.find("policy-bad-upstream.toml:2") != std::string::npos);
    CHECK(what.find("upstreams") != std::string::npos);
  }
  try {
    cage::read_policy(data + "/policy-syntax.toml");
    FAIL("no error");
  } catch (const cage::PolicyError& error) {
    CHECK(std::string(error.what()).find("policy-syntax.toml:") != std::string::npos);
  }
  CHECK_THROWS_AS(cage::read_policy(data + "/does-not-exist.toml"), cage::PolicyError);
}
