#pragma once
// Removing resource records from a DNS message — the rare path of answers
// that carry A/AAAA records dnsguard did not insert into the set (other
// sections, off the CNAME chain, past the answer limits, filtered). A client
// that got such an address would connect and be refused; with the record
// gone it asks for the name instead, and that lookup goes through the
// allowlist and the set like any other.
//
// Removing bytes moves everything after them, so every compression pointer
// that is kept is re-targeted; a pointer into a removed record is expanded
// into labels. Names inside RDATA are followed for the RFC 1035 types that
// may be compressed (NS, CNAME, SOA, PTR, MX, …); other RDATA is copied as
// it is (RFC 3597: those must not be compressed).

#include <cstddef>
#include <cstdint>
#include <span>

namespace cagent::dnsguard {

// One resource record's bytes in a message: [start, end).
struct RrRange {
  std::uint16_t start = 0;
  std::uint16_t end = 0;
  friend bool operator==(const RrRange&, const RrRange&) = default;
};

// Writes `wire` to `out` without the records that start at the `drop`
// offsets (sorted ascending, each the start of a record after the
// question), with the header counts and compression pointers fixed. With
// `drop_ech`, SVCB/HTTPS records lose their `ech` parameter (key 5): with
// Encrypted Client Hello the server name the connection gate judges would
// not be the one the server serves. Returns the new size; 0 when `wire` is
// malformed or `out` too small.
std::size_t strip_records(std::span<const std::uint8_t> wire, std::span<const RrRange> drop,
                          std::span<std::uint8_t> out, bool drop_ech = false) noexcept;

inline constexpr std::uint16_t kSvcParamEch = 5;

}  // namespace cagent::dnsguard
