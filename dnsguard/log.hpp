#pragma once
// Logger: one line per event to [log].file (or stderr), with a token bucket
// so a client flooding denied names cannot fill the disk; suppressed lines
// are counted and reported once the bucket refills. Counters: the numbers
// written on SIGUSR1 and at exit.
//
// Bounded twice: the rate (20 lines a second, bursts of 100) and the file's
// size (LogLimits, 16 MiB per session by default; a restarted dnsguard
// counts what its predecessor wrote). Past the size cap detail lines are
// counted, not written, with one line saying so; the few lines that are
// always written (start, counters, stop) have a reserve beyond it, and the
// count of dropped lines is written before them. What dnsguard counts — the
// counters, the decision record's totals — is never affected.
//
// A line the file does not take (disk full, quota, I/O error) is counted
// in lost() and dropped; the first such failure is said once on stderr,
// which cage-init passes to the container's. Nothing blocks or retries.

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "dnsguard/config.hpp"
#include "dnsguard/posix.hpp"
#include "dnsguard/write_loss.hpp"

namespace cagent::dnsguard {

struct Counters {
  std::uint64_t queries = 0;
  std::uint64_t allowed = 0;          // forwarded or served from cache
  std::uint64_t denied = 0;           // answered locally with deny_rcode
  std::uint64_t refused = 0;          // FORMERR/NOTIMP/REFUSED answered locally
  std::uint64_t malformed = 0;        // dropped, no answer
  std::uint64_t overload = 0;         // dropped: too many queries in flight
  std::uint64_t cache_hits = 0;
  std::uint64_t upstream_errors = 0;  // failed upstream attempts (timeouts, bad answers)
  std::uint64_t servfail = 0;         // SERVFAIL sent to clients
  std::uint64_t inserts = 0;          // addresses handed to the set
  std::uint64_t insert_failures = 0;
  std::uint64_t filtered = 0;         // answered addresses kept out of the set
  std::uint64_t stripped = 0;         // A/AAAA records removed from answers (not in the set)
  std::uint64_t binding_failures = 0; // answers refused (SERVFAIL): name bindings full of live ones
  std::uint64_t refreshes = 0;        // refresh lookups done
  std::uint64_t learned = 0;          // allowed only by learn mode (also in `allowed`)
  std::uint64_t held = 0;             // ask mode: lookups held for an approver (server.hpp)
  std::uint64_t held_overflow = 0;    // ask mode: denied at once, no room to hold them
  std::uint64_t watch_dropped = 0;    // events a slow watcher did not get (its queue was full)
};

std::string format_counters(const Counters& c);

struct LogLimits {
  // The file's size past which detail lines are dropped (counted): with
  // the 20 kept session directories (launcher/host), at most 320 MiB of
  // dnsguard logs on a host. A flood of maximum-length denied names
  // reaches it in 38 minutes (7.3 kB/s at the rate limit, measured).
  std::uint64_t max_bytes = 16u << 20;
  // Beyond max_bytes, for the lines that are always written.
  std::uint64_t reserve = 64u << 10;
};

class Logger {
 public:
  // Empty path: stderr (no size cap). Throws std::runtime_error when the
  // file cannot be opened.
  Logger(const std::string& path, LogLevel level, LogLimits limits = {});

  bool enabled(LogLevel level) const noexcept { return level >= level_; }
  // Rate-limited (per-query events).
  void event(LogLevel level, std::string_view line) noexcept;
  // Never rate-limited (startup, counters, shutdown).
  void always(std::string_view line) noexcept;
  // To stderr (cage-init's, so the user's terminal) and to the file: for
  // what the user must hear even when the log directory takes nothing more.
  void alarm(std::string_view line) noexcept;

  // Lines the file did not take (write failures), and the first failure.
  const WriteLoss& lost() const noexcept { return lost_; }
  // Lines dropped at the size cap so far.
  std::uint64_t capped() const noexcept { return capped_; }
  // The file's size as dnsguard knows it (what it found plus what it wrote).
  std::uint64_t size() const noexcept { return size_; }

 private:
  enum class Kind : std::uint8_t { detail, always };
  void write(std::string_view line, Kind kind) noexcept;
  int put(std::string_view line) noexcept;
  void put_or_count(std::string_view line) noexcept;

  UniqueFd file_;   // invalid: stderr
  bool regular_ = false;
  std::string path_;
  std::string line_;  // the line being written, reused
  LogLevel level_;
  LogLimits limits_;
  std::uint64_t size_ = 0;
  std::uint64_t capped_ = 0;
  std::uint64_t capped_said_ = 0;  // the count the last "dropped" line gave
  std::uint64_t lost_said_ = 0;    // the losses the log itself has been told of
  WriteLoss lost_;
  double tokens_ = kBurst;
  std::chrono::steady_clock::time_point refilled_ = std::chrono::steady_clock::now();
  std::uint64_t suppressed_ = 0;
  static constexpr double kBurst = 100;
  static constexpr double kPerSecond = 20;
};

}  // namespace cagent::dnsguard
