#pragma once
// Logger: one line per event to [log].file (or stderr), with a token bucket
// so a client flooding denied names cannot fill the disk; suppressed lines
// are counted and reported once the bucket refills. Counters: the numbers
// written on SIGUSR1 and at exit.

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <string_view>

#include "dnsguard/config.hpp"

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
};

std::string format_counters(const Counters& c);

class Logger {
 public:
  // Empty path: stderr. Throws std::runtime_error when the file cannot be opened.
  Logger(const std::string& path, LogLevel level);

  bool enabled(LogLevel level) const noexcept { return level >= level_; }
  // Rate-limited (per-query events).
  void event(LogLevel level, std::string_view line) noexcept;
  // Never rate-limited (startup, counters, shutdown).
  void always(std::string_view line) noexcept;

 private:
  struct FileCloser {
    void operator()(std::FILE* f) const noexcept {
      if (f != nullptr && f != stderr) std::fclose(f);
    }
  };
  void write(std::string_view line) noexcept;

  std::unique_ptr<std::FILE, FileCloser> file_;
  LogLevel level_;
  double tokens_ = kBurst;
  std::chrono::steady_clock::time_point refilled_ = std::chrono::steady_clock::now();
  std::uint64_t suppressed_ = 0;
  static constexpr double kBurst = 100;
  static constexpr double kPerSecond = 20;
};

}  // namespace cagent::dnsguard
