#pragma once
// The one-line summary of blocked lookups printed when a session ends, from
// dnsguard's log (one line per denied query with name, type and client).
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

}  // namespace cagent::launcher::host
