#pragma once
// The one-line summaries of blocked lookups and of connections the gate
// refused, printed when a session ends. Exact, from dnsguard's decision
// record (decisions.json, see dnsguard/decisions.hpp); when a session has
// none (a cage from an older image), scraped from dnsguard's human log,
// whose denial lines are rate-limited and so may undercount.
//
//   decisions.json ──parse_decisions()──▶ Decisions ──summarize_*()──▶ line
//   log text ──parse_denied_names()──▶ names ──summarize_blocked()──▶ line

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace cagent::launcher::host {

// The queried names of the denied-query lines, in order, lowercase, without
// the trailing dot. Lines that are not denials are skipped, and so are
// names under .invalid (cage-init's readiness probe).
std::vector<std::string> parse_denied_names(std::string_view log_text);

// "blocked 3 lookups: pypi.org ×2, example.net — add to domains in
// .cagent.yaml to allow"; empty when nothing was blocked. At most
// `max_names` names are listed, most frequent first.
std::string summarize_blocked(const std::vector<std::string>& names, std::size_t max_names = 8);

// The connection gate's refusals ("gate refused name=… dst=… reason=…"):
// the name the client asked for, else the destination, in order.
std::vector<std::string> parse_gate_refusals(std::string_view log_text);

// "the connection gate refused 2 connections: b.example ×2 — …"; empty
// when it refused nothing.
std::string summarize_gate_refusals(const std::vector<std::string>& targets, std::size_t max_items = 8);

// What the exit summary needs from the decision record: per name (types
// merged) or gate target, the exact count, most frequent first. Names under
// .invalid (cage-init's readiness probe) are left out, totals included.
struct Decisions {
  using Counted = std::vector<std::pair<std::string, std::uint64_t>>;
  std::uint64_t denied_total = 0;
  Counted denied;            // listed names; denied_total may count more (unlisted)
  std::uint64_t refused_total = 0;
  Counted refused;           // name, else destination
  std::uint64_t firewall_total = 0;  // packets the firewall itself refused
  Counted firewall;          // "address:port/proto"
};

// nullopt when `json` is not a decision record this version understands.
std::optional<Decisions> parse_decisions(std::string_view json);

// The same lines as above, from exact counts.
std::string exact_blocked_summary(const Decisions& d, std::size_t max_names = 8);
std::string exact_gate_summary(const Decisions& d, std::size_t max_items = 8);
std::string exact_firewall_summary(const Decisions& d, std::size_t max_items = 8);

}  // namespace cagent::launcher::host
