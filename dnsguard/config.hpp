#pragma once
// dnsguard's configuration: the session policy (policy.hpp; the contract is
// cmd/README.md, "The session policy") with what dnsguard needs beyond the
// file, in stages that produce different types so they cannot be mixed up:
//
//   text --parse_policy()--> Policy   every key known, every value checked
//                                     and converted (addresses, patterns,
//                                     ranges); shared with cage-init
//        --normalize()----> Config    upstreams resolved (the file's, or
//                                     resolv.conf's); frozen for the
//                                     daemon's lifetime
//
// Every error is a ConfigError of one line naming the file, the line and the
// key ("dnsguard.toml:4: ttl.min: must be between 1 and 604800, got 0").

#include <string>
#include <string_view>
#include <vector>

#include "dnsguard/ip.hpp"
#include "dnsguard/policy.hpp"

namespace cagent::dnsguard {

using ConfigError = PolicyError;

// The policy as dnsguard runs it: `upstreams` is never empty.
struct Config : Policy {};

// Stage 1 is parse_policy() (policy.hpp), the same reader cage-init uses.

// Stage 2. `default_upstreams` is used when the file has no `upstreams`
// (the caller reads them from /etc/resolv.conf). Throws ConfigError.
Config normalize(const Policy& policy, const std::vector<IpEndpoint>& default_upstreams,
                 const std::string& source = "config");

// Reads the file and runs both stages; the default upstreams come from
// `resolv_conf` (read only when needed). Throws ConfigError.
Config load_config(const std::string& path, const std::string& resolv_conf = "/etc/resolv.conf");

}  // namespace cagent::dnsguard
