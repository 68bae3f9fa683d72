#pragma once
// What cage-init needs to know from the session policy (dnsguard's TOML, see
// DESIGN.md) and from the container's original /etc/resolv.conf.
//
// Data flow: read_policy() reads only the keys cage-init acts on (upstreams,
// listen, [nft], [log], allow_cidrs) into plain values; validating the whole
// file is dnsguard's job (`dnsguard --config FILE --check`, a plan step), so
// the two programs never disagree about what a valid policy is and this
// library needs nothing from dnsguard/.

#include <cstdint>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "nft/nft.hpp"

namespace cagent::cage {

// A malformed value; the message names the file (and line when known).
class PolicyError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct Policy {
  std::filesystem::path path;
  std::vector<nft::Endpoint> upstreams;      // empty: the key is absent
  std::vector<nft::Cidr> allow_cidrs;
  std::vector<nft::InboundPort> inbound;     // published container ports
  std::vector<nft::Endpoint> listen;         // never empty after read_policy
  std::string table = "cagent";
  std::string set4 = "allow4";
  std::string set6 = "allow6";
  std::filesystem::path log_file = "/var/log/cagent/dnsguard.log";
};

// Throws PolicyError naming the file and the bad key.
Policy read_policy(const std::filesystem::path& path);

// "192.0.2.1", "192.0.2.1:53", "2001:db8::1", "[2001:db8::1]:5353".
// Throws std::invalid_argument with the offending text.
nft::Endpoint parse_endpoint(std::string_view text, std::uint16_t default_port = 53);

// "203.0.113.0/24", "2001:db8::/32", or a bare address (a /32 or /128).
// Host bits below the prefix are cleared. Throws std::invalid_argument.
nft::Cidr parse_cidr(std::string_view text);

// "8080/tcp", "5000-5010/udp", "9/sctp": a published container port (range).
// Throws std::invalid_argument with the offending text.
nft::InboundPort parse_inbound_port(std::string_view text);

// The `nameserver` addresses of a resolv.conf text, in order (port 53).
// Unparsable entries are skipped: a resolv.conf is not ours to reject.
std::vector<nft::Endpoint> parse_resolv_conf(std::string_view text);

// "192.0.2.1:53" / "[2001:db8::1]:53", the form dnsguard's `upstreams` takes.
std::string format_endpoint(const nft::Endpoint& endpoint);

}  // namespace cagent::cage
