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

}  // namespace cagent::launcher::host
