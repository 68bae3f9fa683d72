#pragma once
// DecisionRecord: the exact, structured record of what dnsguard refused —
// denied lookups (name, type, count, first/last time) and the connection
// gate's refusals (name or destination, reason, count, first/last time) —
// and, in learn mode, of the names it resolved only because of that mode.
// The human log is rate-limited so a flood cannot fill the disk; this record
// is never rate-limited, and stays bounded instead by counting: each distinct
// (name, type) gets one entry, up to Limits; past that, lookups still count
// in the totals (and in `*_unlisted`), so totals are exact whatever the agent
// does, and memory and file size stay fixed.
//
//   engine learn path ──learned()──┐
//   engine deny path ──denied()──▶ record ──snapshot()──▶ Decisions ──write_decisions()──▶ decisions.json
//   gate refusal     ──gate_refused()──┘     (RecordWriter, record_writer.hpp: off the
//   firewall counters ─firewall_counts()─┘    resolver thread, atomic rewrite once a
//   (read each second: the kernel counts,      second while it changes, at least every
//    see FirewallCounters)                     kDecisionsRewrittenEvery s, and at exit)
//
// The file's format is a contract with the host (contracts.hpp: the
// Decisions document, its writer and its reader, versioned). It lives
// next to dnsguard's log, in the session's log directory, which cage-init
// gives to dnsguard's uid (mode 0755): the agent can read it and the host
// reads it during and after the session, but only dnsguard can write it.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <span>
#include <vector>

#include "dnsguard/contracts.hpp"
#include "dnsguard/ip.hpp"
#include "dnsguard/write_loss.hpp"

namespace cagent::dnsguard {

// What the firewall itself refused (connections to addresses in no set),
// counted by the kernel on the packet path — the ruleset's refusal counter
// and its bounded per-destination sets — and read by dnsguard once a second
// (cmd/ wires it to nft::RefusalReader; tests use a fake). Counts are
// absolute since the ruleset was installed.
struct FirewallFlow {
  IpAddress addr;
  std::uint8_t proto = 0;  // 6 tcp, 17 udp
  std::uint16_t port = 0;
  std::uint64_t packets = 0;
  friend bool operator==(const FirewallFlow&, const FirewallFlow&) = default;
};
class FirewallCounters {
 public:
  virtual ~FirewallCounters() = default;
  // False when the counters cannot be read now (logged by the caller).
  virtual bool read(std::uint64_t& total, std::vector<FirewallFlow>& flows) noexcept = 0;
};

class DecisionRecord {
 public:
  using WallClock = std::chrono::system_clock;
  struct Limits {
    std::size_t max_denied = 4096;   // distinct (name, type) entries
    std::size_t max_refused = 1024;  // distinct (target, reason) entries of the gate
    std::size_t max_learned = 4096;  // distinct names resolved only by learn mode
  };
  struct Entry {
    std::uint64_t count = 0;
    std::int64_t first = 0;  // unix seconds
    std::int64_t last = 0;
  };

  DecisionRecord() : DecisionRecord(Limits{}) {}
  explicit DecisionRecord(Limits limits) : limits_(limits) {}

  // A denied lookup. `name` as the client sent it (case is folded here);
  // no allocation unless this (name, type) is new and the table has room.
  void denied(std::string_view name, std::uint16_t qtype, WallClock::time_point now) noexcept;
  // A lookup allowed only because the session is in learn mode: `name`
  // (case folded here) was not on the allowlist. Bounded like denied().
  void learned(std::string_view name, WallClock::time_point now) noexcept;
  // A connection the gate refused: `name` the client asked for (may be
  // empty), `destination` the address:port, `reason` the gate's reason.
  void gate_refused(std::string_view name, std::string_view destination, std::string_view reason,
                    WallClock::time_point now) noexcept;

  // The firewall's counters as read now (FirewallCounters). Each flow's
  // growth since the last reading is added to its entry (first/last time
  // are those of the readings that saw it grow); a count below the last
  // one means the counters restarted (a re-installed ruleset) and counts
  // whole. Refused packets of flows the kernel did not itemize (its sets
  // are bounded; ICMP and other protocols are not itemized) are in the
  // total only, and appear as firewall_refused_unlisted.
  void firewall_counts(std::uint64_t total, std::span<const FirewallFlow> flows, WallClock::time_point now);
  std::uint64_t firewall_total() const noexcept { return firewall_total_; }

  // A run-time allowlist change (one pattern). The last kMaxChanges are
  // kept; older ones are counted in changes_dropped.
  void allow_changed(ChangeOp op, std::string_view pattern, WallClock::time_point now);
  static constexpr std::size_t kMaxChanges = 256;

  std::uint64_t denied_total() const noexcept { return denied_total_; }
  std::uint64_t denied_unlisted() const noexcept { return denied_unlisted_; }
  std::size_t denied_entries() const noexcept { return denied_.size(); }
  std::uint64_t refused_total() const noexcept { return refused_total_; }
  std::uint64_t refused_unlisted() const noexcept { return refused_unlisted_; }
  std::size_t refused_entries() const noexcept { return refused_.size(); }
  std::uint64_t learned_total() const noexcept { return learned_total_; }
  std::uint64_t learned_count(std::string_view name) const;
  // The count for one (name, type), 0 when not listed (tests, diagnostics).
  std::uint64_t denied_count(std::string_view name, std::uint16_t qtype) const;

  // Changed since the last mark_written().
  bool dirty() const noexcept { return dirty_; }
  void mark_written() noexcept { dirty_ = false; }

  // What of the session's account could not be written to the log
  // directory (contracts.hpp: Incomplete). From the first loss on, the
  // record says it is incomplete, since when and why (that first failure),
  // and counts what was lost; the totals in memory stay exact. It is
  // written the moment the record can be written again.
  enum class Lost : std::uint8_t { record, log, journal };
  // `count` rewrites of the record that failed, the first with errno
  // `error` at `at` (RecordWriter's report, taken on the resolver thread).
  void write_failed(int error, WallClock::time_point at, std::uint64_t count = 1) noexcept;
  // The log's or the journal's losses so far in this process (their own
  // absolute count, WriteLoss); only growth is added.
  void lost(Lost what, const WriteLoss& loss) noexcept;
  const std::optional<Incomplete>& incomplete() const noexcept { return incomplete_; }

  // A restarted dnsguard takes up the record its predecessor wrote in this
  // session (its own log directory, which only dnsguard's uid writes), so
  // the totals stay exact across a restart — up to the last write, at most
  // a second before the crash. Entries beyond the limits count as
  // unlisted. The firewall's counters are the kernel's, absolute since the
  // ruleset was installed: the restored counts are taken as the last
  // reading, so only growth is added. The predecessor's losses are kept;
  // and a record older than its writer's promise (rewritten_every; cage-
  // init restarts dnsguard within about a second) lagged behind before the
  // crash — a full disk — so the totals are short, and the record says so.
  void restore(const Decisions& previous, WallClock::time_point now);
  // How much older than rewritten_every a predecessor's record may be.
  static constexpr std::int64_t kRestartSlack = 5;

  // The record as its document (contracts.hpp); entries sorted by count,
  // then name, so the file is stable between rewrites. `final`: dnsguard's
  // last write, as it stops.
  Decisions snapshot(WallClock::time_point now, bool final = false) const;

 private:
  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
  };
  using Table = std::unordered_map<std::string, Entry, Hash, std::equal_to<>>;
  static void bump(Entry& e, std::int64_t t) noexcept;
  // Counts `key` in `table` (a new entry only while it has fewer than `max`;
  // past that, or out of memory, in `unlisted`).
  static void count_in(Table& table, std::size_t max, std::string_view key, std::int64_t t,
                       std::uint64_t& unlisted) noexcept;

  Limits limits_;
  // Keys: "<lowercase name>/<type>" and "<target>\x1f<destination>\x1f<reason>".
  Table denied_;
  Table refused_;
  Table learned_;  // keys: "<lowercase name>"
  std::uint64_t learned_total_ = 0;
  std::uint64_t learned_unlisted_ = 0;
  std::uint64_t denied_total_ = 0;
  std::uint64_t denied_unlisted_ = 0;
  std::uint64_t refused_total_ = 0;
  std::uint64_t refused_unlisted_ = 0;
  // Firewall refusals, keyed "<address>:<port>/<proto>" ([v6]:port/proto).
  struct FirewallEntry {
    Entry entry;
    std::uint64_t kernel = 0;  // the kernel's count at the last reading
  };
  std::unordered_map<std::string, FirewallEntry> firewall_;
  std::uint64_t firewall_total_ = 0;
  std::uint64_t firewall_kernel_total_ = 0;
  static constexpr std::size_t kMaxFirewallEntries = 4096;  // the kernel itemizes 2 x 1024
  std::vector<AllowChange> changes_;  // oldest first
  std::uint64_t changes_dropped_ = 0;
  // What could not be written, this process's and its predecessors'.
  Incomplete& lost_since(const char* what, int error, std::int64_t at);
  std::optional<Incomplete> incomplete_;
  std::uint64_t log_lost_seen_ = 0;  // the log's and journal's counts already added
  std::uint64_t journal_lost_seen_ = 0;
  bool dirty_ = true;  // an empty record is still worth one file: "nothing refused"
};

}  // namespace cagent::dnsguard
