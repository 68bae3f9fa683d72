#include "dnsguard/ip.hpp"

#include <arpa/inet.h>

#include <charconv>
#include <cstring>

namespace cagent::dnsguard {

std::optional<IpAddress> parse_ip(std::string_view text) {
  // inet_pton wants a NUL-terminated string; bound the copy.
  char buf[INET6_ADDRSTRLEN + 1];
  if (text.empty() || text.size() >= sizeof buf) return std::nullopt;
  std::memcpy(buf, text.data(), text.size());
  buf[text.size()] = '\0';
  IpAddress addr;
  if (inet_pton(AF_INET, buf, addr.bytes.data()) == 1) return addr;
  addr.v6 = true;
  if (inet_pton(AF_INET6, buf, addr.bytes.data()) == 1) return addr;
  return std::nullopt;
}

namespace {
std::optional<std::uint16_t> parse_port(std::string_view text) {
  unsigned value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc{} || end != text.data() + text.size() || value > 65535)
    return std::nullopt;
  return static_cast<std::uint16_t>(value);
}
}  // namespace

std::optional<IpEndpoint> parse_endpoint(std::string_view text,
                                         std::optional<std::uint16_t> default_port) {
  IpEndpoint ep;
  ep.port = default_port.value_or(0);
  bool have_port = default_port.has_value();
  std::string_view host = text;
  if (!text.empty() && text.front() == '[') {
    auto close = text.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    host = text.substr(1, close - 1);
    auto rest = text.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return std::nullopt;
      auto port = parse_port(rest.substr(1));
      if (!port) return std::nullopt;
      ep.port = *port;
      have_port = true;
    }
    auto addr = parse_ip(host);
    if (!addr || !addr->v6 || !have_port) return std::nullopt;
    ep.addr = *addr;
    return ep;
  }
  // Exactly one colon: v4 with a port. More than one: a bare v6 address.
  auto colon = text.find(':');
  if (colon != std::string_view::npos && text.find(':', colon + 1) == std::string_view::npos) {
    auto port = parse_port(text.substr(colon + 1));
    if (!port) return std::nullopt;
    ep.port = *port;
    have_port = true;
    host = text.substr(0, colon);
  }
  auto addr = parse_ip(host);
  if (!addr || !have_port) return std::nullopt;
  ep.addr = *addr;
  return ep;
}

std::optional<Cidr> parse_cidr(std::string_view text) {
  auto slash = text.find('/');
  auto addr = parse_ip(text.substr(0, slash));
  if (!addr) return std::nullopt;
  unsigned max_prefix = addr->v6 ? 128 : 32;
  unsigned prefix = max_prefix;
  if (slash != std::string_view::npos) {
    auto digits = text.substr(slash + 1);
    auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), prefix);
    if (digits.empty() || ec != std::errc{} || end != digits.data() + digits.size() ||
        prefix > max_prefix)
      return std::nullopt;
  }
  Cidr cidr{*addr, static_cast<std::uint8_t>(prefix)};
  Cidr masked = cidr;
  for (unsigned bit = prefix; bit < max_prefix; ++bit)
    masked.base.bytes[bit / 8] &= static_cast<std::uint8_t>(~(0x80u >> (bit % 8)));
  if (masked.base != cidr.base) return std::nullopt;
  return cidr;
}

bool contains(const Cidr& cidr, const IpAddress& addr) noexcept {
  if (cidr.base.v6 != addr.v6) return false;
  unsigned full = cidr.prefix / 8u;
  for (unsigned i = 0; i < full; ++i)
    if (cidr.base.bytes[i] != addr.bytes[i]) return false;
  unsigned rest = cidr.prefix % 8u;
  if (rest == 0) return true;
  auto mask = static_cast<std::uint8_t>(0xFFu << (8 - rest));
  return (cidr.base.bytes[full] & mask) == (addr.bytes[full] & mask);
}

std::string to_string(const IpAddress& addr) {
  char buf[INET6_ADDRSTRLEN] = {};
  inet_ntop(addr.v6 ? AF_INET6 : AF_INET, addr.bytes.data(), buf, sizeof buf);
  return buf;
}

std::string to_string(const IpEndpoint& ep) {
  auto host = to_string(ep.addr);
  return (ep.addr.v6 ? "[" + host + "]" : host) + ":" + std::to_string(ep.port);
}

std::string to_string(const Cidr& cidr) { return to_string(cidr.base) + "/" + std::to_string(cidr.prefix); }

}  // namespace cagent::dnsguard
