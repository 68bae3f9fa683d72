#pragma once
// The connection gate: TLS and plain HTTP to an allowed address
// reach it only for a name that resolved to that address through dnsguard.
//
//   agent connect(addr:443) ──nat redirect (only addresses in the sets)──▶ gate listener
//     (dnsguard's uid, 127.0.0.1/::1)  SO_ORIGINAL_DST → addr:443
//     read the first flight (bounded in bytes and time) → parse_client_hello / parse_http_head
//     admit(name, addr, when accepted)? no → reset, count, log
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
//
// Bounded against a hostile (or just busy) agent: at most max_connections
// at once (the server derives it from the descriptor limit, fd_budget.hpp;
// beyond it a connection is reset at once and recorded), every step before
// the relay has a deadline, a relay with no byte either way for
// relay_idle_timeout is ended, and an accept() that fails for want of
// descriptors pauses instead of spinning (accept_backoff.hpp).

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "dnsguard/accept_backoff.hpp"
#include "dnsguard/decisions.hpp"
#include "dnsguard/gate_bindings.hpp"
#include "dnsguard/gate_parse.hpp"
#include "dnsguard/ip.hpp"
#include "dnsguard/log.hpp"

namespace cagent::dnsguard {

// An admitted relay that moved no byte either way for this long is ended
// (both sides reset). 15 minutes: longer than what legitimate traffic stays
// silent — SSE streams and WebSockets send keep-alives every 15–60 s, git's
// smart HTTP sends progress or keep-alive packets every 5 s while the server
// prepares a pack (uploadpack.keepAlive) or runs hooks (receive.keepAlive),
// long polls answer within a few minutes, and the slowest silent request an
// agent makes, a non-streaming LLM API call, is cut by its own SDK at 10
// minutes (the Anthropic and OpenAI SDKs' default timeout) — and longer
// than the internet path itself keeps an idle TCP connection (load
// balancers cut them after 1–6 minutes: AWS ALB 60 s, NLB 350 s, Azure
// 4 minutes). What it ends is a relay whose peer vanished without a word,
// or that an agent keeps open only to hold a slot. Found by a sweep once a
// minute, so a relay ends between 15 and 16 minutes of silence.
inline constexpr std::chrono::seconds kRelayIdleTimeout{15 * 60};
// The gate's own maximum of connections at once, whatever the descriptor
// limit allows: it bounds the gate's memory (dnsguard/README.md).
inline constexpr std::size_t kMaxGateConnections = 4096;
// Of those, at most this many before the relay: a connection whose hellos
// the gate still reads holds up to ~85 KiB (a first flight of up to 20 KiB,
// after a HelloRetryRequest a second one, the server's first messages, its
// coroutine frames), a relayed one under 12 KiB (6.5–7.3 KiB measured,
// bench/load.sh). 512 handshakes at once is far above
// what clients open (browsers: about six per site); an agent that holds
// more silent ones gets its next connections refused, not dnsguard's memory.
inline constexpr std::size_t kMaxGateHandshakes = 512;

struct GateOptions {
  std::vector<IpEndpoint> listen;           // where the ruleset redirects to
  std::vector<std::uint16_t> tls_ports = {443};
  std::vector<std::uint16_t> http_ports = {80};
  std::chrono::milliseconds first_flight_timeout{10000};
  std::chrono::milliseconds connect_timeout{15000};
  // For the server's answer to a ClientHello, and for the client's second
  // hello after a HelloRetryRequest.
  std::chrono::milliseconds handshake_timeout{15000};
  // Beyond: refused at once ("too many connections at once"), counted and
  // recorded. The server sets it from the descriptor budget.
  std::size_t max_connections = kMaxGateConnections;
  std::size_t max_handshakes = kMaxGateHandshakes;
  std::chrono::seconds relay_idle_timeout = kRelayIdleTimeout;
  // The secret relay (launcher/relay): TLS admitted for one of relay_hosts
  // goes to `relay` (cagent-relay on loopback) instead of the server, behind
  // a hand-off naming the server (dnsguard/contracts.hpp); plain HTTP to
  // them is refused, so a secret never travels in clear. Unset: no relay.
  std::optional<IpEndpoint> relay;
  std::vector<std::string> relay_hosts;
};

struct GateCounters {
  std::uint64_t accepted = 0;   // connections that reached the gate
  std::uint64_t admitted = 0;   // their first hello or request head reached the server
  std::uint64_t refused = 0;    // reset by the gate (also: admitted, then a second hello refused)
  std::uint64_t failed = 0;     // admitted, but the server could not be reached or did not answer
  std::uint64_t retried = 0;    // went through a HelloRetryRequest
  std::uint64_t idle_ended = 0; // relays ended after relay_idle_timeout of silence
  std::uint64_t at_cap = 0;     // refused: max_connections or max_handshakes were open (also in `refused`)
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
  // accept() calls that failed for want of resources (and paused).
  std::uint64_t accept_failures() const noexcept { return backoff_.failures(); }
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
  // Ends the relays silent for relay_idle_timeout, once a minute.
  boost::asio::awaitable<void> idle_loop();
  // connection() in steps; each one that fails has reset the sockets and
  // counted why.
  boost::asio::awaitable<void> connection(boost::asio::ip::tcp::socket client);
  Kind destination(boost::asio::ip::tcp::socket& client, IpEndpoint& dst) noexcept;
  boost::asio::awaitable<GateVerdict> read_first_flight(boost::asio::ip::tcp::socket& client, const IpEndpoint& dst,
                                                        Kind kind, Inbox& from_client);
  boost::asio::awaitable<bool> connect(boost::asio::ip::tcp::socket& server, boost::asio::ip::tcp::socket& client,
                                       const IpEndpoint& dst, std::string_view name);
  bool relayed(std::string_view name) const noexcept;
  // Connects to the relay and sends the hand-off for (name, dst).
  boost::asio::awaitable<bool> hand_off(boost::asio::ip::tcp::socket& relay, boost::asio::ip::tcp::socket& client,
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
  AcceptBackoff backoff_;
  boost::asio::steady_timer idle_timer_;
  std::size_t connections_ = 0;
  std::size_t handshakes_ = 0;  // connections not yet relayed
  bool stopped_ = false;
  std::vector<std::uint8_t> scratch_;  // ClientHello reassembly (one parse at a time)
  // The connections admitted now (their handshake still followed, or
  // relayed), with the name each was admitted for. The sockets live in
  // their connection() coroutine, which unlists the entry before they go.
  struct Relay {
    std::string name;
    boost::asio::ip::tcp::socket* client;
    boost::asio::ip::tcp::socket* server;
    // Relayed (handed over to splice), and when a byte last moved either
    // way; before that, the handshake's own deadlines apply.
    bool spliced = false;
    std::chrono::steady_clock::time_point last{};
  };
  std::list<Relay> relays_;
  // False once the gate is destroyed: dnsguard's io_context outlives it and
  // destroys the relays still running then (a connection open at SIGTERM),
  // whose clean-up must not touch relays_ any more.
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

// The destination a connection had before the ruleset redirected it
// (SO_ORIGINAL_DST / IP6T_SO_ORIGINAL_DST). False when it was not
// redirected (someone connected to the gate's own address directly).
bool original_destination(int fd, bool v6, IpEndpoint& out) noexcept;

}  // namespace cagent::dnsguard
