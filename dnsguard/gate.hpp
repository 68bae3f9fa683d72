#pragma once
// The connection gate: TLS and plain HTTP to an allowed address
// reach it only for a name that resolved to that address through dnsguard.
//
//   agent connect(addr:443) ──nat redirect (only addresses in the sets)──▶ gate listener
//     (dnsguard's uid, 127.0.0.1/::1)  SO_ORIGINAL_DST → addr:443
//     read the first flight (bounded in bytes and time) → parse_client_hello / parse_http_head
//     admit(name, addr)? no → reset, count, log
//                        yes → connect(addr:443) as dnsguard, replay the hello
//     TLS: read the server's first message (bounded in bytes and time)
//          HelloRetryRequest → forward it, read the client's second hello: the same
//                              name or reset both, count, log; then its answer again
//          anything else     → forward it
//     forward what else was read, splice both directions until both sides closed
//
// The gate makes no decision of its own: GateDecider (the engine's
// allowlist and name bindings) does. Every connection is one coroutine
// owning both sockets; the relay moves bytes kernel to kernel (splice
// through a pipe per direction), so the steady state costs no user-space
// copies. Nothing here throws per connection.

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <list>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "dnsguard/decisions.hpp"
#include "dnsguard/gate_bindings.hpp"
#include "dnsguard/gate_parse.hpp"
#include "dnsguard/ip.hpp"
#include "dnsguard/log.hpp"

namespace cagent::dnsguard {

struct GateOptions {
  std::vector<IpEndpoint> listen;           // where the ruleset redirects to
  std::vector<std::uint16_t> tls_ports = {443};
  std::vector<std::uint16_t> http_ports = {80};
  std::chrono::milliseconds first_flight_timeout{10000};
  std::chrono::milliseconds connect_timeout{15000};
  // For the server's answer to a ClientHello, and for the client's second
  // hello after a HelloRetryRequest.
  std::chrono::milliseconds handshake_timeout{15000};
  std::size_t max_connections = 4096;       // beyond: refused at once
};

struct GateCounters {
  std::uint64_t accepted = 0;   // connections that reached the gate
  std::uint64_t admitted = 0;   // their first hello or request head reached the server
  std::uint64_t refused = 0;    // reset by the gate (also: admitted, then a second hello refused)
  std::uint64_t failed = 0;     // admitted, but the server could not be reached or did not answer
  std::uint64_t retried = 0;    // went through a HelloRetryRequest
};

// The bytes read so far from one side of a connection the gate inspects.
struct Inbox {
  std::vector<std::uint8_t> bytes;
  std::size_t got = 0;
  std::span<const std::uint8_t> from(std::size_t offset) const noexcept {
    return {bytes.data() + offset, got - offset};
  }
};

class Gate {
 public:
  Gate(boost::asio::io_context& io, GateOptions options, GateDecider& decider, Logger& log);
  ~Gate();
  Gate(const Gate&) = delete;
  Gate& operator=(const Gate&) = delete;

  // Binds every listen address. Throws std::system_error naming it.
  void start();
  void stop() noexcept;

  const GateCounters& counters() const noexcept { return counters_; }
  // Where refusals are counted exactly (the log line is rate-limited).
  // Not owned; null: not recorded.
  void set_decisions(DecisionRecord* decisions) noexcept { decisions_ = decisions; }
  std::size_t connections() const noexcept { return connections_; }

  // A run-time deny (control.hpp): ends every relay that was admitted for a
  // name `still_allowed` now rejects — also one to an address that stays in
  // the sets because another allowed name shares it (the conntrack cut in
  // cmd/nft_sink covers only evicted addresses). Returns how many.
  std::size_t end_relays(const std::function<bool(std::string_view)>& still_allowed) noexcept;

 private:
  enum class Kind : std::uint8_t { tls, http, none };
  Kind kind_of(std::uint16_t port) const noexcept;

  boost::asio::awaitable<void> accept_loop(boost::asio::ip::tcp::acceptor& acceptor);
  // connection() in steps; each one that fails has reset the sockets and
  // counted why.
  boost::asio::awaitable<void> connection(boost::asio::ip::tcp::socket client);
  Kind destination(boost::asio::ip::tcp::socket& client, IpEndpoint& dst) noexcept;
  boost::asio::awaitable<GateVerdict> read_first_flight(boost::asio::ip::tcp::socket& client, const IpEndpoint& dst,
                                                        Kind kind, Inbox& from_client);
  boost::asio::awaitable<bool> connect(boost::asio::ip::tcp::socket& server, boost::asio::ip::tcp::socket& client,
                                       const IpEndpoint& dst, std::string_view name);
  boost::asio::awaitable<bool> follow_handshake(boost::asio::ip::tcp::socket& client,
                                                boost::asio::ip::tcp::socket& server, const IpEndpoint& dst,
                                                const GateVerdict& first, Inbox& from_client);
  boost::asio::awaitable<GateVerdict> read_retry_hello(boost::asio::ip::tcp::socket& client, const IpEndpoint& dst,
                                                       const GateVerdict& first, Inbox& from_client,
                                                       std::size_t sent);
  void refuse(boost::asio::ip::tcp::socket& client, const IpEndpoint* destination, std::string_view name,
              std::string_view reason) noexcept;

  boost::asio::io_context& io_;
  GateOptions options_;
  GateDecider& decider_;
  Logger& log_;
  GateCounters counters_;
  DecisionRecord* decisions_ = nullptr;
  std::list<boost::asio::ip::tcp::acceptor> acceptors_;
  std::size_t connections_ = 0;
  bool stopped_ = false;
  std::vector<std::uint8_t> scratch_;  // ClientHello reassembly (one parse at a time)
  // The connections admitted now (their handshake still followed, or
  // relayed), with the name each was admitted for. The sockets live in
  // their connection() coroutine, which unlists the entry before they go.
  struct Relay {
    std::string name;
    boost::asio::ip::tcp::socket* client;
    boost::asio::ip::tcp::socket* server;
  };
  std::list<Relay> relays_;
};

// The destination a connection had before the ruleset redirected it
// (SO_ORIGINAL_DST / IP6T_SO_ORIGINAL_DST). False when it was not
// redirected (someone connected to the gate's own address directly).
bool original_destination(int fd, bool v6, IpEndpoint& out) noexcept;

}  // namespace cagent::dnsguard
