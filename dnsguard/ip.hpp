#pragma once
// IP addresses, endpoints and CIDRs as the session policy and dnsguard's
// address filter see them: plain bytes in network order, no socket types, so
// the pure steps stay testable without Asio.
//
// The one textual address parser for everything that may link dnsguard/'s
// leaf library `cagent_policy` (dnsguard, cage-init, cagent, cagent-bench).
// nft/ keeps its own parse_address because nft/ links nothing of ours; both
// are tested against one table (tests/unit/common/address_cases.hpp).

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace cagent::dnsguard {

struct IpAddress {
  bool v6 = false;
  std::array<std::uint8_t, 16> bytes{};  // v4 uses bytes[0..3]
  friend bool operator==(const IpAddress&, const IpAddress&) = default;
};

struct IpEndpoint {
  IpAddress addr;
  std::uint16_t port = 53;
  friend bool operator==(const IpEndpoint&, const IpEndpoint&) = default;
};

struct Cidr {
  IpAddress base;           // host bits are zero after parse_cidr
  std::uint8_t prefix = 0;  // 0..32 (v4) or 0..128 (v6)
  friend bool operator==(const Cidr&, const Cidr&) = default;
};

// "192.0.2.1", "2001:db8::1" (no brackets, no scope ids).
std::optional<IpAddress> parse_ip(std::string_view text);
// "192.0.2.1:53", "[2001:db8::1]:53"; without a port, `default_port`, and
// when that is nullopt a port is required (then a bare IPv6 address, whose
// last group could be mistaken for a port, is refused too). Ports 0-65535:
// callers that need a real port check for 0 themselves.
std::optional<IpEndpoint> parse_endpoint(std::string_view text,
                                         std::optional<std::uint16_t> default_port);
// "203.0.113.0/24", "2001:db8::/32"; a bare address is a host route.
// Host bits set below the prefix are rejected (a typo more often than not).
std::optional<Cidr> parse_cidr(std::string_view text);

bool contains(const Cidr& cidr, const IpAddress& addr) noexcept;
std::string to_string(const IpAddress& addr);
std::string to_string(const IpEndpoint& ep);  // "192.0.2.1:53", "[2001:db8::1]:53"
std::string to_string(const Cidr& cidr);       // "203.0.113.0/24"

}  // namespace cagent::dnsguard
