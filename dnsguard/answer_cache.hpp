#pragma once
// AnswerCache: upstream answers keyed by (lowercase name, type), bounded by
// count and by the bytes of the answers it keeps, with LRU eviction. Entries
// are the answer's wire bytes with TTLs already capped at ttl.max, plus when
// they were stored — nothing else, so 10 000 typical entries stay within a
// few MiB. An answer may be up to 64 KiB (over TCP), so the count alone
// would let 10 000 large answers of allowed names take 640 MiB; the byte
// bound (kMaxBytes) keeps the worst case where the typical one is. The
// caller re-analyzes the bytes on a hit (cheap) to count TTLs down and to
// re-assert the set entries.
//
// Time is passed in by the caller (no clock inside), so expiry and the
// countdown are unit-testable without sleeping.

#include <array>
#include <chrono>
#include <cstdint>
#include <list>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "dnsguard/message.hpp"

namespace cagent::dnsguard {

class AnswerCache {
 public:
  using Clock = std::chrono::steady_clock;

  struct Hit {
    std::span<const std::uint8_t> wire;
    std::uint32_t elapsed_s;  // whole seconds since stored, rounded *up*
  };

  // Answer bytes kept at most (the wire bytes of every entry; the keys and
  // the bookkeeping add at most ~400 bytes per entry on top).
  static constexpr std::size_t kMaxBytes = 16u << 20;

  explicit AnswerCache(std::size_t capacity, std::size_t max_bytes = kMaxBytes)
      : capacity_(capacity), max_bytes_(max_bytes) {}

  // The entry for (qname, qtype) if it is still alive at `now` (every TTL
  // handed out from it would be >= 1 s). Expired entries are dropped here.
  // The span stays valid until the next store()/lookup().
  std::optional<Hit> lookup(const WireName& qname, std::uint16_t qtype, Clock::time_point now);

  // `lifetime_s`: the smallest (capped) TTL in the answer; 0 is not stored.
  void store(const WireName& qname, std::uint16_t qtype, std::span<const std::uint8_t> wire,
             std::uint32_t lifetime_s, Clock::time_point now);

  std::size_t size() const noexcept { return index_.size(); }
  std::size_t bytes() const noexcept { return bytes_; }

 private:
  struct Entry {
    std::string key;
    std::vector<std::uint8_t> wire;
    Clock::time_point stored;
    std::uint32_t lifetime_s;
  };
  // Canonical wire name + type, built on the stack: a lookup allocates nothing.
  struct KeyBuf {
    std::array<char, 257> bytes;
    std::size_t size;
    std::string_view view() const noexcept { return {bytes.data(), size}; }
  };
  static KeyBuf make_key(const WireName& qname, std::uint16_t qtype) noexcept;

  void drop_oldest() noexcept;

  std::size_t capacity_;
  std::size_t max_bytes_;
  std::size_t bytes_ = 0;  // the wire bytes of every entry
  std::list<Entry> lru_;  // front: most recently used
  // Keys are views of Entry::key: list nodes never move, and an index entry
  // is erased before (or together with) the node it points into.
  std::unordered_map<std::string_view, std::list<Entry>::iterator> index_;
};

}  // namespace cagent::dnsguard
