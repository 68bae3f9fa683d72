#include "launcher/relay/relay.hpp"

#include <openssl/ssl.h>
#include <unistd.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <array>
#include <cstring>
#include <ctime>
#include <iostream>

#include "launcher/relay/http_request.hpp"

namespace cagent::relay {
namespace {

namespace asio = boost::asio;
namespace ssl = boost::asio::ssl;
using asio::ip::tcp;
using namespace boost::asio::experimental::awaitable_operators;

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
constexpr std::size_t kBufferSize = 16 * 1024;

// The wire form of ALPN's "http/1.1".
constexpr unsigned char kAlpnHttp11[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};

// Offered only http/1.1: a client that asks for h2 alone gets no ALPN and
// speaks HTTP/1.1 (what every HTTP/2 client falls back to).
int select_http11(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in, unsigned int inlen,
                  void*) {
  unsigned char* chosen = nullptr;
  if (SSL_select_next_proto(&chosen, outlen, kAlpnHttp11, sizeof kAlpnHttp11, in, inlen) == OPENSSL_NPN_NEGOTIATED) {
    *out = chosen;
    return SSL_TLSEXT_ERR_OK;
  }
  return SSL_TLSEXT_ERR_NOACK;
}

void harden(ssl::context& ctx) {
  ctx.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                  ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 | ssl::context::no_compression);
  // No renegotiation: one handshake per connection, as the gate checked it.
  SSL_CTX_set_options(ctx.native_handle(), SSL_OP_NO_RENEGOTIATION);
}

std::string response(std::string_view status, std::string_view why) {
  const std::string body = "cagent: " + std::string(why) + "\n";
  return "HTTP/1.1 " + std::string(status) +
         "\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\nContent-Length: " +
         std::to_string(body.size()) + "\r\n\r\n" + body;
}

// Runs `op` with a deadline; false when it failed or timed out.
template <typename Op>
asio::awaitable<bool> within(asio::io_context& io, std::chrono::milliseconds limit, Op op) {
  asio::steady_timer deadline(io, limit);
  auto r = co_await (std::move(op) || deadline.async_wait(use_tuple));
  co_return r.index() == 0 && !std::get<0>(std::get<0>(r));
}

void close(Relay::TlsStream& s) {
  boost::system::error_code ignored;
  s.lowest_layer().shutdown(tcp::socket::shutdown_both, ignored);
  s.lowest_layer().close(ignored);
}

}  // namespace

Relay::Relay(asio::io_context& io, tcp::acceptor& listener, std::vector<Secret> secrets, const SessionCa& ca,
             RelayOptions options)
    : io_(io), listener_(listener), secrets_(std::move(secrets)), options_(std::move(options)),
      client_ctx_(ssl::context::tls_client) {
  harden(client_ctx_);
  client_ctx_.set_verify_mode(ssl::verify_peer);
  boost::system::error_code ec;
  client_ctx_.load_verify_file(options_.trust_bundle, ec);
  if (ec) throw std::runtime_error("trust bundle " + options_.trust_bundle + ": " + ec.message());
  SSL_CTX_set_alpn_protos(client_ctx_.native_handle(), kAlpnHttp11, sizeof kAlpnHttp11);
  for (const Secret& s : secrets_) {
    for (const std::string& host : s.hosts) {
      if (server_ctx_.contains(host)) continue;
      auto ctx = std::make_unique<ssl::context>(ssl::context::tls_server);
      harden(*ctx);
      const Leaf leaf = ca.issue(host);
      if (SSL_CTX_use_certificate(ctx->native_handle(), leaf.cert.get()) != 1 ||
          SSL_CTX_use_PrivateKey(ctx->native_handle(), leaf.key.get()) != 1) {
        throw std::runtime_error("the certificate for " + host + " does not load");
      }
      SSL_CTX_set_alpn_select_cb(ctx->native_handle(), select_http11, nullptr);
      server_ctx_.emplace(host, std::move(ctx));
    }
  }
}

void Relay::start() { asio::co_spawn(io_, accept_loop(), asio::detached); }

void Relay::record(const dnsguard::RelayRefusal& r) {
  std::cerr << "cagent-relay: refused on " << r.host << "'s connection: " << r.reason << "\n";
  if (options_.record_fd < 0) return;
  const std::string line = dnsguard::write_relay_refusal(r);
  // O_APPEND, one write per line: whole lines even if another writer joins.
  if (::write(options_.record_fd, line.data(), line.size()) != static_cast<ssize_t>(line.size())) {
    std::cerr << "cagent-relay: could not record the refusal: " << std::strerror(errno) << "\n";
  }
}

asio::awaitable<void> Relay::accept_loop() {
  for (;;) {
    auto [ec, socket] = co_await listener_.async_accept(use_tuple);
    if (ec) {
      if (ec == asio::error::operation_aborted) co_return;
      // Out of descriptors: pause instead of spinning.
      asio::steady_timer pause(io_, std::chrono::milliseconds(100));
      co_await pause.async_wait(use_tuple);
      continue;
    }
    asio::co_spawn(io_, connection(std::move(socket)), asio::detached);
  }
}

asio::awaitable<void> Relay::refuse(TlsStream& agent, std::string_view status, dnsguard::RelayRefusal r) {
  r.time = static_cast<std::int64_t>(std::time(nullptr));
  record(r);
  if (!status.empty()) {
    const std::string answer = response(status, r.reason);
    co_await within(io_, options_.handshake_timeout, asio::async_write(agent, asio::buffer(answer), use_tuple));
    co_await within(io_, options_.handshake_timeout, agent.async_shutdown(use_tuple));
  }
  close(agent);
}

asio::awaitable<void> Relay::connection(tcp::socket from_gate) {
  // 1. The gate's hand-off: exactly its length, then exactly the document.
  std::array<unsigned char, 2> length{};
  if (!co_await within(io_, options_.handshake_timeout, asio::async_read(from_gate, asio::buffer(length), use_tuple))) {
    co_return;
  }
  const std::size_t n = (std::size_t{length[0]} << 8) | length[1];
  if (n == 0 || n > dnsguard::kMaxRelayHandoff) co_return;
  std::string document(n, '\0');
  if (!co_await within(io_, options_.handshake_timeout, asio::async_read(from_gate, asio::buffer(document), use_tuple))) {
    co_return;
  }
  dnsguard::RelayHandoff handoff;
  try {
    handoff = dnsguard::parse_relay_handoff(document);
  } catch (const std::exception& e) {
    std::cerr << "cagent-relay: " << e.what() << "\n";
    co_return;
  }
  const auto ctx = server_ctx_.find(handoff.name);
  if (ctx == server_ctx_.end()) co_return;  // not a secret's host: the gate never sends one
  const std::string& name = ctx->first;
  boost::system::error_code ec;
  const auto address = asio::ip::make_address(handoff.addr, ec);
  if (ec) co_return;

  // 2. The agent's TLS, with the session CA's certificate for the name.
  TlsStream agent(std::move(from_gate), *ctx->second);
  if (!co_await within(io_, options_.handshake_timeout, agent.async_handshake(ssl::stream_base::server, use_tuple))) {
    close(agent);
    co_return;
  }

  // 3. The real server, verified for the name.
  TlsStream server(tcp::socket(io_), client_ctx_);
  if (!co_await within(io_, options_.connect_timeout,
                       server.lowest_layer().async_connect(tcp::endpoint(address, handoff.port), use_tuple))) {
    // Named first: GCC 12 mishandles temporaries with destructors inside
    // a co_await expression (a double free here).
    const dnsguard::RelayRefusal refusal{name, "cannot reach " + name + " at " + handoff.addr, {}, {}, 0};
    co_await refuse(agent, "502 Bad Gateway", refusal);
    co_return;
  }
  // SSL_set_tlsext_host_name() without its macro's C cast.
  SSL_ctrl(server.native_handle(), SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name, const_cast<char*>(name.c_str()));
  // OpenSSL's own name check, part of the chain's verification (its error
  // then says "hostname mismatch").
  SSL_set1_host(server.native_handle(), name.c_str());
  if (!co_await within(io_, options_.handshake_timeout, server.async_handshake(ssl::stream_base::client, use_tuple))) {
    const long result = SSL_get_verify_result(server.native_handle());
    const dnsguard::RelayRefusal refusal{
        name,
        result != X509_V_OK ? name + "'s certificate is not trusted: " + X509_verify_cert_error_string(result)
                            : "the TLS handshake with " + name + " failed",
        {}, {}, 0};
    co_await refuse(agent, "502 Bad Gateway", refusal);
    close(server);
    co_return;
  }
  boost::system::error_code ignored;
  server.lowest_layer().set_option(tcp::no_delay(true), ignored);
  agent.lowest_layer().set_option(tcp::no_delay(true), ignored);

  // 4. Requests up, checked; answers down, as they come.
  std::optional<dnsguard::RelayRefusal> refused;
  std::uint64_t forwarded = 0;
  auto up = [&]() -> asio::awaitable<void> {
    RequestParser parser;
    std::vector<RequestParser::Event> events;
    std::array<std::uint8_t, kBufferSize> buffer{};
    for (;;) {
      auto [read_ec, got] = co_await agent.async_read_some(asio::buffer(buffer), use_tuple);
      if (read_ec) break;
      events.clear();
      const bool ok = parser.feed({buffer.data(), got}, events);
      for (const auto& e : events) {
        if (e.kind == RequestParser::Event::Kind::head) {
          Verdict v = check_and_rewrite(e.head, name, secrets_);
          if (!v.forward) {
            refused = dnsguard::RelayRefusal{name, v.reason, v.secret, v.host, 0};
            co_return;
          }
          auto [w_ec, w] = co_await asio::async_write(server, asio::buffer(v.head), use_tuple);
          if (w_ec) co_return;
          ++forwarded;
        } else if (e.kind == RequestParser::Event::Kind::body) {
          const std::string_view bytes = e.bytes();
          auto [w_ec, w] = co_await asio::async_write(server, asio::buffer(bytes.data(), bytes.size()), use_tuple);
          if (w_ec) co_return;
        }
      }
      if (!ok) {
        refused = dnsguard::RelayRefusal{name, "a malformed request: " + parser.error(), {}, {}, 0};
        co_return;
      }
    }
    // The agent sent all it will: the answers may still be coming.
    asio::steady_timer forever(io_, asio::steady_timer::time_point::max());
    co_await forever.async_wait(use_tuple);
  };
  auto down = [&]() -> asio::awaitable<void> {
    std::array<std::uint8_t, kBufferSize> buffer{};
    for (;;) {
      auto [read_ec, got] = co_await server.async_read_some(asio::buffer(buffer), use_tuple);
      if (read_ec) break;
      auto [w_ec, w] = co_await asio::async_write(agent, asio::buffer(buffer.data(), got), use_tuple);
      if (w_ec) co_return;
    }
    co_await within(io_, options_.handshake_timeout, agent.async_shutdown(use_tuple));
  };
  co_await (up() || down());
  if (refused) {
    // Only before the server answered anything: a response of ours
    // cannot go between its responses.
    const dnsguard::RelayRefusal refusal = *refused;
    co_await refuse(agent, forwarded == 0 ? "403 Forbidden" : "", refusal);
  }
  close(agent);
  close(server);
}

}  // namespace cagent::relay
