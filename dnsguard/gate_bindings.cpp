#include "gate_bindings.hpp"

#include <algorithm>
#include <cstring>

namespace cagent::dnsguard {

std::string_view NameBindings::key(std::string_view name, const IpAddress& addr, KeyBuffer& buf) noexcept {
  const std::size_t alen = addr.v6 ? 16 : 4;
  const std::size_t nlen = std::min(name.size(), buf.size() - 1 - alen);  // names are <= 253
  buf[0] = addr.v6 ? '6' : '4';
  std::memcpy(buf.data() + 1, addr.bytes.data(), alen);
  std::memcpy(buf.data() + 1 + alen, name.data(), nlen);
  return {buf.data(), 1 + alen + nlen};
}

bool NameBindings::bind(std::string_view name, const IpAddress& addr, Clock::time_point until,
                        Clock::time_point now) {
  KeyBuffer buf;
  const std::string_view k = key(name, addr, buf);
  if (auto it = table_.find(k); it != table_.end()) {
    it->second = std::max(it->second, until);  // only ever extended
    return true;
  }
  if (table_.size() >= max_ && now >= next_sweep_) {
    expire(now);
    next_sweep_ = now + std::chrono::seconds(1);
  }
  if (table_.size() >= max_) return false;
  table_.emplace(std::string(k), until);
  return true;
}

bool NameBindings::bound(std::string_view name, const IpAddress& addr, Clock::time_point now) const {
  KeyBuffer buf;
  const auto it = table_.find(key(name, addr, buf));
  return it != table_.end() && it->second > now;
}

void NameBindings::expire(Clock::time_point now) {
  std::erase_if(table_, [now](const auto& kv) { return kv.second <= now; });
}

std::vector<IpAddress> NameBindings::release(const std::function<bool(std::string_view)>& still_allowed,
                                             Clock::time_point now) {
  // Per address (the key's family byte and address bytes): does a live
  // binding of a still-allowed name keep it, and did a released one hold it?
  struct Holders {
    bool kept = false;
    bool released = false;
  };
  std::unordered_map<std::string_view, Holders> by_address;
  std::vector<std::string_view> released_keys;
  for (const auto& [k, until] : table_) {
    const std::size_t alen = k[0] == '6' ? 16 : 4;
    const std::string_view address = std::string_view(k).substr(0, 1 + alen);
    const std::string_view name = std::string_view(k).substr(1 + alen);
    if (!still_allowed(name)) {
      released_keys.push_back(k);
      by_address[address].released = true;
    } else if (until > now) {
      by_address[address].kept = true;
    }
  }
  std::vector<IpAddress> orphans;
  for (const auto& [address, h] : by_address) {
    if (!h.released || h.kept) continue;
    IpAddress a;
    a.v6 = address[0] == '6';
    std::memcpy(a.bytes.data(), address.data() + 1, address.size() - 1);
    orphans.push_back(a);
  }
  // Last: the views above point into the keys being erased.
  for (const std::string_view k : released_keys) table_.erase(table_.find(k));
  return orphans;
}

}  // namespace cagent::dnsguard
