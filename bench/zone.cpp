#include "bench/zone.hpp"

#include "bench/dns_wire.hpp"

#include <algorithm>
#include <cstring>
#include <stdexcept>

#include "dnsguard/ip.hpp"

namespace cagent::bench {

namespace {

std::uint8_t ascii_lower(std::uint8_t c) noexcept {
  return (c >= 'A' && c <= 'Z') ? static_cast<std::uint8_t>(c + ('a' - 'A')) : c;
}

// Fills the host bits (those past `prefix_len`) of `bytes` from `hash`,
// avoiding the all-zero and all-ones host parts where there is room (so no
// address is a network or broadcast address of the prefix).
template <std::size_t N>
void fill_host_bits(std::array<std::uint8_t, N>& bytes, std::uint8_t prefix_len, std::uint64_t hash) noexcept {
  const unsigned host_bits = static_cast<unsigned>(N * 8) - prefix_len;
  if (host_bits == 0) return;
  const unsigned usable = host_bits > 62 ? 62 : host_bits;
  std::uint64_t host;
  if (usable >= 2) {
    const std::uint64_t span = (std::uint64_t{1} << usable) - 2;
    host = 1 + hash % span;
  } else {
    host = hash & 1;
  }
  // Write `host` into the low `usable` bits, leaving the prefix bits as given.
  for (unsigned bit = 0; bit < usable; ++bit) {
    const std::size_t byte = N - 1 - bit / 8;
    const auto mask = static_cast<std::uint8_t>(1u << (bit % 8));
    if ((host >> bit) & 1)
      bytes[byte] = static_cast<std::uint8_t>(bytes[byte] | mask);
    else
      bytes[byte] = static_cast<std::uint8_t>(bytes[byte] & ~mask);
  }
  // Host bits above the 62 we use stay as in the base; clear them so the
  // address always lies inside the prefix whatever the base said.
  for (unsigned bit = usable; bit < host_bits; ++bit) {
    const std::size_t byte = N - 1 - bit / 8;
    bytes[byte] = static_cast<std::uint8_t>(bytes[byte] & ~(1u << (bit % 8)));
  }
}

}  // namespace

// Through dnsguard's parser (the one every cagent binary uses); the
// benchmark insists on an explicit /LEN, and host bits are refused.
std::optional<Prefix4> parse_prefix4(std::string_view text) {
  const auto cidr = dnsguard::parse_cidr(text);
  if (text.find('/') == std::string_view::npos || !cidr || cidr->base.v6) return std::nullopt;
  Prefix4 p;
  std::copy_n(cidr->base.bytes.begin(), p.base.size(), p.base.begin());
  p.len = cidr->prefix;
  return p;
}

std::optional<Prefix6> parse_prefix6(std::string_view text) {
  const auto cidr = dnsguard::parse_cidr(text);
  if (text.find('/') == std::string_view::npos || !cidr || !cidr->base.v6) return std::nullopt;
  Prefix6 p;
  p.base = cidr->base.bytes;
  p.len = cidr->prefix;
  return p;
}

std::uint64_t name_hash(std::span<const std::uint8_t> wire_name) noexcept {
  std::uint64_t h = 0xcbf29ce484222325ull;
  for (const std::uint8_t c : wire_name) {
    h ^= ascii_lower(c);
    h *= 0x100000001b3ull;
  }
  return h;
}

Zone::Zone(std::string_view zone, std::uint32_t ttl, Prefix4 v4, Prefix6 v6) : ttl_(ttl), v4_(v4), v6_(v6) {
  zone_len_ = encode_name(zone, zone_wire_);
  if (zone_len_ == 0) throw std::invalid_argument("zone '" + std::string(zone) + "' is not a valid DNS name");
  for (std::size_t i = 0; i < zone_len_; ++i) zone_wire_[i] = ascii_lower(zone_wire_[i]);
}

bool Zone::contains(std::span<const std::uint8_t> name) const noexcept {
  // Walk the label boundaries of `name`; the zone must match a whole suffix.
  std::size_t pos = 0;
  while (pos < name.size()) {
    if (name.size() - pos == zone_len_) {
      bool same = true;
      for (std::size_t i = 0; i < zone_len_ && same; ++i) same = ascii_lower(name[pos + i]) == zone_wire_[i];
      if (same) return true;
    }
    if (name[pos] == 0) break;
    pos += 1u + name[pos];
  }
  return false;
}

std::array<std::uint8_t, 4> Zone::address4(std::span<const std::uint8_t> name) const noexcept {
  auto bytes = v4_.base;
  fill_host_bits(bytes, v4_.len, name_hash(name));
  return bytes;
}

std::array<std::uint8_t, 16> Zone::address6(std::span<const std::uint8_t> name) const noexcept {
  auto bytes = v6_.base;
  fill_host_bits(bytes, v6_.len, name_hash(name));
  return bytes;
}

std::size_t Zone::answer(std::span<const std::uint8_t> query, std::span<std::uint8_t> out) const noexcept {
  const auto q = parse_query(query);
  if (!q) return 0;
  const std::size_t question_len = q->question.end - kHeaderSize;
  // Header + question + one answer of at most 12 + 16 bytes.
  if (out.size() < kHeaderSize + question_len + 28) return 0;

  Rcode rcode = Rcode::noerror;
  std::size_t rdlen = 0;
  std::uint16_t rtype = q->question.qtype;
  if (q->question.qclass != kClassIN || !contains(q->question.name)) {
    rcode = Rcode::refused;
  } else if (rtype == kTypeA) {
    rdlen = 4;
  } else if (rtype == kTypeAAAA) {
    rdlen = 16;
  }

  // Header: same id, QR|AA, RD copied, RA clear (we are authoritative).
  const auto flags = static_cast<std::uint16_t>(0x8400 | (q->flags & 0x0100) | static_cast<std::uint16_t>(rcode));
  out[0] = static_cast<std::uint8_t>(q->id >> 8);
  out[1] = static_cast<std::uint8_t>(q->id & 0xff);
  out[2] = static_cast<std::uint8_t>(flags >> 8);
  out[3] = static_cast<std::uint8_t>(flags & 0xff);
  const std::uint8_t counts[8] = {0, 1, 0, rdlen ? std::uint8_t{1} : std::uint8_t{0}, 0, 0, 0, 0};
  std::memcpy(out.data() + 4, counts, sizeof counts);
  std::memcpy(out.data() + kHeaderSize, query.data() + kHeaderSize, question_len);
  std::size_t pos = kHeaderSize + question_len;
  if (rdlen == 0) return pos;

  const std::uint8_t record[10] = {0xc0, 0x0c,  // pointer to the question name
                                   static_cast<std::uint8_t>(rtype >> 8), static_cast<std::uint8_t>(rtype & 0xff),
                                   0, 1,
                                   static_cast<std::uint8_t>(ttl_ >> 24), static_cast<std::uint8_t>(ttl_ >> 16),
                                   static_cast<std::uint8_t>(ttl_ >> 8), static_cast<std::uint8_t>(ttl_)};
  std::memcpy(out.data() + pos, record, sizeof record);
  pos += sizeof record;
  out[pos++] = 0;
  out[pos++] = static_cast<std::uint8_t>(rdlen);
  if (rdlen == 4) {
    const auto a = address4(q->question.name);
    std::memcpy(out.data() + pos, a.data(), 4);
  } else {
    const auto a = address6(q->question.name);
    std::memcpy(out.data() + pos, a.data(), 16);
  }
  return pos + rdlen;
}

}  // namespace cagent::bench
