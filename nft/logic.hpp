#pragma once
// Pure decisions of the nft layer, kept apart from netlink I/O so they can be
// unit-tested without a kernel: kernel version parsing, the per-address
// expiry bookkeeping, batch splitting arithmetic and CIDR → interval set
// elements.

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "nft/nft.hpp"

namespace cagent::nft::detail {

struct KernelVersion {
  int major = 0;
  int minor = 0;
  friend auto operator<=>(const KernelVersion&, const KernelVersion&) = default;
};

// Parses the leading "X.Y" of a uname release ("6.18.44-fc-v769").
std::optional<KernelVersion> parse_kernel_version(std::string_view release);

// Since 6.12 a NEWSETELEM for an existing element may carry an explicit
// NFTA_SET_ELEM_EXPIRATION that resets its remaining time; before that, a
// re-add without NLM_F_EXCL is silently ignored and only delete + add
// refreshes.
bool kernel_updates_expiration(KernelVersion v);

// The running kernel, read once per process (uname does not change).
KernelVersion running_kernel();

constexpr std::size_t address_length(Family f) { return f == Family::v4 ? 4 : 16; }

// 127.0.0.0/8 or ::1: an address served from inside the network namespace.
constexpr bool is_loopback(const Address& a) {
  if (a.family == Family::v4) return a.bytes[0] == 127;
  for (std::size_t i = 0; i < 15; ++i)
    if (a.bytes[i] != 0) return false;
  return a.bytes[15] == 1;
}

// The refused sets' key (RulesetSpec::refused_set4/6): destination address
// . l4proto . destination port, each part in whole 32-bit registers (the
// kernel zero-pads the one-byte protocol and the two-byte port).
constexpr std::uint32_t refused_key_len(Family f) { return f == Family::v4 ? 12 : 24; }
// nft's type id of that concatenation (only `nft list` reads it): each part
// shifted in by 6 bits — ipv4_addr (7) / ipv6_addr (8), inet_proto (12),
// inet_service (13).
constexpr std::uint32_t refused_key_type(Family f) { return ((f == Family::v4 ? 7u : 8u) << 12) | (12u << 6) | 13u; }

struct AddressHash {
  std::size_t operator()(const Address& a) const noexcept {
    std::uint64_t lo = 0;
    std::uint64_t hi = 0;
    std::memcpy(&lo, a.bytes.data(), 8);
    std::memcpy(&hi, a.bytes.data() + 8, 8);
    // Two odd multipliers mix both halves; the family decides the last bit.
    std::uint64_t h = lo * 0x9E3779B97F4A7C15ULL ^ (hi + static_cast<std::uint64_t>(a.family)) * 0xC2B2AE3D27D4EB4FULL;
    return static_cast<std::size_t>(h ^ (h >> 29));
  }
};

using Clock = std::chrono::steady_clock;

enum class ElementAction : std::uint8_t {
  skip,     // the kernel already holds the address at least that long
  add,      // not in the kernel (unknown to us, or surely expired): create
  refresh,  // surely in the kernel, but the requested expiry is later: move it upward
  replace,  // the kernel may or may not still hold it (at its expiry): see below
};

// What the updater remembers per address is the expiry it *promised*: the
// kernel holds the element `set_grace` longer (nft.hpp). Around the
// kernel's own expiry, user space cannot know whether the element is still
// there: the kernel counts in jiffies from the moment it committed, we count
// from before we sent. Within `expiry_uncertainty` of that moment a refresh
// must work either way: on kernels before 6.12 a delete of an element that
// has just expired fails the whole transaction (ENOENT), and an add of one
// that has not is silently ignored, leaving the old, imminent expiry while
// we believe the new one. Nothing relies on such an element any more (every
// promise ended `set_grace` earlier), so it is deleted on its own (ENOENT
// tolerated) and then added.
inline constexpr std::chrono::milliseconds expiry_uncertainty{1000};

// `promised` is the expiry we last promised for the address (nullptr: none);
// `floor` <= `requested` are promises asked for now. Expiries only ever move
// upward: an address already promised until `floor` is skipped, and the
// caller then relies only on the remembered promise.
constexpr ElementAction decide(const Clock::time_point* promised, Clock::time_point floor,
                               Clock::time_point requested, Clock::time_point now) {
  if (promised == nullptr) return ElementAction::add;
  if (*promised >= floor || requested <= *promised) return ElementAction::skip;
  const Clock::time_point kernel_expiry = *promised + set_grace;
  if (kernel_expiry - now > expiry_uncertainty) return ElementAction::refresh;
  if (now - kernel_expiry > expiry_uncertainty) return ElementAction::add;
  return ElementAction::replace;
}

// Without a floor: exactly `requested` or later.
constexpr ElementAction decide(const Clock::time_point* promised, Clock::time_point requested,
                               Clock::time_point now) {
  return decide(promised, requested, requested, now);
}

// Elements per NEWSETELEM message: far below the ~64 KiB a netlink attribute
// nest can describe (u16 length) even for IPv6 with timeout + expiration.
inline constexpr std::size_t max_elements_per_message = 1000;

// Sizes of the messages that carry `n` elements, at most `max_per` each,
// as evenly filled as possible (e.g. 2500 / 1000 → 834, 833, 833).
std::vector<std::size_t> split_counts(std::size_t n, std::size_t max_per);

// Upper bound of the bytes one element occupies in a NEWSETELEM/DELSETELEM
// message (nests, key, timeout, expiration), used to reserve buffer room.
inline constexpr std::size_t max_element_bytes = 64;

// One range of an interval set: [start, end); no end means "up to the top
// of the address space" (the kernel represents that by omitting the end
// element).
struct Interval {
  std::array<std::uint8_t, 16> start{};
  std::optional<std::array<std::uint8_t, 16>> end;
  friend bool operator==(const Interval&, const Interval&) = default;
};

// The CIDRs of family `f`, host bits cleared, sorted, with overlapping and
// adjacent ranges merged (the kernel rejects overlapping intervals).
// Throws std::invalid_argument for a prefix longer than the address.
std::vector<Interval> cidr_intervals(std::span<const Cidr> cidrs, Family f);

}  // namespace cagent::nft::detail
