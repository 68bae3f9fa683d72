#include "dnsguard/fd_budget.hpp"

#include <algorithm>

namespace cagent::dnsguard {

std::size_t DescriptorBudget::planned() const noexcept {
  return reserved + 2 * tcp_clients + upstream_queries + 1 + kDescriptorsPerRelay * gate_connections;
}

DescriptorBudget plan_descriptors(std::uint64_t limit, const DescriptorNeeds& needs) noexcept {
  DescriptorBudget b;
  b.limit = limit;
  b.reserved = kReservedDescriptors + kControlSessions + 2 * needs.listen_addresses + needs.gate_listeners;
  const std::uint64_t available = limit > b.reserved ? limit - b.reserved : 0;
  // DNS at full size: each TCP client may wait on one upstream socket; each
  // waiting UDP query holds at most one upstream socket at a time (a retry
  // opens the next after the last closed); the refresh loop one more.
  const std::size_t full_dns = 2 * needs.max_tcp_clients + needs.max_upstream_queries + 1;
  // With a gate, DNS takes at most half of what is available: a flood of
  // gate connections and a flood of queries then each have their own part,
  // and neither can take the other's.
  const std::uint64_t dns_share =
      needs.gate_listeners == 0 ? available : std::min<std::uint64_t>(available / 2 + available % 2, full_dns);
  if (dns_share >= full_dns) {
    b.tcp_clients = needs.max_tcp_clients;
    b.upstream_queries = needs.max_upstream_queries;
  } else {
    b.reduced = true;
    // Scaled down in proportion, at least one of each: a cage whose limit
    // is this small still resolves, more slowly under load.
    b.tcp_clients = std::max<std::size_t>(1, static_cast<std::size_t>(needs.max_tcp_clients * dns_share / full_dns));
    const std::uint64_t left = dns_share > 2 * b.tcp_clients + 1 ? dns_share - 2 * b.tcp_clients - 1 : 0;
    b.upstream_queries = std::max<std::size_t>(1, static_cast<std::size_t>(left));
  }
  if (needs.gate_listeners > 0) {
    const std::uint64_t dns_used = 2 * b.tcp_clients + b.upstream_queries + 1;
    const std::uint64_t for_gate = available > dns_used ? available - dns_used : 0;
    b.gate_connections = static_cast<std::size_t>(
        std::min<std::uint64_t>(needs.max_gate_connections, for_gate / kDescriptorsPerRelay));
  }
  return b;
}

std::string describe(const DescriptorBudget& b) {
  std::string line = "descriptors: limit " + std::to_string(b.limit) + ", reserved " + std::to_string(b.reserved) +
                     ", DNS over TCP " + std::to_string(b.tcp_clients) + ", upstream queries " +
                     std::to_string(b.upstream_queries) + ", gate " + std::to_string(b.gate_connections) +
                     " connections (" + std::to_string(b.planned()) + " planned)";
  if (b.reduced) line += "; the limit is small: DNS runs below its full size";
  return line;
}

}  // namespace cagent::dnsguard
