#include "bench/sockaddr.hpp"

#include <arpa/inet.h>

#include <cstring>
#include <stdexcept>

namespace cagent::bench {

socklen_t to_sockaddr(const dnsguard::IpAddress& addr, std::uint16_t port, sockaddr_storage& ss) noexcept {
  std::memset(&ss, 0, sizeof ss);
  if (!addr.v6) {
    sockaddr_in v4{};
    v4.sin_family = AF_INET;
    v4.sin_port = htons(port);
    std::memcpy(&v4.sin_addr, addr.bytes.data(), 4);
    std::memcpy(&ss, &v4, sizeof v4);
    return sizeof v4;
  }
  sockaddr_in6 v6{};
  v6.sin6_family = AF_INET6;
  v6.sin6_port = htons(port);
  std::memcpy(&v6.sin6_addr, addr.bytes.data(), 16);
  std::memcpy(&ss, &v6, sizeof v6);
  return sizeof v6;
}

socklen_t to_sockaddr(const std::string& host, std::uint16_t port, sockaddr_storage& ss) {
  const auto addr = dnsguard::parse_ip(host);
  if (!addr) throw std::runtime_error("not an IP address: " + host);
  return to_sockaddr(*addr, port, ss);
}

std::uint16_t bound_port(int fd) noexcept {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return 0;
  // sin_port and sin6_port sit at the same offset, right after the family.
  std::uint16_t port = 0;
  std::memcpy(&port, reinterpret_cast<const char*>(&ss) + offsetof(sockaddr_in, sin_port), sizeof port);
  return ntohs(port);
}

}  // namespace cagent::bench
