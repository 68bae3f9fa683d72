#include "dnsguard/held_lookups.hpp"

#include <algorithm>

namespace cagent::dnsguard {

// Pending ones only: a decided lookup stays listed until its waiter runs,
// and a new lookup of the name meanwhile is news to the watchers.
std::size_t HeldLookups::count_of(std::string_view name) const noexcept {
  return static_cast<std::size_t>(std::count_if(entries_.begin(), entries_.end(), [&](const Entry& e) {
    return e.outcome == Outcome::pending && e.name == name;
  }));
}

std::optional<HeldLookups::Added> HeldLookups::add(std::string name, std::function<void()> wake) {
  if (entries_.size() >= kMaxLookups) return std::nullopt;
  const bool first = count_of(name) == 0;
  if (!per_name_.contains(name) && per_name_.size() >= kMaxNames) return std::nullopt;
  ++per_name_[name];
  entries_.push_back(Entry{std::move(name), Outcome::pending, std::move(wake)});
  return Added{std::prev(entries_.end()), first};
}

HeldLookups::Removed HeldLookups::remove(Handle handle) {
  Removed out;
  out.outcome = handle->outcome == Outcome::pending ? Outcome::timed_out : handle->outcome;
  const std::string name = std::move(handle->name);
  entries_.erase(handle);
  if (const auto it = per_name_.find(name); it != per_name_.end() && --it->second == 0) per_name_.erase(it);
  out.last_of_name = count_of(name) == 0;
  return out;
}

std::vector<std::string> HeldLookups::decide(const std::function<bool(std::string_view)>& decides, Outcome outcome) {
  std::vector<std::string> names;
  for (Entry& e : entries_) {
    if (e.outcome != Outcome::pending || !decides(e.name)) continue;
    e.outcome = outcome;
    if (std::find(names.begin(), names.end(), e.name) == names.end()) names.push_back(e.name);
    if (e.wake) e.wake();
  }
  return names;
}

std::vector<std::string> HeldLookups::pending_names() const {
  std::vector<std::string> names;
  for (const Entry& e : entries_) {
    if (e.outcome == Outcome::pending && std::find(names.begin(), names.end(), e.name) == names.end())
      names.push_back(e.name);
  }
  return names;
}

}  // namespace cagent::dnsguard
