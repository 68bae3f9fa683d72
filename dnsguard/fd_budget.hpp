#pragma once
// How dnsguard shares its file descriptors (RLIMIT_NOFILE) between what
// must keep working and what a hostile agent can make it hold.
//
// Everything the agent can make dnsguard open is bounded here, from the one
// limit the process has, so that no flood of connections or queries can
// take the descriptors the rest needs:
//
//   limit ─┬─ kReserved           the fixed part: stdio, the log, the
//          │                      reactor, netlink, the binding journal,
//          │                      the record's temporary file, a spare
//          │                      (see kReserved's comment for the count)
//          ├─ control sessions    kControlSessions (root only)
//          ├─ listeners           2 per listen address (UDP + TCP), + gate
//          ├─ DNS over TCP        tcp_clients × 2 (client + its upstream)
//          ├─ upstream queries    upstream_queries (one socket each) + 1
//          │                      (the refresh loop's)
//          └─ the gate            gate_connections × 6 (client, server and
//                                 two pipes of two ends while relayed)
//
// DNS is sized first, at its full size when the limit allows; what remains
// goes to the gate, up to its own maximum (which bounds its memory). When
// the limit is too small for both at full size, DNS takes at most half of
// what is left after the fixed part, scaled down in proportion, and the
// gate the rest. The plan is a pure function of the limit: unit-tested,
// stated in dnsguard/README.md.

#include <cstddef>
#include <cstdint>
#include <string>

namespace cagent::dnsguard {

struct DescriptorNeeds {
  std::size_t listen_addresses = 2;   // DNS listen addresses (each UDP + TCP)
  std::size_t gate_listeners = 0;     // 0: no gate
  std::size_t max_tcp_clients = 128;  // DNS over TCP at full size
  std::size_t max_upstream_queries = 4096;
  std::size_t max_gate_connections = 4096;
};

struct DescriptorBudget {
  std::uint64_t limit = 0;             // RLIMIT_NOFILE's soft limit the plan is for
  std::size_t reserved = 0;            // fixed part + control + listeners
  std::size_t tcp_clients = 0;         // DNS-over-TCP connections at once
  std::size_t upstream_queries = 0;    // UDP client queries waiting for an upstream
  std::size_t gate_connections = 0;    // gate connections at once (0 without a gate)
  bool reduced = false;                // DNS below its full size: the limit is small
  // Descriptors the plan may use at most; never above `limit`.
  std::size_t planned() const noexcept;
};

// Descriptors no flood can take: stdin/out/err (3), the log file (1), the
// reactor (epoll, its eventfd and timerfd: 3), the signal pipe (2), two
// netlink sockets (set updates, the firewall's counters: 2) and a third
// for a run-time deny's conntrack cut (1), the binding journal (1), the
// decision record's temporary file (1), the record's spare (1, see
// Server), the previous record read at a restart (1), the control
// listener (1) — 17 — with room to spare for what a library opens on its
// own. Measured: an idle dnsguard with the gate and two listen addresses
// holds 22 descriptors, its six listeners included (bench/load.sh).
inline constexpr std::size_t kReservedDescriptors = 64;
// Control connections served at once (root only: `cagent allow/deny/ps/log`);
// more wait in the listen backlog.
inline constexpr std::size_t kControlSessions = 8;
// Per relayed gate connection: the client's socket, the server's, and a
// pipe (two descriptors) per direction.
inline constexpr std::size_t kDescriptorsPerRelay = 6;

DescriptorBudget plan_descriptors(std::uint64_t limit, const DescriptorNeeds& needs) noexcept;

// "descriptors: limit 20000, reserved 74, DNS over TCP 128, upstream
// queries 4096, gate 2592 connections" — the start-up log line.
std::string describe(const DescriptorBudget& budget);

}  // namespace cagent::dnsguard
