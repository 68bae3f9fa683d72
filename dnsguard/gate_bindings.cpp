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
                        Clock::time_point now, Clock::time_point* to_journal, Clock::duration journal_slack) {
  if (to_journal != nullptr) *to_journal = Clock::time_point{};
  KeyBuffer buf;
  const std::string_view k = key(name, addr, buf);
  auto it = table_.find(k);
  if (it != table_.end()) {
    it->second.until = std::max(it->second.until, until);  // only ever extended
  } else {
    if (table_.size() >= max_ && now >= next_sweep_) {
      expire(now);
      next_sweep_ = now + std::chrono::seconds(1);
    }
    if (table_.size() >= max_) return false;
    it = table_.emplace(std::string(k), Binding{until, Clock::time_point{}}).first;
  }
  if (to_journal != nullptr && it->second.until > it->second.journalled) {
    it->second.journalled = it->second.until + journal_slack;
    *to_journal = it->second.journalled;
  }
  return true;
}

bool NameBindings::bound(std::string_view name, const IpAddress& addr, Clock::time_point now) const {
  KeyBuffer buf;
  const auto it = table_.find(key(name, addr, buf));
  return it != table_.end() && it->second.until > now;
}

void NameBindings::expire(Clock::time_point now) {
  std::erase_if(table_, [now](const auto& kv) { return kv.second.until <= now; });
}

namespace {
// A key's parts: the family byte and address bytes, then the name.
std::string_view key_address(std::string_view k) { return k.substr(0, 1 + (k[0] == '6' ? 16 : 4)); }
std::string_view key_name(std::string_view k) { return k.substr(key_address(k).size()); }
IpAddress address_of(std::string_view key_address) {
  IpAddress a;
  a.v6 = key_address[0] == '6';
  std::memcpy(a.bytes.data(), key_address.data() + 1, key_address.size() - 1);
  return a;
}
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
  for (const auto& [k, binding] : table_) {
    if (!still_allowed(key_name(k))) by_address[key_address(k)].released = true;
    else if (binding.until > now) by_address[key_address(k)].kept = true;
  }
  std::vector<IpAddress> out;
  for (const auto& [address, h] : by_address) {
    if (!h.released || h.kept) continue;
    out.push_back(address_of(address));
  }
  return out;
}

void NameBindings::for_each_live(Clock::time_point now,
                                 const std::function<void(std::string_view, const IpAddress&, Clock::time_point)>&
                                     visit) const {
  for (const auto& [k, binding] : table_) {
    if (binding.until > now) visit(key_name(k), address_of(key_address(k)), binding.journalled);
  }
}

void NameBindings::forget(const std::function<bool(std::string_view)>& still_allowed) {
  std::erase_if(table_, [&](const auto& kv) { return !still_allowed(key_name(kv.first)); });
}

}  // namespace cagent::dnsguard
