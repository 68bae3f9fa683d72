#include "dnsguard/gate_bindings.hpp"

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
                        Clock::time_point now, bool* created) {
  if (created != nullptr) *created = false;
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
  if (created != nullptr) *created = true;
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

namespace {
// A key's parts: the family byte and address bytes, then the name.
std::string_view key_address(std::string_view k) { return k.substr(0, 1 + (k[0] == '6' ? 16 : 4)); }
std::string_view key_name(std::string_view k) { return k.substr(key_address(k).size()); }
}  // namespace

std::vector<IpAddress> NameBindings::orphans(const std::function<bool(std::string_view)>& still_allowed,
                                             Clock::time_point now) const {
  // Per address: does a live binding of a still-allowed name keep it, and
  // does one of a rejected name hold it?
  struct Holders {
    bool kept = false;
    bool released = false;
  };
  std::unordered_map<std::string_view, Holders> by_address;
  for (const auto& [k, until] : table_) {
    if (!still_allowed(key_name(k))) by_address[key_address(k)].released = true;
    else if (until > now) by_address[key_address(k)].kept = true;
  }
  std::vector<IpAddress> out;
  for (const auto& [address, h] : by_address) {
    if (!h.released || h.kept) continue;
    IpAddress a;
    a.v6 = address[0] == '6';
    std::memcpy(a.bytes.data(), address.data() + 1, address.size() - 1);
    out.push_back(a);
  }
  return out;
}

void NameBindings::forget(const std::function<bool(std::string_view)>& still_allowed) {
  std::erase_if(table_, [&](const auto& kv) { return !still_allowed(key_name(kv.first)); });
}

}  // namespace cagent::dnsguard
