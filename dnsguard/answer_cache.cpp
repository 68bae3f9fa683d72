#include "answer_cache.hpp"

namespace cagent::dnsguard {

std::string AnswerCache::make_key(const WireName& qname, std::uint16_t qtype) {
  std::string key(reinterpret_cast<const char*>(qname.bytes.data()), qname.size);
  key.push_back(static_cast<char>(qtype >> 8));
  key.push_back(static_cast<char>(qtype & 0xFF));
  return key;
}

std::optional<AnswerCache::Hit> AnswerCache::lookup(const WireName& qname, std::uint16_t qtype,
                                                    Clock::time_point now) {
  if (capacity_ == 0) return std::nullopt;
  auto it = index_.find(make_key(qname, qtype));
  if (it == index_.end()) return std::nullopt;
  auto entry = it->second;
  auto age = now - entry->stored;
  // Rounded up: a client must never be told a TTL longer than what is left,
  // and the set entry was sized for lifetime_s from the moment of storing.
  auto elapsed_ms = std::chrono::duration_cast<std::chrono::milliseconds>(age).count();
  auto elapsed = static_cast<std::uint64_t>(elapsed_ms < 0 ? 0 : (elapsed_ms + 999) / 1000);
  if (elapsed >= entry->lifetime_s) {
    lru_.erase(entry);
    index_.erase(it);
    return std::nullopt;
  }
  lru_.splice(lru_.begin(), lru_, entry);
  return Hit{entry->wire, static_cast<std::uint32_t>(elapsed)};
}

void AnswerCache::store(const WireName& qname, std::uint16_t qtype,
                        std::span<const std::uint8_t> wire, std::uint32_t lifetime_s,
                        Clock::time_point now) {
  if (capacity_ == 0 || lifetime_s == 0) return;
  auto key = make_key(qname, qtype);
  if (auto it = index_.find(key); it != index_.end()) {
    auto entry = it->second;
    entry->wire.assign(wire.begin(), wire.end());
    entry->wire.shrink_to_fit();
    entry->stored = now;
    entry->lifetime_s = lifetime_s;
    lru_.splice(lru_.begin(), lru_, entry);
    return;
  }
  if (index_.size() >= capacity_) {
    index_.erase(lru_.back().key);
    lru_.pop_back();
  }
  lru_.push_front(Entry{key, std::vector<std::uint8_t>(wire.begin(), wire.end()), now, lifetime_s});
  index_.emplace(std::move(key), lru_.begin());
}

}  // namespace cagent::dnsguard
