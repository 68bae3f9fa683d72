#pragma once
// The gate's name bindings outlive a crash of dnsguard.
//
// A binding (this name resolved to this address, through dnsguard) is what
// the connection gate admits by; it lives in dnsguard's memory only. A
// restarted dnsguard (cage-init restarts it) would otherwise refuse every
// connection a client makes to an address it resolved before the crash and
// still holds. So each new (name, address) pair is appended to a journal in
// the session's log directory (written only by dnsguard's uid), and a
// restart binds again every journalled pair whose address the kernel's set
// still holds, for as long as the set holds it — never longer, and never a
// pair that was not resolved.
//
//   QueryEngine::finish ─new pair─▶ BindingJournal::append (one write)
//   restart: read_binding_journal() × the sets' remaining timeouts
//            ─▶ QueryEngine::restore_binding ─▶ BindingJournal::rewrite (compacted)
//
// Bounded: past kMaxJournalBytes no pair is added (logged once); those
// pairs are then lost to a restart only — a client re-resolves. A failed
// write (disk full) loses the pair the same way and changes nothing else;
// it is counted (lost()), for the decision record to say, and a line the
// write cut short is cut off again, so the next pair cannot run into it.

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

class BindingJournal {
 public:
  // Opens (creates) `path` for appending; `fresh` empties it first (the
  // session's first dnsguard). Throws std::system_error.
  BindingJournal(std::filesystem::path path, bool fresh);

  // False when the pair was not written (full, or the write failed).
  bool append(std::string_view name, const IpAddress& addr) noexcept;
  // Replaces the journal with exactly `pairs` (after a restart).
  void rewrite(const std::vector<std::pair<std::string, IpAddress>>& pairs);

  const std::filesystem::path& path() const noexcept { return path_; }
  bool full() const noexcept { return size_ >= kMaxJournalBytes; }
  // Pairs whose write failed, and the first failure.
  const WriteLoss& lost() const noexcept { return lost_; }

 private:
  std::filesystem::path path_;
  UniqueFd fd_;
  std::size_t size_ = 0;
  bool broken_ = false;  // a cut-short line could not be cut off: append nothing more
  WriteLoss lost_;
};

// The pairs of a journal, in order; lines that do not parse are skipped (a
// line cut short by the crash). An absent file is empty.
std::vector<std::pair<std::string, IpAddress>> read_binding_journal(const std::filesystem::path& path);

// Where the journal lives: next to the decision record.
std::filesystem::path binding_journal_path(const std::filesystem::path& log_dir);

}  // namespace cagent::dnsguard
