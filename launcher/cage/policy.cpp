#include "launcher/cage/policy.hpp"

namespace cagent::cage {

Policy read_policy(const std::filesystem::path& path) {
  Policy policy;
  static_cast<dnsguard::Policy&>(policy) = dnsguard::read_policy(path.string());
  policy.path = path;
  return policy;
}

nft::Address to_nft(const dnsguard::IpAddress& address) {
  return nft::Address{address.v6 ? nft::Family::v6 : nft::Family::v4, address.bytes};
}

nft::Endpoint to_nft(const dnsguard::IpEndpoint& endpoint) {
  return nft::Endpoint{to_nft(endpoint.addr), endpoint.port};
}

nft::Cidr to_nft(const dnsguard::Cidr& cidr) { return nft::Cidr{to_nft(cidr.base), cidr.prefix}; }

nft::InboundPort to_nft(const dnsguard::PortRange& range) {
  // dnsguard::Transport holds the IP protocol numbers nft matches on.
  return nft::InboundPort{static_cast<std::uint8_t>(range.proto), range.first, range.last};
}

std::string format_endpoint(const nft::Endpoint& endpoint) {
  const std::string host = nft::to_string(endpoint.addr);
  const std::string port = std::to_string(endpoint.port);
  return endpoint.addr.family == nft::Family::v4 ? host + ":" + port : "[" + host + "]:" + port;
}

}  // namespace cagent::cage
