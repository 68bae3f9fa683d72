#pragma once
// The gate's name bindings outlive a crash of dnsguard.
//
// A binding (this name resolved to this address, through dnsguard) is what
// the connection gate admits by; it lives in dnsguard's memory only. A
// restarted dnsguard (cage-init restarts it) would otherwise refuse every
// connection a client makes to an address it resolved before the crash and
// still holds. So each new (name, address) pair is appended to a journal in
// the session's log directory (written only by dnsguard's uid) with the
// time its binding expires, and again whenever an answer extends it past
// what the journal says. A restart binds again every journalled pair whose
// address the kernel's set still holds, until the earlier of its journalled
// expiry and the set's — so a binding that had expired before the crash
// does not come back because another name keeps the address in the set,
// and one a client still holds does.
//
//   QueryEngine::finish ─new or extended pair─▶ BindingJournal::append (one write)
//   restart: read_binding_journal() × the sets' remaining timeouts
//            ─▶ QueryEngine::restore_binding ─▶ BindingJournal::rewrite (compacted)
//
// Expiries are CLOCK_MONOTONIC (steady_clock) times: one clock for every
// process of the machine, so the restarted dnsguard reads them as written.
// A journalled expiry is the binding's plus kJournalSlack: a cache hit
// re-binds with an expiry that wanders by up to a second (whole-second
// TTLs), and must not cost a write; a restored binding may therefore
// outlive its real expiry by at most that much (never the set's).
//
// Bounded: at kMaxJournalBytes the journal is compacted to the live
// bindings (at most one line per live pair); if that is still more than
// half the bound no pair is added any more (logged once) and those pairs
// are lost to a restart only — a client re-resolves. A failed write (disk
// full) loses the pair the same way and changes nothing else; it is counted
// (lost()), for the decision record to say, and a line the write cut short
// is cut off again, so the next pair cannot run into it.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "dnsguard/ip.hpp"
#include "dnsguard/posix.hpp"
#include "dnsguard/write_loss.hpp"

namespace cagent::dnsguard {

inline constexpr std::size_t kMaxJournalBytes = 32u << 20;
inline constexpr std::chrono::seconds kJournalSlack{2};

// One journalled binding: `name` resolved to `addr`, bound until `until`.
struct JournalEntry {
  std::string name;
  IpAddress addr;
  std::chrono::steady_clock::time_point until;
  bool operator==(const JournalEntry&) const = default;
};

class BindingJournal {
 public:
  // Opens (creates) `path` for appending; `fresh` empties it first (the
  // session's first dnsguard). Throws std::system_error. `max_bytes` is
  // smaller only in tests.
  BindingJournal(std::filesystem::path path, bool fresh, std::size_t max_bytes = kMaxJournalBytes);

  // False when the pair was not written (full, or the write failed).
  bool append(std::string_view name, const IpAddress& addr, std::chrono::steady_clock::time_point until) noexcept;
  // Replaces the journal with exactly `entries` (after a restart, or to
  // compact a full one). Throws std::system_error.
  void rewrite(const std::vector<JournalEntry>& entries);

  const std::filesystem::path& path() const noexcept { return path_; }
  bool full() const noexcept { return size_ >= max_bytes_; }
  std::size_t size() const noexcept { return size_; }
  std::size_t max_bytes() const noexcept { return max_bytes_; }
  // Pairs whose write failed, and the first failure.
  const WriteLoss& lost() const noexcept { return lost_; }

 private:
  std::filesystem::path path_;
  UniqueFd fd_;
  std::size_t max_bytes_;
  std::size_t size_ = 0;
  bool broken_ = false;  // a cut-short line could not be cut off: append nothing more
  WriteLoss lost_;
};

// The entries of a journal, in order (a pair may appear more than once,
// with later expiries); lines that do not parse are skipped (a line cut
// short by the crash). An absent file is empty.
std::vector<JournalEntry> read_binding_journal(const std::filesystem::path& path);

// Where the journal lives: next to the decision record.
std::filesystem::path binding_journal_path(const std::filesystem::path& log_dir);

}  // namespace cagent::dnsguard
