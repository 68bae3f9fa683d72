#pragma once
// The one-line summaries of blocked lookups and of connections the gate
// refused, printed when a session ends, from dnsguard's log.
//
//   log text ──parse_denied_names()──▶ names ──summarize_blocked()──▶ line

#include <string>
#include <string_view>
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

}  // namespace cagent::launcher::host
