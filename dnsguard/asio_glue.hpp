#pragma once
// What server.cpp and upstream.cpp share about Boost.Asio: errors as values
// on the hot paths (as_tuple), and conversions between dnsguard's own
// address types and Asio's.

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <cstdint>

#include "dnsguard/ip.hpp"

namespace cagent::dnsguard {

inline constexpr auto use_tuple = boost::asio::as_tuple(boost::asio::use_awaitable);

inline boost::asio::ip::address to_asio(const IpAddress& a) {
  if (a.v6) return boost::asio::ip::address_v6(a.bytes);
  return boost::asio::ip::address_v4({a.bytes[0], a.bytes[1], a.bytes[2], a.bytes[3]});
}

inline IpEndpoint from_asio(const boost::asio::ip::address& addr, std::uint16_t port) {
  IpEndpoint ep;
  ep.port = port;
  if (addr.is_v6()) {
    ep.addr.v6 = true;
    ep.addr.bytes = addr.to_v6().to_bytes();
  } else {
    const auto b = addr.to_v4().to_bytes();
    std::copy(b.begin(), b.end(), ep.addr.bytes.begin());
  }
  return ep;
}

// Opens, binds and listens `acceptor` on `ep` (IPv6 sockets v6-only, so the
// two families never share one). Throws boost::system::system_error.
inline void listen_tcp(boost::asio::ip::tcp::acceptor& acceptor, const IpEndpoint& ep) {
  const boost::asio::ip::tcp::endpoint tep(to_asio(ep.addr), ep.port);
  acceptor.open(tep.protocol());
  acceptor.set_option(boost::asio::socket_base::reuse_address(true));
  if (ep.addr.v6) acceptor.set_option(boost::asio::ip::v6_only(true));
  acceptor.bind(tep);
  acceptor.listen(boost::asio::socket_base::max_listen_connections);
}

}  // namespace cagent::dnsguard
