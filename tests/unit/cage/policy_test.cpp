// cage-init's side of the policy: read with dnsguard's schema
// (dnsguard/policy.hpp; its parsers are tested in tests/unit/dnsguard, the
// contract between writer and readers in tests/unit/policy), converted to
// nft types in one place.
#include <doctest/doctest.h>

#include "launcher/cage/policy.hpp"

using namespace cagent;

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
nft::Endpoint endpoint(const char* text) { return cage::to_nft(*dnsguard::parse_endpoint(text, 53)); }
}  // namespace

TEST_CASE("to_nft and format_endpoint keep address, family and port") {
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
    CHECK(cage::format_endpoint(endpoint(row.text)) == row.formatted);
  }
  CHECK(endpoint("192.0.2.1").addr == v4(192, 0, 2, 1));
  CHECK(endpoint("2001:db8::1").addr.family == nft::Family::v6);
  const auto cidr = cage::to_nft(*dnsguard::parse_cidr("2001:db8:8000::/33"));
  CHECK(cidr.base.family == nft::Family::v6);
  CHECK(cidr.prefix_len == 33);
  CHECK(cidr.base.bytes[4] == 0x80);
  CHECK(cage::to_nft(*dnsguard::parse_port_range("5000-5010/udp")) == nft::InboundPort{17, 5000, 5010});
  CHECK(cage::to_nft(*dnsguard::parse_port_range("9/sctp")) == nft::InboundPort{132, 9, 9});
}

TEST_CASE("read_policy reads the keys cage-init acts on") {
  const auto policy = cage::read_policy(data + "/policy-full.toml");
  CHECK(policy.path == data + "/policy-full.toml");
  REQUIRE(policy.listen.size() == 2);
  CHECK(policy.listen[0].port == 5353);
  REQUIRE(policy.upstreams.size() == 2);
  CHECK(cage::format_endpoint(cage::to_nft(policy.upstreams[1])) == "[2001:db8::53]:5300");
  REQUIRE(policy.allow_cidrs.size() == 2);
  CHECK(cage::to_nft(policy.allow_cidrs[0]).base == v4(203, 0, 113, 0));
  CHECK(policy.nft_table == "t1");
  CHECK(policy.nft_set4 == "a4");
  CHECK(policy.nft_set6 == "a6");
  CHECK(policy.log_file == "/tmp/cagent-log/dnsguard.log");
  std::vector<nft::InboundPort> inbound;
  for (const auto& range : policy.inbound) inbound.push_back(cage::to_nft(range));
  CHECK(inbound == std::vector<nft::InboundPort>{{6, 8080, 8080}, {17, 6000, 6010}});
}

TEST_CASE("read_policy defaults match the policy contract (cmd/README.md)") {
  const auto policy = cage::read_policy(data + "/policy-minimal.toml");
  CHECK(policy.upstreams.empty());
  REQUIRE(policy.listen.size() == 1);
  CHECK(cage::format_endpoint(cage::to_nft(policy.listen[0])) == "127.0.0.1:53");
  CHECK(policy.nft_table == "cagent");
  CHECK(policy.nft_set4 == "allow4");
  CHECK(policy.nft_set6 == "allow6");
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
    CHECK(error.kind() == cage::PolicyError::Kind::invalid);  // step check-policy
  }
  try {
    cage::read_policy(data + "/policy-syntax.toml");
    FAIL("no error");
  } catch (const cage::PolicyError& error) {
    CHECK(std::string(error.what()).find("policy-syntax.toml:") != std::string::npos);
    CHECK(error.kind() == cage::PolicyError::Kind::unreadable);  // step read-policy
  }
  CHECK_THROWS_AS(cage::read_policy(data + "/does-not-exist.toml"), cage::PolicyError);
}
