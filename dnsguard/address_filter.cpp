#include "dnsguard/address_filter.hpp"

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
const std::array<Cidr, 21> kSpecial = {
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
    v6({0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0}, 96),             // v4-translated (SIIT)
    v6({0, 0x64, 0xff, 0x9b, 0, 1}, 48),                           // local-use NAT64 (RFC 8215): its
                                                                   // embedding is the operator's choice
    v6({0xfc}, 7),                                                 // ULA, incl. fd00:ec2::254 (AWS metadata)
    v6({0xfe, 0x80}, 10),                                          // link-local
    v6({0xfe, 0xc0}, 10),                                          // site-local (deprecated)
    v6({0xff}, 8),                                                 // multicast
};
const Cidr kNat64 = v6({0, 0x64, 0xff, 0x9b}, 96);  // 64:ff9b::/96, RFC 6052
const Cidr k6to4 = v6({0x20, 0x02}, 16);           // 2002::/16, RFC 3056
const Cidr kTeredo = v6({0x20, 0x01, 0, 0}, 32);   // 2001::/32, RFC 4380

IpAddress embedded_v4(const IpAddress& v6, std::size_t offset, std::uint8_t xor_mask = 0) {
  IpAddress a;
  for (std::size_t i = 0; i < 4; ++i) a.bytes[i] = static_cast<std::uint8_t>(v6.bytes[offset + i] ^ xor_mask);
  return a;
}

bool in_special_table(const IpAddress& addr) noexcept {
  for (const auto& cidr : kSpecial)
    if (contains(cidr, addr)) return true;
  return false;
}
}  // namespace

// IPv6 addresses that carry an IPv4 address reach that IPv4 address through
// a translator or relay: on a DNS64/NAT64 network an allowed name with a
// private A record comes back as 64:ff9b::10.0.0.1. Such an address is as
// special as the IPv4 address inside it.
bool is_special_purpose(const IpAddress& addr) noexcept {
  if (in_special_table(addr)) return true;
  if (!addr.v6) return false;
  if (contains(kNat64, addr)) return in_special_table(embedded_v4(addr, 12));
  if (contains(k6to4, addr)) return in_special_table(embedded_v4(addr, 2));
  // Teredo: the server's address in bits 32-63, the client's (obfuscated by
  // inverting every bit) in bits 96-127.
  if (contains(kTeredo, addr))
    return in_special_table(embedded_v4(addr, 4)) || in_special_table(embedded_v4(addr, 12, 0xff));
  return false;
}

bool is_loopback(const IpAddress& addr) noexcept {
  return contains(kSpecial[3], addr) || contains(kSpecial[12], addr);
}

bool may_insert(const IpAddress& addr, std::span<const Cidr> allow_cidrs) noexcept {
  if (!is_special_purpose(addr)) return true;
  for (const auto& cidr : allow_cidrs)
    if (contains(cidr, addr)) return true;
  return false;
}

}  // namespace cagent::dnsguard
