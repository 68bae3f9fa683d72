// Unit tests for the kernel-free decisions of nft/ (nft/logic.hpp).
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <cerrno>
#include <numeric>
#include <stdexcept>
#include <string>

#include "../common/address_cases.hpp"
#include "nft/logic.hpp"
#include "nft/nft.hpp"

using namespace cagent::nft;
using namespace cagent::nft::detail;

namespace {

Address addr(const char* text) {
  auto a = parse_address(text);
  REQUIRE(a.has_value());
  return *a;
}

std::array<std::uint8_t, 16> bytes(const char* text) { return addr(text).bytes; }

Cidr cidr(const char* text, std::uint8_t len) { return Cidr{addr(text), len}; }

}  // namespace

TEST_CASE("parse_kernel_version reads major.minor of a uname release") {
  CHECK(parse_kernel_version("6.18.44-fc-v769") == KernelVersion{6, 18});
  CHECK(parse_kernel_version("5.10.0-23-amd64") == KernelVersion{5, 10});
  CHECK(parse_kernel_version("6.12") == KernelVersion{6, 12});
  CHECK(parse_kernel_version("6.1-rc3") == KernelVersion{6, 1});
  CHECK_FALSE(parse_kernel_version("").has_value());
  CHECK_FALSE(parse_kernel_version("6").has_value());
  CHECK_FALSE(parse_kernel_version("linux").has_value());
  CHECK_FALSE(parse_kernel_version("6.x").has_value());
  CHECK_FALSE(parse_kernel_version("6.12abc").has_value());
}

TEST_CASE("explicit expiration refresh needs kernel 6.12") {
  CHECK_FALSE(kernel_updates_expiration({5, 15}));
  CHECK_FALSE(kernel_updates_expiration({6, 11}));
  CHECK(kernel_updates_expiration({6, 12}));
  CHECK(kernel_updates_expiration({6, 18}));
  CHECK(kernel_updates_expiration({7, 0}));
  CHECK_FALSE(kernel_updates_expiration({}));  // unknown kernel → delete + add
}

TEST_CASE("decide: expiries only move upward") {
  const Clock::time_point t0{std::chrono::seconds(1000)};
  CHECK(decide(nullptr, t0, t0) == ElementAction::add);
  const Clock::time_point remembered = t0 + std::chrono::seconds(60);
  CHECK(decide(&remembered, t0, t0) == ElementAction::skip);                          // shorter
  CHECK(decide(&remembered, remembered, t0) == ElementAction::skip);                  // same
  CHECK(decide(&remembered, remembered + std::chrono::nanoseconds(1), t0) == ElementAction::refresh);
  CHECK(decide(&remembered, t0 + std::chrono::seconds(3600), t0) == ElementAction::refresh);
}

TEST_CASE("decide: around the kernel's expiry (promise + grace) a refresh is a replace") {
  using namespace std::chrono_literals;
  const Clock::time_point promised{std::chrono::seconds(1000)};
  const Clock::time_point kernel_expiry = promised + cagent::nft::set_grace;
  const auto at = [&](Clock::time_point now) { return decide(&promised, now + 60s, now); };
  // Surely still in the kernel: the atomic refresh (delete + add in one batch
  // before 6.12) is safe.
  CHECK(at(promised - 10s) == ElementAction::refresh);
  CHECK(at(kernel_expiry - expiry_uncertainty - 1ms) == ElementAction::refresh);
  // Within the uncertainty on either side: present or not, it must work.
  CHECK(at(kernel_expiry - expiry_uncertainty) == ElementAction::replace);
  CHECK(at(kernel_expiry) == ElementAction::replace);
  CHECK(at(kernel_expiry + expiry_uncertainty) == ElementAction::replace);
  // Surely gone: a plain add.
  CHECK(at(kernel_expiry + expiry_uncertainty + 1ms) == ElementAction::add);
  CHECK(at(kernel_expiry + 1h) == ElementAction::add);
  // The grace is real: the kernel outlives every promise by it.
  CHECK(cagent::nft::set_grace >= 1s);
  CHECK(expiry_uncertainty < cagent::nft::set_grace);
}

TEST_CASE("split_counts keeps every message within the bound and loses nothing") {
  CHECK(split_counts(0, 1000).empty());
  CHECK(split_counts(1, 1000) == std::vector<std::size_t>{1});
  CHECK(split_counts(1000, 1000) == std::vector<std::size_t>{1000});
  CHECK(split_counts(1001, 1000) == std::vector<std::size_t>{501, 500});
  CHECK(split_counts(2500, 1000) == std::vector<std::size_t>{834, 833, 833});
  for (std::size_t n : {1u, 7u, 999u, 1000u, 1001u, 9999u, 10000u, 10001u, 65536u}) {
    const auto parts = split_counts(n, max_elements_per_message);
    CAPTURE(n);
    CHECK(std::accumulate(parts.begin(), parts.end(), std::size_t{0}) == n);
    CHECK(parts.size() == (n + max_elements_per_message - 1) / max_elements_per_message);
    for (std::size_t p : parts) CHECK((p >= 1 && p <= max_elements_per_message));
  }
  CHECK_THROWS_AS(split_counts(5, 0), std::invalid_argument);
}

TEST_CASE("an element fits its byte bound even for IPv6 with timeout and expiration") {
  // elem nest + key nest + 16-byte value + timeout + expiration, each with a 4-byte header.
  const std::size_t ipv6_element = 4 + 4 + (4 + 16) + (4 + 8) + (4 + 8);
  CHECK(ipv6_element <= max_element_bytes);
  // A full message still fits a netlink attribute length (u16).
  CHECK(max_elements_per_message * max_element_bytes < 65535);
}

TEST_CASE("cidr_intervals: host bits cleared, end exclusive") {
  const Cidr c[] = {cidr("192.0.2.77", 24)};
  const auto iv = cidr_intervals(c, Family::v4);
  REQUIRE(iv.size() == 1);
  CHECK(iv[0].start == bytes("192.0.2.0"));
  REQUIRE(iv[0].end.has_value());
  CHECK(*iv[0].end == bytes("192.0.3.0"));
}

TEST_CASE("cidr_intervals: carries across bytes, /32 and /128") {
  const Cidr c[] = {cidr("198.51.100.255", 32), cidr("2001:db8:ffff:ffff::", 64), cidr("2001:db8::1", 128)};
  const auto v4 = cidr_intervals(c, Family::v4);
  REQUIRE(v4.size() == 1);
  CHECK(*v4[0].end == bytes("198.51.101.0"));
  const auto v6 = cidr_intervals(c, Family::v6);
  REQUIRE(v6.size() == 2);
  CHECK(v6[0].start == bytes("2001:db8::1"));
  CHECK(*v6[0].end == bytes("2001:db8::2"));
  CHECK(v6[1].start == bytes("2001:db8:ffff:ffff::"));
  CHECK(*v6[1].end == bytes("2001:db9::"));
}

TEST_CASE("cidr_intervals: overlapping and adjacent ranges merge, others stay apart") {
  const Cidr c[] = {cidr("203.0.113.128", 25), cidr("198.51.100.0", 24), cidr("203.0.113.0", 25),
                    cidr("198.51.100.7", 32), cidr("192.0.2.0", 24)};
  const auto iv = cidr_intervals(c, Family::v4);
  REQUIRE(iv.size() == 3);
  CHECK(iv[0].start == bytes("192.0.2.0"));
  CHECK(*iv[0].end == bytes("192.0.3.0"));
  CHECK(iv[1].start == bytes("198.51.100.0"));
  CHECK(*iv[1].end == bytes("198.51.101.0"));
  CHECK(iv[2].start == bytes("203.0.113.0"));
  CHECK(*iv[2].end == bytes("203.0.114.0"));
}

TEST_CASE("cidr_intervals: ranges reaching the top of the space have no end element") {
  const Cidr c[] = {cidr("255.255.255.0", 24), cidr("0.0.0.0", 0)};
  const auto iv = cidr_intervals(c, Family::v4);
  REQUIRE(iv.size() == 1);  // /0 swallows the other
  CHECK(iv[0].start == bytes("0.0.0.0"));
  CHECK_FALSE(iv[0].end.has_value());
  const Cidr top[] = {cidr("ffff::", 16)};
  const auto v6 = cidr_intervals(top, Family::v6);
  REQUIRE(v6.size() == 1);
  CHECK_FALSE(v6[0].end.has_value());
}

TEST_CASE("cidr_intervals: filters by family and rejects impossible prefixes") {
  const Cidr c[] = {cidr("192.0.2.0", 24)};
  CHECK(cidr_intervals(c, Family::v6).empty());
  const Cidr bad4[] = {cidr("192.0.2.0", 33)};
  CHECK_THROWS_AS(cidr_intervals(bad4, Family::v4), std::invalid_argument);
  const Cidr bad6[] = {cidr("2001:db8::", 129)};
  CHECK_THROWS_AS(cidr_intervals(bad6, Family::v6), std::invalid_argument);
}

TEST_CASE("parse_address and to_string round-trip, malformed input is refused") {
  // The table dnsguard's parse_ip is held to as well.
  for (const auto& row : cagent::test::kAddressCases) {
    CAPTURE(row.text);
    const auto parsed = parse_address(row.text);
    REQUIRE(parsed.has_value() == row.valid);
    if (!row.valid) continue;
    CHECK(to_string(*parsed) == row.canonical);
    CHECK(parsed->family == (row.v6 ? Family::v6 : Family::v4));
  }
  CHECK(addr("192.0.2.1").family == Family::v4);
  CHECK(addr("2001:db8::1").family == Family::v6);
  CHECK(addr("192.0.2.1").bytes[4] == 0);  // unused bytes stay zero (equality, hashing)
}

TEST_CASE("AddressHash: equal addresses hash equal, families differ") {
  AddressHash h;
  CHECK(h(addr("192.0.2.1")) == h(addr("192.0.2.1")));
  Address v4 = addr("192.0.2.1");
  Address v6 = v4;
  v6.family = Family::v6;
  CHECK_FALSE(v4 == v6);
  CHECK(h(v4) != h(v6));
}

TEST_CASE("NetlinkError says what, why and what the kernel said") {
  const NetlinkError e("add elements to inet cagent: add elements to set allow4", ENOENT, "kernel: no such set");
  CHECK(e.error() == ENOENT);
  CHECK(e.operation() == "add elements to inet cagent: add elements to set allow4");
  const std::string what = e.what();
  CHECK(what.find("add elements to set allow4") != std::string::npos);
  CHECK(what.find("No such file or directory") != std::string::npos);
  CHECK(what.find("kernel: no such set") != std::string::npos);
  CHECK(what.find('\n') == std::string::npos);  // one line
}

TEST_CASE("decide with a floor: held at least the floor is enough") {
  using cagent::nft::detail::Clock;
  using cagent::nft::detail::decide;
  using cagent::nft::detail::ElementAction;
  const Clock::time_point t{std::chrono::seconds(1000)};
  const Clock::time_point held = t + std::chrono::seconds(100);
  CHECK(decide(nullptr, t + std::chrono::seconds(50), t + std::chrono::seconds(200), t) == ElementAction::add);
  CHECK(decide(&held, t + std::chrono::seconds(50), t + std::chrono::seconds(200), t) == ElementAction::skip);
  CHECK(decide(&held, t + std::chrono::seconds(100), t + std::chrono::seconds(200), t) == ElementAction::skip);
  CHECK(decide(&held, t + std::chrono::seconds(101), t + std::chrono::seconds(200), t) == ElementAction::refresh);
  // floor == requested is the exact rule.
  CHECK(decide(&held, t + std::chrono::seconds(150), t + std::chrono::seconds(150), t) ==
        decide(&held, t + std::chrono::seconds(150), t));
  CHECK(decide(&held, t + std::chrono::seconds(90), t + std::chrono::seconds(90), t) == ElementAction::skip);
}
