#include "nft/logic.hpp"

#include <arpa/inet.h>
#include <sys/utsname.h>

#include <algorithm>
#include <charconv>
#include <stdexcept>
#include <string>

namespace cagent::nft {

std::optional<Address> parse_address(std::string_view text) {
  // inet_pton needs a NUL-terminated string; anything longer than the
  // longest textual IPv6 address is malformed anyway.
  char buf[INET6_ADDRSTRLEN] = {};
  if (text.empty() || text.size() >= sizeof(buf)) return std::nullopt;
  std::copy(text.begin(), text.end(), buf);
  Address a;
  if (inet_pton(AF_INET, buf, a.bytes.data()) == 1) {
    a.family = Family::v4;
    return a;
  }
  if (inet_pton(AF_INET6, buf, a.bytes.data()) == 1) {
    a.family = Family::v6;
    return a;
  }
  return std::nullopt;
}

std::string to_string(const Address& addr) {
  char buf[INET6_ADDRSTRLEN] = {};
  const int af = addr.family == Family::v4 ? AF_INET : AF_INET6;
  if (inet_ntop(af, addr.bytes.data(), buf, sizeof(buf)) == nullptr) return "?";
  return buf;
}

}  // namespace cagent::nft

namespace cagent::nft::detail {

namespace {

using Bytes = std::array<std::uint8_t, 16>;

// Adds the size of a /prefix block to the big-endian number `b`, i.e. one at
// bit `prefix - 1` counted from the most significant bit. Returns false when
// the sum overflows past the top of the address space (then the interval has
// no end element).
bool add_block(Bytes& b, unsigned prefix) {
  if (prefix == 0) return false;  // the whole space
  std::size_t byte = (prefix - 1) / 8;
  unsigned carry = 1u << (7 - (prefix - 1) % 8);
  for (std::size_t i = byte + 1; i-- > 0;) {
    const unsigned sum = b[i] + carry;
    b[i] = static_cast<std::uint8_t>(sum & 0xFF);
    carry = sum >> 8;
    if (carry == 0) return true;
  }
  return false;
}

}  // namespace

std::optional<KernelVersion> parse_kernel_version(std::string_view release) {
  KernelVersion v;
  const char* p = release.data();
  const char* end = p + release.size();
  auto r = std::from_chars(p, end, v.major);
  if (r.ec != std::errc{} || r.ptr == end || *r.ptr != '.') return std::nullopt;
  r = std::from_chars(r.ptr + 1, end, v.minor);
  if (r.ec != std::errc{}) return std::nullopt;
  if (r.ptr != end && *r.ptr != '.' && *r.ptr != '-' && *r.ptr != '+') return std::nullopt;
  return v;
}

bool kernel_updates_expiration(KernelVersion v) { return v >= KernelVersion{6, 12}; }

KernelVersion running_kernel() {
  static const KernelVersion cached = [] {
    utsname u{};
    if (uname(&u) != 0) return KernelVersion{};
    // Unparseable → 0.0, i.e. the delete + add path, which works everywhere.
    return parse_kernel_version(u.release).value_or(KernelVersion{});
  }();
  return cached;
}

std::vector<std::size_t> split_counts(std::size_t n, std::size_t max_per) {
  if (max_per == 0) throw std::invalid_argument("split_counts: max_per must be > 0");
  std::vector<std::size_t> out;
  if (n == 0) return out;
  const std::size_t messages = (n + max_per - 1) / max_per;
  const std::size_t base = n / messages;
  const std::size_t extra = n % messages;
  out.reserve(messages);
  for (std::size_t i = 0; i < messages; ++i) out.push_back(base + (i < extra ? 1 : 0));
  return out;
}

std::vector<Interval> cidr_intervals(std::span<const Cidr> cidrs, Family f) {
  const std::size_t len = address_length(f);
  std::vector<Interval> ranges;
  for (const Cidr& c : cidrs) {
    if (c.base.family != f) continue;
    if (c.prefix_len > len * 8) {
      throw std::invalid_argument("CIDR " + to_string(c.base) + "/" + std::to_string(c.prefix_len) +
                                  ": prefix longer than the address");
    }
    Interval iv;
    for (std::size_t i = 0; i < len; ++i) {
      const std::size_t bit = i * 8;
      std::uint8_t mask = 0;
      if (c.prefix_len >= bit + 8) {
        mask = 0xFF;
      } else if (c.prefix_len > bit) {
        mask = static_cast<std::uint8_t>(0xFF << (8 - (c.prefix_len - bit)));
      }
      iv.start[i] = static_cast<std::uint8_t>(c.base.bytes[i] & mask);
    }
    Bytes end = iv.start;
    if (add_block(end, c.prefix_len)) iv.end = end;
    ranges.push_back(iv);
  }
  std::sort(ranges.begin(), ranges.end(), [](const Interval& a, const Interval& b) { return a.start < b.start; });
  std::vector<Interval> merged;
  for (const Interval& iv : ranges) {
    if (!merged.empty()) {
      Interval& last = merged.back();
      // Overlapping or adjacent: [a, b) and [c, d) with c <= b merge to [a, max(b, d)).
      if (!last.end || iv.start <= *last.end) {
        if (last.end && (!iv.end || *iv.end > *last.end)) last.end = iv.end;
        continue;
      }
    }
    merged.push_back(iv);
  }
  return merged;
}

}  // namespace cagent::nft::detail
