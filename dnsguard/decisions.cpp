#include "dnsguard/decisions.hpp"

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <vector>


namespace cagent::dnsguard {
namespace {

std::int64_t unix_seconds(DecisionRecord::WallClock::time_point t) noexcept {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

using Sorted = std::vector<std::pair<std::string_view, const DecisionRecord::Entry*>>;

template <typename Table>
Sorted sorted(const Table& table) {
  Sorted v;
  v.reserve(table.size());
  for (const auto& [k, e] : table) v.emplace_back(k, &e);
  std::sort(v.begin(), v.end(), [](const auto& a, const auto& b) {
    if (a.second->count != b.second->count) return a.second->count > b.second->count;
    return a.first < b.first;
  });
  return v;
}

constexpr char kSep = '\x1f';

}  // namespace

void DecisionRecord::bump(Entry& e, std::int64_t t) noexcept {
  if (e.count++ == 0) e.first = t;
  e.last = std::max(e.last, t);
}

namespace {

// The name as a key: lowercase, no trailing dot, at most 255 bytes, into
// `key` (on the caller's stack: a repeated name costs one hash lookup).
// Returns its length.
std::size_t name_key(std::string_view name, std::array<char, 256 + 8>& key) noexcept {
  std::size_t n = std::min(name.size(), std::size_t{255});
  for (std::size_t i = 0; i < n; ++i) {
    char c = name[i];
    key[i] = (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
  }
  if (n > 0 && key[n - 1] == '.') --n;
  return n;
}

}  // namespace

void DecisionRecord::count_in(Table& table, std::size_t max, std::string_view key, std::int64_t t,
                              std::uint64_t& unlisted) noexcept {
  if (auto it = table.find(key); it != table.end()) {
    bump(it->second, t);
    return;
  }
  if (table.size() >= max) {
    ++unlisted;
    return;
  }
  try {
    bump(table.emplace(std::string(key), Entry{}).first->second, t);
  } catch (...) {
    ++unlisted;  // out of memory: still counted in the total
  }
}

void DecisionRecord::denied(std::string_view name, std::uint16_t qtype, WallClock::time_point now) noexcept {
  ++denied_total_;
  dirty_ = true;
  std::array<char, 256 + 8> key{};
  std::size_t n = name_key(name, key);
  key[n++] = '/';
  const std::string type = std::to_string(qtype);  // ≤ 5 chars: SSO, no allocation
  for (char c : type) key[n++] = c;
  count_in(denied_, limits_.max_denied, std::string_view(key.data(), n), unix_seconds(now), denied_unlisted_);
}

void DecisionRecord::learned(std::string_view name, WallClock::time_point now) noexcept {
  ++learned_total_;
  dirty_ = true;
  std::array<char, 256 + 8> key{};
  const std::size_t n = name_key(name, key);
  count_in(learned_, limits_.max_learned, std::string_view(key.data(), n), unix_seconds(now), learned_unlisted_);
}

std::uint64_t DecisionRecord::learned_count(std::string_view name) const {
  auto it = learned_.find(name);
  return it == learned_.end() ? 0 : it->second.count;
}

void DecisionRecord::gate_refused(std::string_view name, std::string_view destination, std::string_view reason,
                                  WallClock::time_point now) noexcept {
  ++refused_total_;
  dirty_ = true;
  const std::int64_t t = unix_seconds(now);
  try {
    // Per connection, not per packet: building the key may allocate.
    std::string key;
    key.reserve(name.size() + destination.size() + reason.size() + 2);
    key.append(name.substr(0, 255)).push_back(kSep);
    // With a name, the destination is left out of the key: one line per
    // name and reason, whichever of its addresses was tried.
    if (name.empty()) key.append(destination.substr(0, 64));
    key.push_back(kSep);
    key.append(reason.substr(0, 128));
    if (auto it = refused_.find(key); it != refused_.end()) {
      bump(it->second, t);
      return;
    }
    if (refused_.size() >= limits_.max_refused) {
      ++refused_unlisted_;
      return;
    }
    bump(refused_.emplace(std::move(key), Entry{}).first->second, t);
  } catch (...) {
    ++refused_unlisted_;
  }
}

void DecisionRecord::firewall_counts(std::uint64_t total, std::span<const FirewallFlow> flows,
                                     WallClock::time_point now) {
  const std::int64_t t = unix_seconds(now);
  const std::uint64_t grown = total >= firewall_kernel_total_ ? total - firewall_kernel_total_ : total;
  firewall_kernel_total_ = total;
  if (grown > 0) {
    firewall_total_ += grown;
    dirty_ = true;
  }
  for (const FirewallFlow& f : flows) {
    std::string key = f.addr.v6 ? "[" + to_string(f.addr) + "]" : to_string(f.addr);
    key += ":" + std::to_string(f.port) + (f.proto == 6 ? "/tcp" : f.proto == 17 ? "/udp" : "/" + std::to_string(f.proto));
    auto it = firewall_.find(key);
    if (it == firewall_.end()) {
      if (firewall_.size() >= kMaxFirewallEntries || f.packets == 0) continue;  // counted in the total
      it = firewall_.emplace(std::move(key), FirewallEntry{}).first;
    }
    FirewallEntry& fe = it->second;
    const std::uint64_t delta = f.packets >= fe.kernel ? f.packets - fe.kernel : f.packets;
    fe.kernel = f.packets;
    if (delta == 0) continue;
    if (fe.entry.count == 0) fe.entry.first = t;
    fe.entry.count += delta;
    fe.entry.last = t;
    dirty_ = true;
  }
}

void DecisionRecord::allow_changed(ChangeOp op, std::string_view pattern, WallClock::time_point now) {
  dirty_ = true;
  if (changes_.size() >= kMaxChanges) {
    changes_.erase(changes_.begin());
    ++changes_dropped_;
  }
  changes_.push_back(AllowChange{op, std::string(pattern), unix_seconds(now)});
}

Incomplete& DecisionRecord::lost_since(const char* what, int error, std::int64_t at) {
  // The first failure is the one said; one found later but made earlier
  // (the log's, read once a second) takes its place.
  if (!incomplete_ || at < incomplete_->since) {
    if (!incomplete_) incomplete_.emplace();
    incomplete_->since = at;
    incomplete_->reason = std::string(what) + ": " + std::strerror(error);
  }
  dirty_ = true;
  return *incomplete_;
}

void DecisionRecord::write_failed(int error, WallClock::time_point at, std::uint64_t count) noexcept {
  if (count == 0) return;
  try {
    lost_since("the decision record", error, unix_seconds(at)).record_writes_failed += count;
  } catch (...) {
    dirty_ = true;  // out of memory for the reason: tried again next time
  }
}

void DecisionRecord::lost(Lost what, const WriteLoss& loss) noexcept {
  std::uint64_t& seen = what == Lost::journal ? journal_lost_seen_ : log_lost_seen_;
  if (loss.count <= seen) return;
  try {
    Incomplete& i = lost_since(what == Lost::journal ? "the gate binding journal"
                               : what == Lost::log   ? "the log"
                                                     : "the decision record",
                               loss.first_error, loss.first_at);
    (what == Lost::journal ? i.bindings_lost : what == Lost::log ? i.log_lines_lost : i.record_writes_failed) +=
        loss.count - seen;
    seen = loss.count;
  } catch (...) {
    // Out of memory for the reason: added at the next call.
  }
}

void DecisionRecord::restore(const Decisions& previous, WallClock::time_point now) {
  const auto put = [](Table& table, std::size_t max, std::string key, const auto& from, std::uint64_t& unlisted) {
    if (table.size() >= max) {
      unlisted += from.count;
      return;
    }
    Entry& e = table[std::move(key)];
    e.count += from.count;
    e.first = e.first == 0 ? from.first : std::min(e.first, from.first);
    e.last = std::max(e.last, from.last);
  };
  learned_total_ += previous.learned_total;
  learned_unlisted_ += previous.learned_unlisted;
  for (const LearnedName& l : previous.learned) put(learned_, limits_.max_learned, l.name, l, learned_unlisted_);
  denied_total_ += previous.denied_total;
  denied_unlisted_ += previous.denied_unlisted;
  for (const DeniedLookup& d : previous.denied) {
    put(denied_, limits_.max_denied, d.name + "/" + std::to_string(d.type), d, denied_unlisted_);
  }
  refused_total_ += previous.gate_refused_total;
  refused_unlisted_ += previous.gate_refused_unlisted;
  for (const GateRefusal& r : previous.gate_refused) {
    std::string key = r.name;
    key.push_back(kSep);
    key += r.dst;
    key.push_back(kSep);
    key += r.reason;
    put(refused_, limits_.max_refused, std::move(key), r, refused_unlisted_);
  }
  firewall_total_ = previous.firewall_refused_total;
  firewall_kernel_total_ = previous.firewall_refused_total;
  for (const FirewallRefusal& f : previous.firewall_refused) {
    if (firewall_.size() >= kMaxFirewallEntries) break;  // in the total
    FirewallEntry& fe = firewall_[f.dst + "/" + f.proto];
    fe.entry = Entry{f.count, f.first, f.last};
    fe.kernel = f.count;
  }
  changes_dropped_ = previous.changes_dropped;
  changes_ = previous.changes;
  incomplete_ = previous.incomplete;
  const std::int64_t age = unix_seconds(now) - previous.updated;
  if (previous.rewritten_every > 0 && !previous.final && age > previous.rewritten_every + kRestartSlack) {
    Incomplete& i = lost_since("the decision record", 0, previous.updated);
    if (i.since == previous.updated)
      i.reason = "the decision record: not rewritten for " + std::to_string(age) + " s before dnsguard restarted";
    i.totals_short = true;
  }
  dirty_ = true;
}

std::uint64_t DecisionRecord::denied_count(std::string_view name, std::uint16_t qtype) const {
  auto it = denied_.find(std::string(name) + "/" + std::to_string(qtype));
  return it == denied_.end() ? 0 : it->second.count;
}

Decisions DecisionRecord::snapshot(WallClock::time_point now, bool final) const {
  Decisions d;
  d.updated = unix_seconds(now);
  d.rewritten_every = kDecisionsRewrittenEvery;
  d.final = final;
  d.incomplete = incomplete_;
  d.denied_total = denied_total_;
  d.denied_unlisted = denied_unlisted_;
  d.denied.reserve(denied_.size());
  for (const auto& [key, e] : sorted(denied_)) {
    const std::size_t slash = key.rfind('/');
    std::uint16_t type = 0;
    for (char c : key.substr(slash + 1)) type = static_cast<std::uint16_t>(type * 10 + (c - '0'));
    d.denied.push_back({std::string(key.substr(0, slash)), type, e->count, e->first, e->last});
  }
  d.learned_total = learned_total_;
  d.learned_unlisted = learned_unlisted_;
  d.learned.reserve(learned_.size());
  for (const auto& [key, e] : sorted(learned_)) d.learned.push_back({std::string(key), e->count, e->first, e->last});
  d.gate_refused_total = refused_total_;
  d.gate_refused_unlisted = refused_unlisted_;
  d.gate_refused.reserve(refused_.size());
  for (const auto& [key, e] : sorted(refused_)) {
    const std::size_t a = key.find(kSep);
    const std::size_t b = key.find(kSep, a + 1);
    d.gate_refused.push_back({std::string(key.substr(0, a)), std::string(key.substr(a + 1, b - a - 1)),
                              std::string(key.substr(b + 1)), e->count, e->first, e->last});
  }
  std::uint64_t itemized = 0;
  Table firewall;  // only the entries, for sorted()
  for (const auto& [key, fe] : firewall_) {
    itemized += fe.entry.count;
    firewall.emplace(key, fe.entry);
  }
  d.firewall_refused_total = firewall_total_;
  d.firewall_refused_unlisted = firewall_total_ - std::min(itemized, firewall_total_);
  d.firewall_refused.reserve(firewall.size());
  for (const auto& [key, e] : sorted(firewall)) {
    const std::size_t slash = key.rfind('/');
    d.firewall_refused.push_back(
        {std::string(key.substr(0, slash)), std::string(key.substr(slash + 1)), e->count, e->first, e->last});
  }
  d.changes_dropped = changes_dropped_;
  d.changes = changes_;
  return d;
}

}  // namespace cagent::dnsguard
