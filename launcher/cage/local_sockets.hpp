#pragma once
// Who owns the sockets bound to an address of this network namespace, read
// from the kernel's socket tables (/proc/net/{udp,tcp,udp6,tcp6}).
//
// cage-init asks this once, before the agent exists, for the upstreams
// that live inside the namespace: Docker's embedded resolver listens on
// 127.0.0.11 (on a random port behind Docker's NAT), in sockets dockerd
// opened there as its own uid. That uid is what the ruleset lets answer
// dnsguard's flows locally and forward queries out; see nft/ruleset.cpp
// owned_flows(). The parser is pure; reading the files is the caller's.

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "nft/nft.hpp"

namespace cagent::cage {

struct LocalSocket {
  nft::Address addr;  // its local address
  std::uint16_t port = 0;
  uid_t uid = 0;      // as this namespace's owner sees it
  friend bool operator==(const LocalSocket&, const LocalSocket&) = default;
};

// One /proc/net/{udp,tcp}[6] table: every row's local address, port and
// uid. The header row and rows that do not parse are skipped (the format
// has been stable for decades; a row we cannot read names no owner).
std::vector<LocalSocket> parse_socket_table(std::string_view text, nft::Family family);

// The TCP connections of one /proc/net/tcp[6] table whose local port is
// `port` and that their owner has not finished with: established, still
// in the handshake, or closed by the peer but not yet by the owner
// (CLOSE_WAIT). cage-init counts the gate's this way at the end of a
// session (see executor.cpp).
std::size_t unfinished_connections(std::string_view text, std::uint16_t port);

// The distinct uids of the sockets bound to `addr` (any port), ascending.
std::vector<uid_t> owners_of(const std::vector<LocalSocket>& sockets, const nft::Address& addr);
// … bound to `addr` and `port`.
std::vector<uid_t> owners_of(const std::vector<LocalSocket>& sockets, const nft::Address& addr, std::uint16_t port);

}  // namespace cagent::cage
