#pragma once
// The one-line summaries printed when a session ends: the lookups dnsguard
// blocked, the connections the gate refused and the packets the firewall
// refused. Exact: from dnsguard's decision record (decisions.json), read
// with the record's one reader (dnsguard/contracts.hpp).
//
//   log dir ─read_decision_record()─▶ dnsguard::Decisions ─summary_lines()─▶ lines
//
// Nothing here knows dnsguard's human log or what cage-init asks dnsguard:
// the record holds what was refused, and the summary says all of it.

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "dnsguard/contracts.hpp"

namespace cagent::launcher::host {

// The record in a session's log directory; nullopt when there is none.
// Throws (one line naming the file) when it is there but unreadable, or of
// a version this build does not read.
std::optional<dnsguard::Decisions> read_decision_record(const std::filesystem::path& log_dir);

// In this order, each only when it has something to say:
//   "blocked 3 lookups: pypi.org ×2, example.net — add to domains in
//    .cagent.yaml to allow" (query types merged per name)
//   "the connection gate refused 2 connections: b.example ×2 — …"
//   "the firewall refused 9 packets: 198.51.100.19:80/tcp ×7, +2 more not listed — …"
// At most `max_items` entries per line, most frequent first; what the
// totals count beyond the listed entries is "+N more not listed".
std::vector<std::string> summary_lines(const dnsguard::Decisions& record, std::size_t max_items = 8);

// The secret relay's refusals (relay.jsonl, one line each, written by
// cagent-relay); empty when there is none. A line this build cannot read
// is skipped (the relay writes whole lines; a torn last line is possible
// only if the disk filled up).
std::vector<dnsguard::RelayRefusal> read_relay_record(const std::filesystem::path& log_dir);
// "the secret relay refused 2 requests: secret github sent to echo.test ×2
//  — a placeholder is worth something only at its own hosts"; nullopt when none.
std::optional<std::string> relay_line(const std::vector<dnsguard::RelayRefusal>& refusals, std::size_t max_items = 8);

// Whether the record can be short, and why. dnsguard marks what it could
// not write to the log directory (the record's `incomplete`), but a record
// that can no longer be written cannot say so itself: then the host tells
// by its freshness — dnsguard rewrites it at least every `rewritten_every`
// seconds while it runs and marks its last write, as it stops, `final`.
struct RecordCheck {
  std::filesystem::path log_dir;  // the host's directory, named in the line
  std::int64_t now = 0;           // unix seconds
  // dnsguard has stopped (the exit summary): a record without its final
  // write is short. Otherwise (the session may still run) one older than
  // its promise is.
  bool stopped = false;
  // Free bytes on the log directory's file system, when known.
  std::optional<std::uint64_t> free_bytes;
};
// Below this a log directory's file system counts as full in the lines.
inline constexpr std::uint64_t kFullBelow = 1u << 20;
// How much older than its promise a running session's record may be.
inline constexpr std::int64_t kStaleSlack = 5;

// One line when the record is or may be incomplete, nullopt when it is
// whole (and for records of a dnsguard that made no freshness promise):
//   "the decision record is incomplete: writing to the log directory DIR
//    failed from 2026-01-02T03:04:05Z on (the log: No space left on
//    device); its counts are exact, but dnsguard.log lost 12 lines"
//   "the decision record is incomplete: dnsguard last wrote it at … and
//    not as it stopped, and the log directory DIR is full (0 bytes free);
//    its counts stop there"
std::optional<std::string> incomplete_line(const dnsguard::Decisions& record, const RecordCheck& check);
// After a session that has no record at all: one line when the log
// directory is full (dnsguard could not write even its first record, so
// nothing tells what was blocked); nullopt otherwise — the session ended
// before dnsguard served, and what stopped it has said why.
std::optional<std::string> missing_record_line(const RecordCheck& check);
// statvfs: the bytes an unprivileged writer may still use there.
std::optional<std::uint64_t> free_bytes(const std::filesystem::path& dir);

}  // namespace cagent::launcher::host
