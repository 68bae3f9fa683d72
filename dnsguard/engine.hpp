#pragma once
// QueryEngine: everything dnsguard decides about one query, synchronously
// and without I/O — classification, local answers, the cache, the address
// filter, the sink call and the answer handed back. The server (server.hpp)
// only moves bytes: it calls handle_local() for each packet and, when that
// says needs_upstream, fetches an answer and calls finish().
//
// Ordering invariant (the security property of the product): every answer
// carrying allowed addresses is built only after sink.hold() returned true
// for those addresses; if it returns false the client gets SERVFAIL.

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "dnsguard/address_filter.hpp"
#include "dnsguard/allow_list.hpp"
#include "dnsguard/answer_cache.hpp"
#include "dnsguard/answer_sink.hpp"
#include "dnsguard/config.hpp"
#include "dnsguard/decisions.hpp"
#include "dnsguard/binding_journal.hpp"
#include "dnsguard/gate_bindings.hpp"
#include "dnsguard/log.hpp"
#include "dnsguard/message.hpp"

namespace cagent::dnsguard {

class QueryEngine final : public GateDecider {
 public:
  using Clock = AnswerCache::Clock;

  QueryEngine(const Config& config, AnswerSink& sink, Logger& log, Counters& counters);

  // hold: ask mode (set_holding) — the name is denied and an approver may
  // still allow it; nothing is answered or recorded yet. The server waits
  // for the decision, then runs the query again or calls deny_held().
  enum class Action : std::uint8_t { drop, answer, needs_upstream, hold };
  struct Local {
    Action action = Action::drop;
    std::size_t size = 0;  // answer bytes in `out` (Action::answer)
    // The answer denies a printable name the allowlist does not allow
    // (q.name()): what a watcher is told about.
    bool denied = false;
  };

  // `query`: one client message. `udp_limit`: 0 for TCP, else the most the
  // transport may carry (the client's EDNS size is applied on top).
  // On needs_upstream, `q` holds the parsed query for finish().
  Local handle_local(std::span<const std::uint8_t> query, Query& q, const IpEndpoint& client,
                     bool tcp, std::span<std::uint8_t> out, Clock::time_point now);

  // The message to send upstream for `q` (ID 0: the upstream pool sets it).
  std::size_t upstream_query(std::span<const std::uint8_t> query, const Query& q,
                             std::span<std::uint8_t> out) const noexcept;

  // Builds the client's answer from the upstream's (`upstream` empty: the
  // upstream failed -> SERVFAIL). Returns the size in `out` (0: drop).
  std::size_t finish(std::span<const std::uint8_t> query, const Query& q, bool tcp,
                     std::span<const std::uint8_t> upstream, std::span<std::uint8_t> out,
                     Clock::time_point now);

  // Refresh: feeds the set from an answer to a query dnsguard made itself.
  // False when the answer is unusable or the insert failed.
  bool absorb(const WireName& qname, std::uint16_t qtype, std::span<const std::uint8_t> answer);

  // Ask mode (policy ask.enabled, while an approver watches and the server
  // has room to hold more): a denied printable name is Action::hold.
  void set_holding(bool on) noexcept { holding_ = on; }
  // Why a held query ended denied: the EDE text says which.
  enum class HeldEnd : std::uint8_t { kept_denied, timed_out };
  // The answer to a held query that was not allowed, recorded and counted
  // as a denied lookup like any other.
  std::size_t deny_held(std::span<const std::uint8_t> query, const Query& q, const IpEndpoint& client, bool tcp,
                        HeldEnd why, std::span<std::uint8_t> out);

  const AllowList& allow_list() const noexcept { return allow_; }
  // Whether `name` may be resolved and connected to now: the allowlist
  // allows it, or the session is in learn mode (policy `learn`), where
  // every printable name is. Every other check — the address filter, the
  // set insert before the answer, the gate's name binding — stays as it is.
  bool permits(std::string_view name) const noexcept { return config_.learn || allow_.allows(name); }
  // Run-time policy change (control.hpp): the next query is classified with
  // `next`. The cache and the sets are kept — a name `next` denies is
  // refused before the cache is consulted, and the gate asks allows() too.
  void replace_allow_list(AllowList next) noexcept { allow_ = std::move(next); }
  // After replace_allow_list() took names back: every address held only
  // because of a name the allowlist no longer allows leaves the sets (one
  // shared with a name that stays allowed stays). Returns how many left;
  // nullopt when the sink failed (they then leave at their timeout).
  std::optional<std::size_t> release_denied(Clock::time_point now);
  // Where denied lookups are counted (exactly; the log is rate-limited).
  // Not owned; null: not recorded.
  void set_decisions(DecisionRecord* decisions) noexcept { decisions_ = decisions; }
  // Every new or extended name binding is appended there (binding_journal.hpp).
  void set_binding_journal(BindingJournal* journal) noexcept { journal_ = journal; }
  // A restarted dnsguard: `name` resolved to `addr` before the crash, bound
  // until `until` (the earlier of its journalled expiry and the set's).
  // False when the table is full.
  bool restore_binding(std::string_view name, const IpAddress& addr, Clock::time_point until) {
    Clock::time_point journalled;
    return bindings_.bind(name, addr, until, Clock::now(), &journalled);
  }
  // The live bindings as journal entries (what a compacted journal holds).
  std::vector<JournalEntry> journal_entries(Clock::time_point now) const;

  // GateDecider: `name` is allowed and resolved to `destination` through
  // dnsguard, and that answer still holds (the set holds the address).
  bool admit(std::string_view name, const IpAddress& destination, Clock::time_point connected) noexcept override;
  std::size_t bindings() const noexcept { return bindings_.size(); }
  std::size_t cache_size() const noexcept { return cache_.size(); }

 private:
  std::size_t servfail(std::span<const std::uint8_t> query, const Query& q,
                       std::span<std::uint8_t> out);
  // The answer to a denied name: deny_rcode, plus an Extended DNS Error
  // naming the fix for `name` (empty: none) when the client used EDNS and it fits.
  std::size_t deny_response(std::span<const std::uint8_t> query, const Query& q, std::string_view name, bool tcp,
                            std::uint8_t rc, std::span<std::uint8_t> out,
                            HeldEnd why = HeldEnd::kept_denied) const noexcept;
  // A denied lookup into the record, the counters and the (rate-limited) log.
  void count_denied(const Query& q, bool printable, const IpEndpoint& client);
  // Filters `info.addresses` and hands them to the sink; `timeout(ttl)`
  // gives each one's set timeout. With `floors`, an address the set already
  // holds for at least floor(timeout) may stay as it is (see answer_sink.hpp).
  // Returns the least time the set holds any inserted address (kNoCap when
  // none was inserted); nullopt when the sink failed.
  // With the gate on, every inserted address is bound to `name` (the
  // question's name) for as long as the set holds it.
  template <typename TimeoutFn>
  std::optional<std::uint32_t> insert(const ResponseInfo& info, TimeoutFn timeout, bool floors,
                                      std::string_view name, Clock::time_point now);
  // After rewrite_ttls: every inserted address's record gets at most the
  // time the set holds that address (the client-facing side of floors).
  void cap_to_held(std::span<std::uint8_t> wire) const noexcept;
  // Removes from `bytes` (an analyzed upstream answer in info_) every A/AAAA
  // record that will not be in the set — strays and filtered addresses,
  // loopback excepted — and analyzes the result again. Returns the new size
  // (bytes.size() when nothing was removed), 0 on failure.
  std::size_t strip_unreachable(std::span<std::uint8_t> bytes, const Query& q) noexcept;
  std::uint32_t clamp_ttl(std::uint32_t ttl) const noexcept;
  std::uint32_t floor_of(std::uint32_t timeout) const noexcept;

  static constexpr std::uint32_t kNoCap = 0xFFFFFFFFu;

  const Config& config_;
  AnswerSink& sink_;
  Logger& log_;
  Counters& counters_;
  DecisionRecord* decisions_ = nullptr;
  bool holding_ = false;
  void journal_binding(std::string_view name, const IpAddress& addr, Clock::time_point until, Clock::time_point now);
  BindingJournal* journal_ = nullptr;
  bool journal_full_logged_ = false;
  AllowList allow_;
  AnswerCache cache_;
  ResponseAnalyzer analyzer_;
  ResponseInfo info_;
  std::vector<AllowedAddress> pending_;
  std::vector<std::uint16_t> pending_ttl_offsets_;  // per pending_ entry: its record's TTL field
  std::vector<std::uint32_t> held_;                 // per pending_ entry: what the sink holds
  std::vector<RrRange> drop_;                       // records strip_unreachable() removes
  std::vector<std::uint8_t> scratch_;               // its output, kMaxMessage bytes
  // name → address bindings: the gate admits by them, and a run-time deny
  // evicts the addresses only the denied names held (release_denied()).
  // As many as both sets can hold (nft set_size, 65536 each).
  static constexpr std::size_t kMaxBindings = 131072;
  NameBindings bindings_{kMaxBindings};
};

}  // namespace cagent::dnsguard
