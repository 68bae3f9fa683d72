#pragma once
// The connection gate's memory of which names dnsguard resolved to which
// addresses. The set admits an address because *some* allowed
// name resolved to it; the gate admits a TLS/HTTP connection to it only for
// a name that resolved to it *through dnsguard*, and only while that answer
// holds — another allowed name's address does not qualify.
//
//   engine inserts addresses for qname ──bind()──▶ table ◀──bound()── gate decides
//
// A binding lasts as long as the set element that justifies it (what the
// sink reports as held, plus the set's grace), is only ever extended, and
// the table is bounded: when it is full of live bindings the engine lets
// no address that would need a new one into the sets (has_room(); the
// answer is SERVFAIL, fail closed) — every address in a set is bound, which
// a run-time deny relies on to find the addresses of the names it takes back.

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "dnsguard/ip.hpp"

namespace cagent::dnsguard {

// How much longer than the promised TTL the set holds an address
// (nft::set_grace; cmd/nft_sink checks they agree). A binding lives exactly
// as long as the set element it justifies.
inline constexpr std::chrono::seconds kBindingGrace{2};

// The gate's question, answered by the engine (allowlist + bindings).
class GateDecider {
 public:
  virtual ~GateDecider() = default;
  // May a connection to `destination` that asks for `name` pass?
  virtual bool admit(std::string_view name, const IpAddress& destination) noexcept = 0;
};

class NameBindings {
 public:
  using Clock = std::chrono::steady_clock;

  explicit NameBindings(std::size_t max_entries) : max_(max_entries) {}

  // `name` (lowercase, no trailing dot) resolved to `addr`, valid until
  // `until`. False when the table is full of live bindings.
  // `*to_journal` (when given) is the expiry the binding journal should now
  // carry for the pair (its expiry plus `journal_slack`), or
  // Clock::time_point{} when the journal already carries one at least as
  // late (binding_journal.hpp): a new pair, or one extended past that.
  bool bind(std::string_view name, const IpAddress& addr, Clock::time_point until, Clock::time_point now,
            Clock::time_point* to_journal = nullptr, Clock::duration journal_slack = {});

  // Each live binding with the expiry last handed out for its journal.
  void for_each_live(Clock::time_point now,
                     const std::function<void(std::string_view name, const IpAddress& addr,
                                              Clock::time_point journalled)>& visit) const;

  // Would bind() record `name` for every one of `addrs` now? Those already
  // recorded need no room; a full table is swept first (as bind() does).
  // Asked before the addresses enter the sets: an address in a set without
  // its binding would be invisible to orphans() (a run-time deny).
  template <typename Addresses>
  bool has_room(std::string_view name, const Addresses& addrs, Clock::time_point now) {
    std::size_t fresh = 0;
    for (const auto& a : addrs) {
      KeyBuffer buf;
      if (!table_.contains(key(name, IpAddress{a.v6, a.bytes}, buf))) ++fresh;
    }
    if (table_.size() + fresh > max_ && now >= next_sweep_) {
      expire(now);
      next_sweep_ = now + std::chrono::seconds(1);
    }
    return table_.size() + fresh <= max_;
  }

  // Did `name` resolve to `addr` through dnsguard, and does that still hold?
  bool bound(std::string_view name, const IpAddress& addr, Clock::time_point now) const;

  // Drops every binding that has expired.
  void expire(Clock::time_point now);

  // A run-time deny (control.hpp), in two steps so that a failed eviction
  // can be retried: orphans() lists the addresses that no live binding of
  // a still-allowed name holds any more but a binding of a name
  // `still_allowed` rejects does — the ones held only because of the names
  // taken back, which the caller removes from the sets; an address shared
  // with a name that stays allowed is not listed. Once they are out,
  // forget() drops every binding of a rejected name.
  std::vector<IpAddress> orphans(const std::function<bool(std::string_view)>& still_allowed,
                                 Clock::time_point now) const;
  void forget(const std::function<bool(std::string_view)>& still_allowed);

  std::size_t size() const noexcept { return table_.size(); }

 private:
  // Family byte, the address bytes, then the name: one string, no pair.
  // Built in `buf` (no allocation): the lookups on the per-query path
  // (every insert re-binds, every cache hit too) find existing bindings
  // without building a std::string; only a new binding allocates.
  using KeyBuffer = std::array<char, 1 + 16 + 253>;
  static std::string_view key(std::string_view name, const IpAddress& addr, KeyBuffer& buf) noexcept;
  struct KeyHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view k) const noexcept { return std::hash<std::string_view>{}(k); }
  };

  struct Binding {
    Clock::time_point until;       // admitted while now < until
    Clock::time_point journalled;  // what the journal says (zero: not journalled)
  };
  std::size_t max_;
  std::unordered_map<std::string, Binding, KeyHash, std::equal_to<>> table_;
  // A full table is swept for expired bindings at most once a second: a
  // sweep is linear in the table, and a flood of new names must not make
  // every insert pay for one (the bindings it cannot record until then are
  // refused by the gate: fail closed).
  Clock::time_point next_sweep_{};
};

}  // namespace cagent::dnsguard
