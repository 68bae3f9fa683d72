#include "gate_bindings.hpp"

#include <algorithm>

namespace cagent::dnsguard {

std::string NameBindings::key(std::string_view name, const IpAddress& addr) {
  std::string k;
  k.reserve(17 + name.size());
  k.push_back(addr.v6 ? '6' : '4');
  k.append(reinterpret_cast<const char*>(addr.bytes.data()), addr.v6 ? 16 : 4);
  k.append(name);
  return k;
}

bool NameBindings::bind(std::string_view name, const IpAddress& addr, Clock::time_point until,
                        Clock::time_point now) {
  std::string k = key(name, addr);
  if (auto it = table_.find(k); it != table_.end()) {
    it->second = std::max(it->second, until);  // only ever extended
    return true;
  }
  if (table_.size() >= max_ && now >= next_sweep_) {
    expire(now);
    next_sweep_ = now + std::chrono::seconds(1);
  }
  if (table_.size() >= max_) return false;
  table_.emplace(std::move(k), until);
  return true;
}

bool NameBindings::bound(std::string_view name, const IpAddress& addr, Clock::time_point now) const {
  const auto it = table_.find(key(name, addr));
  return it != table_.end() && it->second > now;
}

void NameBindings::expire(Clock::time_point now) {
  std::erase_if(table_, [now](const auto& kv) { return kv.second <= now; });
}

}  // namespace cagent::dnsguard
