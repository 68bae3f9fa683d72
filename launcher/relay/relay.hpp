#pragma once
// cagent-relay: the TLS-terminating relay for the hosts secrets belong to.
//
//   dnsguard's gate ─127.0.0.1:relay.port─▶ accept (a listener cage-init
//     bound and passed in; only dnsguard's uid may connect: the ruleset)
//   read the hand-off (name, destination) ─▶ TLS server handshake with the
//     agent's client: a certificate for `name` from the session CA, ALPN
//     http/1.1 only
//   connect(destination) as the relay's uid ─▶ TLS client handshake: SNI
//     `name`, the server's certificate verified against the trust bundle
//     read at start (the image's and ca_certificates, never the session CA),
//     for `name`; ALPN http/1.1
//   agent → server: every request parsed (http_request.hpp), its head
//     checked and rewritten (rewrite.hpp), bodies streamed as they come
//   server → agent: bytes streamed as they come (no buffering: server-sent
//     events arrive as they are sent)
//
// A refused request ends the connection: on the connection's first request
// the agent gets a 403 naming why; later, the connection is closed (a
// response of ours cannot be put between the server's). A server that
// cannot be reached or verified gets the agent a 502 naming why. Every
// refusal is one JSON line in the relay's record (the host's summary reads
// it) and one line on stderr.
//
// One thread, one io_context; every connection is one coroutine pair. The
// relay holds no capability and no secret but the values in memory.

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>

#include <chrono>
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "dnsguard/contracts.hpp"
#include "launcher/relay/rewrite.hpp"
#include "launcher/relay/session_ca.hpp"

namespace cagent::relay {

struct RelayOptions {
  std::string trust_bundle = "/etc/ssl/certs/ca-certificates.crt";
  std::chrono::milliseconds handshake_timeout{15000};
  std::chrono::milliseconds connect_timeout{15000};
  // Where refusals are recorded (one JSON line each); -1: nowhere.
  int record_fd = -1;
};

class Relay {
 public:
  using TlsStream = boost::asio::ssl::stream<boost::asio::ip::tcp::socket>;
  // `ca` signs one certificate per secret host, made here. Throws
  // std::runtime_error naming what failed (the trust bundle, a certificate).
  Relay(boost::asio::io_context& io, boost::asio::ip::tcp::acceptor& listener, std::vector<Secret> secrets,
        const SessionCa& ca, RelayOptions options);
  void start();

 private:
  boost::asio::awaitable<void> accept_loop();
  boost::asio::awaitable<void> connection(boost::asio::ip::tcp::socket from_gate);
  void record(const dnsguard::RelayRefusal& r);
  // Records `r`; with a status, answers the agent with it first. Closes.
  boost::asio::awaitable<void> refuse(TlsStream& agent, std::string_view status, dnsguard::RelayRefusal r);

  boost::asio::io_context& io_;
  boost::asio::ip::tcp::acceptor& listener_;
  std::vector<Secret> secrets_;
  RelayOptions options_;
  boost::asio::ssl::context client_ctx_;
  std::map<std::string, std::unique_ptr<boost::asio::ssl::context>, std::less<>> server_ctx_;  // per host
};

}  // namespace cagent::relay
