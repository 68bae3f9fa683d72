#pragma once
// bench/zone — the synthetic zone of the fake upstream: turns one query into
// one answer, in place, with no allocation (pure; the I/O loop lives in
// server.cpp).
//
// Every name at or below the zone gets exactly one A (or AAAA) record whose
// address is a hash of the lowercased name inside the configured prefix, so
// the same name always maps to the same address and different names spread
// over the prefix. Names outside the zone get REFUSED; other types NODATA.

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace cagent::bench {

struct Prefix4 {
  std::array<std::uint8_t, 4> base{};
  std::uint8_t len = 24;
};

struct Prefix6 {
  std::array<std::uint8_t, 16> base{};
  std::uint8_t len = 64;
};

// "198.51.100.0/24", "2001:db8:100::/64"; nullopt when malformed.
std::optional<Prefix4> parse_prefix4(std::string_view text);
std::optional<Prefix6> parse_prefix6(std::string_view text);

class Zone {
 public:
  // Throws std::invalid_argument naming the zone when it does not encode.
  Zone(std::string_view zone, std::uint32_t ttl, Prefix4 v4, Prefix6 v6);

  // Writes the response to `query` into `out` and returns its length; 0 means
  // drop (not a query we answer). `out` should hold at least 512 bytes;
  // answers never exceed the question + 12 + 28 bytes.
  std::size_t answer(std::span<const std::uint8_t> query, std::span<std::uint8_t> out) const noexcept;

  // The address a name maps to (exposed for tests and for the clients that
  // want to check the data they got).
  std::array<std::uint8_t, 4> address4(std::span<const std::uint8_t> wire_name) const noexcept;
  std::array<std::uint8_t, 16> address6(std::span<const std::uint8_t> wire_name) const noexcept;

  bool contains(std::span<const std::uint8_t> wire_name) const noexcept;

 private:
  std::array<std::uint8_t, 256> zone_wire_{};
  std::size_t zone_len_ = 0;
  std::uint32_t ttl_;
  Prefix4 v4_;
  Prefix6 v6_;
};

// FNV-1a over the lowercased bytes; stable across runs and machines.
std::uint64_t name_hash(std::span<const std::uint8_t> wire_name) noexcept;

}  // namespace cagent::bench
