#include "dnsguard/answer_cache.hpp"

#include <cstring>

namespace cagent::dnsguard {

AnswerCache::KeyBuf AnswerCache::make_key(const WireName& qname, std::uint16_t qtype) noexcept {
  KeyBuf key;
  std::memcpy(key.bytes.data(), qname.bytes.data(), qname.size);
  key.bytes[qname.size] = static_cast<char>(qtype >> 8);
  key.bytes[qname.size + 1] = static_cast<char>(qtype & 0xFF);
  key.size = qname.size + 2;
  return key;
}

std::optional<AnswerCache::Hit> AnswerCache::lookup(const WireName& qname, std::uint16_t qtype,
                                                    Clock::time_point now) {
  if (capacity_ == 0) return std::nullopt;
  const KeyBuf key = make_key(qname, qtype);
  auto it = index_.find(key.view());
  if (it == index_.end()) return std::nullopt;
  auto entry = it->second;
  auto age = now - entry->stored;
  // Rounded up: a client must never be told a TTL longer than what is left,
  // and the set entry was sized for lifetime_s from the moment of storing.
  auto elapsed_ms = std::chrono::duration_cast<std::chrono::milliseconds>(age).count();
  auto elapsed = static_cast<std::uint64_t>(elapsed_ms < 0 ? 0 : (elapsed_ms + 999) / 1000);
  if (elapsed >= entry->lifetime_s) {
    index_.erase(it);  // first: its key views the node's string
    bytes_ -= entry->wire.size();
    lru_.erase(entry);
    return std::nullopt;
  }
  lru_.splice(lru_.begin(), lru_, entry);
  return Hit{entry->wire, static_cast<std::uint32_t>(elapsed)};
}

void AnswerCache::drop_oldest() noexcept {
  index_.erase(std::string_view(lru_.back().key));  // first: its key views the node's string
  bytes_ -= lru_.back().wire.size();
  lru_.pop_back();
}

void AnswerCache::store(const WireName& qname, std::uint16_t qtype,
                        std::span<const std::uint8_t> wire, std::uint32_t lifetime_s,
                        Clock::time_point now) {
  if (capacity_ == 0 || lifetime_s == 0) return;
  const KeyBuf key = make_key(qname, qtype);
  if (auto it = index_.find(key.view()); it != index_.end()) {
    // Out first (its bytes counted again below): the LRU may take room for
    // the new bytes from any entry but this one.
    bytes_ -= it->second->wire.size();
    lru_.erase(it->second);
    index_.erase(it);
  }
  if (wire.size() > max_bytes_) return;  // never kept: it would empty the cache
  while (!lru_.empty() && (index_.size() >= capacity_ || bytes_ + wire.size() > max_bytes_)) drop_oldest();
  lru_.push_front(Entry{std::string(key.view()), std::vector<std::uint8_t>(wire.begin(), wire.end()), now, lifetime_s});
  index_.emplace(std::string_view(lru_.front().key), lru_.begin());
  bytes_ += wire.size();
}

}  // namespace cagent::dnsguard
