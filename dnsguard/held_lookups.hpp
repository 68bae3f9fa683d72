#pragma once
// Ask mode's bookkeeping: the lookups held for an approver (cagent watch).
//
//   denied name, ask on, a watcher attached
//     └─ QueryEngine: Action::hold ─▶ Server::hold(): add() ── no room ─▶ denied at once
//          │ waits (a timer) until decide() wakes it or ask.timeout passes
//          └─ remove() ─▶ allowed: the query runs again (now allowed: resolved,
//                                   set insert before the answer, as always)
//                         refused / timed_out: QueryEngine::deny_held()
//
// Bounded, because the agent chooses how many names it looks up: at most
// kMaxLookups held at once, among them at most kMaxNames distinct names —
// a flood of names is denied at once beyond that, so it costs neither
// memory nor the approver's attention. No I/O here: the server owns the
// timers and hands each entry a way to wake its waiter.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <list>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace cagent::dnsguard {

class HeldLookups {
 public:
  static constexpr std::size_t kMaxLookups = 256;
  static constexpr std::size_t kMaxNames = 64;

  enum class Outcome : std::uint8_t { pending, allowed, refused, timed_out };
  struct Entry {
    std::string name;  // lower case, as QueryEngine's Query::name()
    Outcome outcome = Outcome::pending;
    std::function<void()> wake;  // ends the waiter's wait (it then calls remove())
  };
  using Handle = std::list<Entry>::iterator;

  struct Added {
    Handle handle;
    bool first_of_name = false;  // no other lookup of the name is held: tell the watchers
  };
  // nullopt: no room; the lookup is to be denied at once.
  std::optional<Added> add(std::string name, std::function<void()> wake);

  struct Removed {
    Outcome outcome = Outcome::timed_out;  // pending (nobody decided) reads as timed_out
    bool last_of_name = false;  // no other lookup of the name is pending
  };
  // The waiter, after its wait ended, whatever ended it.
  Removed remove(Handle handle);

  // Every pending lookup whose name `decides` gets `outcome` and is woken.
  // Returns the distinct names decided, in the order first held.
  std::vector<std::string> decide(const std::function<bool(std::string_view)>& decides, Outcome outcome);

  // The distinct names of the pending lookups, in the order first held.
  std::vector<std::string> pending_names() const;
  std::size_t size() const noexcept { return entries_.size(); }

 private:
  std::size_t count_of(std::string_view name) const noexcept;

  std::list<Entry> entries_;
  // Entries per name (decided ones included, until removed): its size is
  // the distinct names the bound counts, kept as entries come and go so a
  // flood of new names costs no scan of the table per lookup.
  std::map<std::string, std::size_t, std::less<>> per_name_;
};

}  // namespace cagent::dnsguard
