#include <doctest/doctest.h>

#include "bench/dns_wire.hpp"
#include "bench/zone.hpp"

#include <array>
#include <set>
#include <stdexcept>
#include <string>

using namespace cagent::bench;

namespace {
Zone make_zone(const char* v4 = "198.51.100.0/24", const char* v6 = "2001:db8:100::/64") {
  return Zone("bench.test", 42, *parse_prefix4(v4), *parse_prefix6(v6));
}

struct Exchange {
  std::array<std::uint8_t, 512> out{};
  std::size_t len = 0;
  std::optional<ResponseView> response;
};

Exchange ask(const Zone& zone, const std::string& name, std::uint16_t qtype, std::uint16_t id = 77) {
  std::array<std::uint8_t, 512> q{};
  const auto qlen = build_query(id, name, qtype, q);
  REQUIRE(qlen > 0);
  Exchange e;
  e.len = zone.answer(std::span<const std::uint8_t>(q.data(), qlen), e.out);
  if (e.len) e.response = parse_response(std::span<const std::uint8_t>(e.out.data(), e.len));
  return e;
}
}  // namespace

TEST_CASE("prefix parsing") {
  const auto p4 = parse_prefix4("198.51.100.0/24");
  REQUIRE(p4);
  CHECK(p4->len == 24);
  CHECK(p4->base[2] == 100);
  CHECK_FALSE(parse_prefix4("198.51.100.0"));
  CHECK_FALSE(parse_prefix4("198.51.100.0/33"));
  CHECK_FALSE(parse_prefix4("198.51.100/24"));
  CHECK_FALSE(parse_prefix4("198.51.100.0/2x"));
  CHECK_FALSE(parse_prefix4("198.51.100.7/24"));  // host bits: dnsguard's parse_cidr refuses them
  const auto p6 = parse_prefix6("2001:db8:100::/64");
  REQUIRE(p6);
  CHECK(p6->len == 64);
  CHECK_FALSE(parse_prefix6("2001:db8::/129"));
  CHECK_FALSE(parse_prefix6("198.51.100.0/24"));
}

TEST_CASE("A answers: in the prefix, stable, TTL, id and question echoed") {
  const auto zone = make_zone();
  const auto e = ask(zone, "host-1.BENCH.test", kTypeA, 0x4242);
  REQUIRE(e.response);
  const auto& r = *e.response;
  CHECK(r.id == 0x4242);
  CHECK(r.rcode == Rcode::noerror);
  CHECK((r.flags & 0x0400) != 0);  // AA
  CHECK((r.flags & 0x0100) != 0);  // RD copied
  REQUIRE(r.address_count == 1);
  CHECK_FALSE(r.addresses[0].v6);
  CHECK(r.addresses[0].bytes[0] == 198);
  CHECK(r.addresses[0].bytes[1] == 51);
  CHECK(r.addresses[0].bytes[2] == 100);
  CHECK(r.addresses[0].bytes[3] != 0);
  CHECK(r.addresses[0].bytes[3] != 255);
  // TTL sits right before RDLENGTH at the end of the answer.
  const std::size_t ttl_at = e.len - 4 - 2 - 4;
  CHECK(e.out[ttl_at + 3] == 42);
  // The same name (any case) maps to the same address.
  const auto again = ask(zone, "HOST-1.bench.test", kTypeA);
  REQUIRE(again.response);
  CHECK(again.response->addresses[0].bytes == r.addresses[0].bytes);
}

TEST_CASE("names spread over the prefix") {
  const auto zone = make_zone();
  std::set<int> last_octets;
  for (int i = 0; i < 2000; ++i) {
    const auto e = ask(zone, "n" + std::to_string(i) + ".bench.test", kTypeA);
    REQUIRE(e.response);
    REQUIRE(e.response->address_count == 1);
    last_octets.insert(e.response->addresses[0].bytes[3]);
  }
  CHECK(last_octets.size() > 200);  // of 254 possible
  CHECK(last_octets.count(0) == 0);
  CHECK(last_octets.count(255) == 0);
}

TEST_CASE("AAAA answers lie in the v6 prefix") {
  const auto zone = make_zone();
  const auto e = ask(zone, "x.bench.test", kTypeAAAA);
  REQUIRE(e.response);
  REQUIRE(e.response->address_count == 1);
  const auto& a = e.response->addresses[0];
  CHECK(a.v6);
  const std::array<std::uint8_t, 8> top{0x20, 0x01, 0x0d, 0xb8, 0x01, 0x00, 0, 0};
  CHECK(std::equal(top.begin(), top.end(), a.bytes.begin()));
}

TEST_CASE("narrow prefixes keep the prefix bits") {
  const auto zone = make_zone("203.0.113.128/30", "2001:db8::/127");
  for (int i = 0; i < 50; ++i) {
    const auto e = ask(zone, "n" + std::to_string(i) + ".bench.test", kTypeA);
    REQUIRE(e.response);
    const auto last = e.response->addresses[0].bytes[3];
    CHECK((last == 129 || last == 130));  // host part 1 or 2 of a /30
  }
}

TEST_CASE("outside the zone: REFUSED: the apex and deep names: answered: other types: NODATA") {
  const auto zone = make_zone();
  const auto outside = ask(zone, "example.com", kTypeA);
  REQUIRE(outside.response);
  CHECK(outside.response->rcode == Rcode::refused);
  CHECK(outside.response->address_count == 0);
  // "xbench.test" is not below "bench.test": label boundaries matter.
  const auto lookalike = ask(zone, "xbench.test", kTypeA);
  REQUIRE(lookalike.response);
  CHECK(lookalike.response->rcode == Rcode::refused);
  const auto apex = ask(zone, "bench.test", kTypeA);
  REQUIRE(apex.response);
  CHECK(apex.response->address_count == 1);
  const auto deep = ask(zone, "a.b.c.bench.test", kTypeA);
  REQUIRE(deep.response);
  CHECK(deep.response->address_count == 1);
  const auto mx = ask(zone, "a.bench.test", 15);
  REQUIRE(mx.response);
  CHECK(mx.response->rcode == Rcode::noerror);
  CHECK(mx.response->answer_count == 0);
}

TEST_CASE("garbage is dropped, small output buffers are refused") {
  const auto zone = make_zone();
  std::array<std::uint8_t, 512> out{};
  const std::array<std::uint8_t, 5> junk{1, 2, 3, 4, 5};
  CHECK(zone.answer(junk, out) == 0);
  std::array<std::uint8_t, 512> q{};
  const auto qlen = build_query(1, "a.bench.test", kTypeAAAA, q);
  std::array<std::uint8_t, 40> tiny{};
  CHECK(zone.answer(std::span<const std::uint8_t>(q.data(), qlen), tiny) == 0);
  CHECK_THROWS_AS(Zone("a..b", 1, *parse_prefix4("192.0.2.0/24"), *parse_prefix6("2001:db8::/64")),
                  std::invalid_argument);
}
