#pragma once
// Socket addresses for the benchmark's plain-socket code (server, connect
// probes, the HTTP client): one place that turns an address and port into a
// sockaddr and reads a bound port back.

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <string>

#include "dnsguard/ip.hpp"

namespace cagent::bench {

// Fills `ss` for addr:port; returns the address length to pass to bind/connect.
socklen_t to_sockaddr(const dnsguard::IpAddress& addr, std::uint16_t port, sockaddr_storage& ss) noexcept;

// The same for an address literal (as parse_host_port produced it); throws
// std::runtime_error when it is not one.
socklen_t to_sockaddr(const std::string& host, std::uint16_t port, sockaddr_storage& ss);

// The local port `fd` is bound to (0 when it cannot be read).
std::uint16_t bound_port(int fd) noexcept;

}  // namespace cagent::bench
