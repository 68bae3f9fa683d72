#include "address_filter.hpp"

#include <array>

namespace cagent::dnsguard {

namespace {
Cidr v4(std::uint8_t a, std::uint8_t b, std::uint8_t c, std::uint8_t d, std::uint8_t prefix) {
  Cidr cidr;
  cidr.base.bytes = {a, b, c, d};
  cidr.prefix = prefix;
  return cidr;
}
Cidr v6(std::array<std::uint8_t, 16> bytes, std::uint8_t prefix) {
  Cidr cidr;
  cidr.base.v6 = true;
  cidr.base.bytes = bytes;
  cidr.prefix = prefix;
  return cidr;
}

// Never inserted. Documentation ranges (192.0.2/24, 2001:db8::/32, …) are
// deliberately *not* here: they cannot route anywhere real, and the tests
// use them as "public" addresses.
const std::array<Cidr, 19> kSpecial = {
    v4(0, 0, 0, 0, 8),          // "this network", incl. unspecified 0.0.0.0
    v4(10, 0, 0, 0, 8),         // RFC 1918
    v4(100, 64, 0, 0, 10),      // CGNAT (RFC 6598)
    v4(127, 0, 0, 0, 8),        // loopback
    v4(169, 254, 0, 0, 16),     // link-local, incl. cloud metadata 169.254.169.254
    v4(172, 16, 0, 0, 12),      // RFC 1918
    v4(192, 0, 0, 0, 24),       // IETF protocol assignments (e.g. 192.0.0.192 metadata on some clouds)
    v4(192, 168, 0, 0, 16),     // RFC 1918
    v4(198, 18, 0, 0, 15),      // benchmarking
    v4(224, 0, 0, 0, 4),        // multicast
    v4(240, 0, 0, 0, 4),        // reserved, incl. broadcast
    v6({}, 128),                                                   // ::
    v6({0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, 128),      // ::1
    v6({0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 0, 0}, 96),  // v4-mapped: would bypass the v4 rules
    v6({0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, 96),       // v4-compatible (deprecated)
    v6({0xfc}, 7),                                                 // ULA, incl. fd00:ec2::254 (AWS metadata)
    v6({0xfe, 0x80}, 10),                                          // link-local
    v6({0xfe, 0xc0}, 10),                                          // site-local (deprecated)
    v6({0xff}, 8),                                                 // multicast
};
}  // namespace

bool is_special_purpose(const IpAddress& addr) noexcept {
  for (const auto& cidr : kSpecial)
    if (contains(cidr, addr)) return true;
  return false;
}

bool may_insert(const IpAddress& addr, std::span<const Cidr> allow_cidrs) noexcept {
  if (!is_special_purpose(addr)) return true;
  for (const auto& cidr : allow_cidrs)
    if (contains(cidr, addr)) return true;
  return false;
}

}  // namespace cagent::dnsguard
