#include "dnsguard/gate.hpp"

#include <fcntl.h>
#include <linux/netfilter_ipv4.h>
#include <linux/netfilter_ipv6/ip6_tables.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <optional>
#include <variant>

#include "dnsguard/asio_glue.hpp"
#include "dnsguard/contracts.hpp"
#include "dnsguard/posix.hpp"

namespace cagent::dnsguard {

namespace asio = boost::asio;
using asio::ip::tcp;
using namespace asio::experimental::awaitable_operators;

namespace {

// The relay's pipes: 1 MiB each (the unprivileged maximum,
// /proc/sys/fs/pipe-max-size) where the kernel allows, so a bulk transfer
// moves up to that much per splice() pair instead of 64 KiB. Pages are
// only pinned while data sits in the pipe.
constexpr int kPipeSize = 1 << 18;
constexpr std::size_t kSpliceChunk = kPipeSize;
// Bytes one direction moves before it lets other work run (4 chunks).
constexpr std::size_t kYieldAfter = 4 * kSpliceChunk;

// A pipe: the kernel buffer splice() moves bytes through. Owns both ends.
class Pipe {
 public:
  Pipe() noexcept {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC | O_NONBLOCK) == 0) {
      read_.reset(fds[0]);
      write_.reset(fds[1]);
      (void)::fcntl(fds[1], F_SETPIPE_SZ, kPipeSize);  // best effort: 64 KiB still works
    }
  }
  bool ok() const noexcept { return read_.valid(); }
  int read_end() const noexcept { return read_.get(); }
  int write_end() const noexcept { return write_.get(); }

 private:
  UniqueFd read_;
  UniqueFd write_;
};

// One direction of the relay: from → pipe → to, until `from` ends or
// anything fails. On EOF the write side of `to` is shut (half-close); on an
// error both sockets are shut so the other direction ends too.
// `last`: when a byte last moved, either way (the relay's idle timeout).
asio::awaitable<void> pump(tcp::socket& from, tcp::socket& to, std::chrono::steady_clock::time_point& last) {
  Pipe pipe;
  if (!pipe.ok()) {
    boost::system::error_code ignored;
    from.shutdown(tcp::socket::shutdown_both, ignored);
    to.shutdown(tcp::socket::shutdown_both, ignored);
    co_return;
  }
  const int in = from.native_handle();
  const int out = to.native_handle();
  bool failed = false;
  std::size_t since_yield = 0;
  for (;;) {
    // Fairness: the relay shares dnsguard's one thread with DNS. A fast
    // sender would keep this loop busy for as long as data keeps coming;
    // after a few chunks, let the other coroutines (queries) run.
    if (since_yield >= kYieldAfter) {
      since_yield = 0;
      co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
    }
    const ssize_t n = ::splice(in, nullptr, pipe.write_end(), nullptr, kSpliceChunk, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
    if (n == 0) break;  // EOF from `from`
    if (n < 0) {
      const int err = errno;
      if (err == EAGAIN) {
        auto [ec] = co_await from.async_wait(tcp::socket::wait_read, use_tuple);
        if (ec) {
          failed = true;
          break;
        }
        continue;
      }
      failed = true;
      break;
    }
    since_yield += static_cast<std::size_t>(n);
    last = std::chrono::steady_clock::now();
    for (ssize_t left = n; left > 0;) {
      const ssize_t m = ::splice(pipe.read_end(), nullptr, out, nullptr, static_cast<std::size_t>(left),
                                 SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
      if (m > 0) {
        left -= m;
        continue;
      }
      const int err = errno;
      if (m < 0 && err == EAGAIN) {
        auto [ec] = co_await to.async_wait(tcp::socket::wait_write, use_tuple);
        if (!ec) continue;
      }
      failed = true;
      break;
    }
    if (failed) break;
  }
  boost::system::error_code ignored;
  if (failed) {
    from.shutdown(tcp::socket::shutdown_both, ignored);
    to.shutdown(tcp::socket::shutdown_both, ignored);
  } else {
    to.shutdown(tcp::socket::shutdown_send, ignored);
  }
}

// Both directions kernel to kernel, until both have ended.
asio::awaitable<void> splice_both(tcp::socket& client, tcp::socket& server,
                                  std::chrono::steady_clock::time_point& last) {
  client.native_non_blocking(true);
  server.native_non_blocking(true);
  co_await (pump(client, server, last) && pump(server, client, last));
}

// The most the gate reads of a first flight before it decides.
constexpr std::size_t kMaxFirstFlight = std::max(kMaxClientHello + 4096, kMaxHttpHead);

enum class ReadEnd : std::uint8_t { decided, timed_out, closed, too_large };

// Reads from `from` into `in` until `decided()` (asked first about the
// bytes already there, then after each read) says yes, `limit` bytes are
// held, the deadline passes or the peer ends its side.
template <class Decided>
asio::awaitable<ReadEnd> read_until(tcp::socket& from, Inbox& in, std::size_t limit, asio::steady_timer& deadline,
                                    Decided decided) {
  for (;;) {
    if (decided()) co_return ReadEnd::decided;
    // The buffer starts small (most hellos and request heads fit in 4 KiB)
    // and grows only for the large ones.
    if (in.got == in.bytes.size()) {
      if (in.bytes.size() >= limit) co_return ReadEnd::too_large;
      in.bytes.resize(std::min(limit, std::max<std::size_t>(4096, in.bytes.size() * 2)));
    }
    auto result = co_await (from.async_read_some(asio::buffer(in.bytes.data() + in.got, in.bytes.size() - in.got),
                                                 use_tuple) ||
                            deadline.async_wait(use_tuple));
    if (result.index() == 1) co_return ReadEnd::timed_out;
    auto [ec, n] = std::get<0>(result);
    if (ec || n == 0) co_return ReadEnd::closed;
    in.got += n;
  }
}

asio::awaitable<bool> forward(tcp::socket& to, std::span<const std::uint8_t> bytes) {
  if (bytes.empty()) co_return true;
  auto [ec, written] = co_await asio::async_write(to, asio::buffer(bytes.data(), bytes.size()), use_tuple);
  co_return !ec;
}

// Ends a connection with a reset: the peer fails at once instead of
// waiting for more.
void reset(tcp::socket& sock) noexcept {
  boost::system::error_code ignored;
  sock.set_option(asio::socket_base::linger(true, 0), ignored);
  sock.close(ignored);
}

}  // namespace

bool original_destination(int fd, bool v6, IpEndpoint& out) noexcept {
  if (v6) {
    sockaddr_in6 sa{};
    socklen_t len = sizeof sa;
    if (::getsockopt(fd, SOL_IPV6, IP6T_SO_ORIGINAL_DST, &sa, &len) != 0 || sa.sin6_family != AF_INET6) return false;
    out.addr.v6 = true;
    std::memcpy(out.addr.bytes.data(), &sa.sin6_addr, 16);
    out.port = ntohs(sa.sin6_port);
    return true;
  }
  sockaddr_in sa{};
  socklen_t len = sizeof sa;
  if (::getsockopt(fd, SOL_IP, SO_ORIGINAL_DST, &sa, &len) != 0 || sa.sin_family != AF_INET) return false;
  out.addr = IpAddress{};
  std::memcpy(out.addr.bytes.data(), &sa.sin_addr, 4);
  out.port = ntohs(sa.sin_port);
  return true;
}

Gate::Gate(asio::io_context& io, GateOptions options, GateDecider& decider, Logger& log)
    : io_(io),
      options_(std::move(options)),
      decider_(decider),
      log_(log),
      backoff_(io.get_executor(), log, "gate"),
      idle_timer_(io),
      scratch_(kMaxClientHello) {}

Gate::~Gate() {
  stop();
  *alive_ = false;
}

Gate::Kind Gate::kind_of(std::uint16_t port) const noexcept {
  if (std::find(options_.tls_ports.begin(), options_.tls_ports.end(), port) != options_.tls_ports.end()) return Kind::tls;
  if (std::find(options_.http_ports.begin(), options_.http_ports.end(), port) != options_.http_ports.end())
    return Kind::http;
  return Kind::none;
}

void Gate::start() {
  // splice() into a socket whose peer is gone raises SIGPIPE (it takes no
  // MSG_NOSIGNAL), and its default action would end dnsguard — DNS and the
  // gate with it — whenever a client reset a relay while its server was
  // still sending. The pumps handle EPIPE as an error instead.
  std::signal(SIGPIPE, SIG_IGN);
  // max_connections comes from the server's descriptor budget (six per
  // relayed connection: two sockets, two pipes), which also raised the
  // soft limit to the hard one.
  for (const IpEndpoint& ep : options_.listen) {
    try {
      listen_tcp(acceptors_.emplace_back(io_), ep);
    } catch (const boost::system::system_error& e) {
      throw std::runtime_error("gate listen " + to_string(ep) + ": " + e.code().message());
    }
  }
  for (auto& acc : acceptors_) asio::co_spawn(io_, accept_loop(acc), asio::detached);
  asio::co_spawn(io_, idle_loop(), asio::detached);
}

void Gate::stop() noexcept {
  if (stopped_) return;
  stopped_ = true;
  boost::system::error_code ignored;
  for (auto& a : acceptors_) a.close(ignored);
  backoff_.cancel();
  idle_timer_.cancel();
}

void Gate::refuse(tcp::socket& client, const IpEndpoint* destination, std::string_view name,
                  std::string_view reason) noexcept {
  ++counters_.refused;
  // A reset, not a FIN: the client fails at once, as with the firewall's
  // own refusals, and nothing it sent after the bytes refused reached any
  // server.
  reset(client);
  if (decisions_ != nullptr) {
    decisions_->gate_refused(name, destination != nullptr ? to_string(*destination) : std::string(), reason,
                             DecisionRecord::WallClock::now());
  }
  if (log_.enabled(LogLevel::info)) {
    std::string line = "gate refused";
    if (!name.empty()) line += " name=" + std::string(name);
    if (destination != nullptr) line += " dst=" + to_string(*destination);
    line += " reason=\"" + std::string(reason) + "\"";
    log_.event(LogLevel::info, line);
  }
}

std::size_t Gate::end_relays(const std::function<bool(std::string_view)>& still_allowed) noexcept {
  std::size_t ended = 0;
  for (Relay& r : relays_) {
    if (still_allowed(r.name)) continue;
    boost::system::error_code ignored;
    // A reset to the client (as for a refusal); both pumps see their
    // sockets shut and end, and the coroutine unlists the relay.
    r.client->set_option(asio::socket_base::linger(true, 0), ignored);
    r.client->shutdown(tcp::socket::shutdown_both, ignored);
    r.server->shutdown(tcp::socket::shutdown_both, ignored);
    ++ended;
  }
  if (ended > 0) log_.always("gate: ended " + std::to_string(ended) + " relays of names taken back");
  return ended;
}

asio::awaitable<void> Gate::accept_loop(tcp::acceptor& acceptor) {
  try {
    while (!stopped_) {
      auto [ec, sock] = co_await acceptor.async_accept(use_tuple);
      if (stopped_ || ec == asio::error::operation_aborted) co_return;
      if (ec) {
        // Out of descriptors: the connection waits in the backlog; pause
        // rather than spin on it. Anything else consumed the connection.
        if (AcceptBackoff::out_of_resources(ec)) co_await backoff_.pause(ec);
        continue;
      }
      backoff_.accepted();
      ++counters_.accepted;
      if (connections_ >= options_.max_connections || handshakes_ >= options_.max_handshakes) {
        // Refused at once, and recorded with where it was going, so the
        // user sees why (`cagent log`); what these caps protect is DNS's
        // and the decision record's descriptors, and dnsguard's memory.
        ++counters_.at_cap;
        IpEndpoint dst;
        boost::system::error_code lec;
        const bool v6 = sock.local_endpoint(lec).address().is_v6();
        const bool known = !lec && original_destination(sock.native_handle(), v6, dst);
        const bool full = connections_ >= options_.max_connections;
        refuse(sock, known ? &dst : nullptr, {}, full ? "too many connections at once" : "too many handshakes at once");
        continue;
      }
      ++connections_;
      ++handshakes_;
      asio::co_spawn(io_, connection(std::move(sock)), asio::detached);
    }
  } catch (const std::exception& e) {
    log_.event(LogLevel::error, std::string("gate accept loop: ") + e.what());
  }
}

asio::awaitable<void> Gate::idle_loop() {
  // A sweep once a minute (or more often for a shorter timeout, as tests
  // set): one timer for every relay instead of one per relay re-armed on
  // every chunk.
  using std::chrono::milliseconds;
  const auto every = std::min<milliseconds>(
      std::chrono::seconds(60),
      std::chrono::duration_cast<milliseconds>(options_.relay_idle_timeout) / 4 + milliseconds(1));
  try {
    while (!stopped_) {
      idle_timer_.expires_after(every);
      auto [ec] = co_await idle_timer_.async_wait(use_tuple);
      if (ec || stopped_) co_return;
      const auto now = std::chrono::steady_clock::now();
      std::size_t ended = 0;
      for (Relay& r : relays_) {
        if (!r.spliced || now - r.last < options_.relay_idle_timeout) continue;
        boost::system::error_code ignored;
        r.client->set_option(asio::socket_base::linger(true, 0), ignored);
        r.server->set_option(asio::socket_base::linger(true, 0), ignored);
        r.client->shutdown(tcp::socket::shutdown_both, ignored);
        r.server->shutdown(tcp::socket::shutdown_both, ignored);
        r.spliced = false;  // ended once; the pumps unlist it
        ++ended;
      }
      if (ended > 0) {
        counters_.idle_ended += ended;
        log_.event(LogLevel::info, "gate: ended " + std::to_string(ended) + " relays silent for " +
                                       std::to_string(options_.relay_idle_timeout.count()) + " s");
      }
    }
  } catch (const std::exception& e) {
    log_.event(LogLevel::error, std::string("gate idle sweep: ") + e.what());
  }
}

asio::awaitable<void> Gate::connection(tcp::socket client) {
  // Counted by accept_loop before this started; given back here.
  struct Count {
    std::size_t& n;
    explicit Count(std::size_t& counter) : n(counter) {}
    ~Count() { --n; }
    Count(const Count&) = delete;
    Count& operator=(const Count&) = delete;
  };
  const Count count{connections_};
  std::optional<Count> handshake(std::in_place, handshakes_);
  try {
    IpEndpoint dst;
    const Kind kind = destination(client, dst);
    if (kind == Kind::none) co_return;
    Inbox from_client;
    const GateVerdict hello = co_await read_first_flight(client, dst, kind, from_client);
    if (hello.status != GateParse::done) co_return;
    // Admitted: connect as dnsguard (the ruleset lets dnsguard reach only
    // addresses in the sets, and never redirects its own connections) —
    // or, for a secret's host, to the relay, which connects itself.
    tcp::socket server(io_);
    if (relayed(hello.name.view())) {
      if (kind != Kind::tls) {
        refuse(client, &dst, hello.name.view(), "plain HTTP to a secret's host");
        co_return;
      }
      if (!co_await hand_off(server, client, dst, hello.name.view())) co_return;
    } else if (!co_await connect(server, client, dst, hello.name.view())) {
      co_return;
    }
    ++counters_.admitted;
    // Listed from here on, so a run-time deny of the name ends it also
    // while its handshake is still being followed.
    relays_.push_back(Relay{std::string(hello.name.view()), &client, &server, false, {}});
    struct Unlist {
      std::list<Relay>& relays;
      std::list<Relay>::iterator it;
      std::shared_ptr<const bool> alive;  // see alive_
      ~Unlist() {
        if (*alive) relays.erase(it);
      }
    } unlist{relays_, std::prev(relays_.end()), alive_};
    boost::system::error_code ignored;
    server.set_option(tcp::no_delay(true), ignored);  // the replayed bytes go out at once
    // A relay adds no Nagle of its own: each side's sender already chose
    // how to segment. Without it a server that writes a response's head and
    // body apart waited on the client's delayed ACK, 40 ms a request
    // (bench/relay.sh found it).
    client.set_option(tcp::no_delay(true), ignored);
    const bool handed_over = kind == Kind::tls ? co_await follow_handshake(client, server, dst, hello, from_client)
                                               : co_await forward(server, from_client.from(0));
    if (!handed_over) co_return;
    from_client = {};
    handshake.reset();
    unlist.it->spliced = true;
    unlist.it->last = std::chrono::steady_clock::now();
    co_await splice_both(client, server, unlist.it->last);
  } catch (const std::exception& e) {
    log_.event(LogLevel::error, std::string("gate connection: ") + e.what());
  }
}

Gate::Kind Gate::destination(tcp::socket& client, IpEndpoint& dst) noexcept {
  boost::system::error_code ec;
  const bool v6 = client.local_endpoint(ec).address().is_v6();
  if (ec || !original_destination(client.native_handle(), v6, dst)) {
    refuse(client, nullptr, {}, "not redirected");
    return Kind::none;
  }
  // A redirect to ourselves would be a loop; nothing legitimate does it.
  if (std::find(options_.listen.begin(), options_.listen.end(), dst) != options_.listen.end()) {
    refuse(client, &dst, {}, "not redirected");
    return Kind::none;
  }
  const Kind kind = kind_of(dst.port);
  if (kind == Kind::none) refuse(client, &dst, {}, "port not gated");
  return kind;
}

asio::awaitable<GateVerdict> Gate::read_first_flight(tcp::socket& client, const IpEndpoint& dst, Kind kind,
                                                     Inbox& from_client) {
  GateVerdict verdict;
  // The firewall let the connection in just before it was accepted: its
  // binding is judged as of then, not when the first bytes come (up to
  // first_flight_timeout later) — an HTTP client may connect and send later.
  const auto connected = std::chrono::steady_clock::now();
  asio::steady_timer deadline(io_, options_.first_flight_timeout);
  // One scratch for the whole gate: parsing is synchronous on the one
  // io_context thread, nothing else runs between this call and its use.
  const ReadEnd end = co_await read_until(client, from_client, kMaxFirstFlight, deadline, [&] {
    const auto bytes = from_client.from(0);
    verdict = kind == Kind::tls ? parse_client_hello(bytes, scratch_) : parse_http_head(bytes);
    return verdict.status != GateParse::need_more;
  });
  if (end != ReadEnd::decided) {
    verdict = GateVerdict{GateParse::reject, {}, end == ReadEnd::timed_out ? "timed out waiting for the first bytes"
                                                 : end == ReadEnd::closed  ? "closed before the first flight"
                                                                           : "first flight too large"};
  }
  if (verdict.status == GateParse::reject) {
    refuse(client, &dst, verdict.name.view(), verdict.reason);
  } else if (!decider_.admit(verdict.name.view(), dst.addr, connected)) {
    refuse(client, &dst, verdict.name.view(), "name not resolved to this address");
    verdict.status = GateParse::reject;
  }
  co_return verdict;
}

asio::awaitable<bool> Gate::connect(tcp::socket& server, tcp::socket& client, const IpEndpoint& dst,
                                    std::string_view name) {
  const tcp::endpoint target(to_asio(dst.addr), dst.port);
  asio::steady_timer deadline(io_, options_.connect_timeout);
  auto connected = co_await (server.async_connect(target, use_tuple) || deadline.async_wait(use_tuple));
  if (connected.index() == 0 && !std::get<0>(std::get<0>(connected))) co_return true;
  ++counters_.failed;
  reset(client);
  log_.event(LogLevel::info, "gate: cannot reach " + to_string(dst) + " for " + std::string(name));
  co_return false;
}

bool Gate::relayed(std::string_view name) const noexcept {
  return options_.relay &&
         std::find(options_.relay_hosts.begin(), options_.relay_hosts.end(), name) != options_.relay_hosts.end();
}

asio::awaitable<bool> Gate::hand_off(tcp::socket& relay, tcp::socket& client, const IpEndpoint& dst,
                                     std::string_view name) {
  if (!co_await connect(relay, client, *options_.relay, name)) co_return false;
  std::string handoff;
  try {
    handoff = write_relay_handoff(RelayHandoff{std::string(name), to_string(dst.addr), dst.port});
  } catch (const std::exception&) {
    co_return false;  // not reached: names are at most 253 bytes
  }
  asio::steady_timer deadline(io_, options_.connect_timeout);
  auto sent = co_await (asio::async_write(relay, asio::buffer(handoff), use_tuple) || deadline.async_wait(use_tuple));
  if (sent.index() == 0 && !std::get<0>(std::get<0>(sent))) co_return true;
  ++counters_.failed;
  reset(client);
  log_.event(LogLevel::info, "gate: the secret relay did not take " + std::string(name));
  co_return false;
}

// TLS: the server picks its site from the ClientHello it answers with a
// ServerHello. After a HelloRetryRequest that is the client's second hello,
// so the gate reads the server's first message before anything more of the
// client's goes through, and holds a second hello to the name it admitted.
// The client's bytes after each hello wait here until the server answered
// it: a hostile client may send its second hello before the retry request.
asio::awaitable<bool> Gate::follow_handshake(tcp::socket& client, tcp::socket& server, const IpEndpoint& dst,
                                             const GateVerdict& first, Inbox& from_client) {
  std::size_t sent = first.end;  // the client's bytes the server has
  if (!co_await forward(server, from_client.from(0).first(sent))) co_return false;
  Inbox from_server;
  std::size_t judged = 0;     // where the server's next message starts
  std::size_t forwarded = 0;  // the server's bytes the client has
  asio::steady_timer deadline(io_);
  for (bool retried = false;;) {
    deadline.expires_after(options_.handshake_timeout);
    ServerVerdict answer;
    const ReadEnd end = co_await read_until(server, from_server, judged + kMaxServerHello + 512, deadline, [&] {
      answer = parse_server_hello(from_server.from(judged));
      return answer.status != GateParse::need_more;
    });
    // A server that closed reads no second hello; anything but a retry
    // request (a ServerHello, a fatal alert) ends the handshake's first
    // round, and no ClientHello can follow it (RFC 8446 4.1.4, 6.2).
    if (end == ReadEnd::closed || (end == ReadEnd::decided && answer.status == GateParse::done && !answer.retry)) break;
    if (end == ReadEnd::timed_out) {
      ++counters_.failed;
      reset(server);
      reset(client);
      log_.event(LogLevel::info, "gate: no answer from " + to_string(dst) + " for " + std::string(first.name.view()));
      co_return false;
    }
    const char* refusal = end == ReadEnd::too_large                ? "ServerHello too large"
                          : answer.status == GateParse::reject ? answer.reason
                          : retried                            ? "second HelloRetryRequest (RFC 8446 forbids it)"
                                                               : nullptr;
    if (refusal != nullptr) {
      reset(server);
      refuse(client, &dst, first.name.view(), refusal);
      co_return false;
    }
    retried = true;
    ++counters_.retried;
    judged += answer.end;
    if (!co_await forward(client, from_server.from(forwarded))) co_return false;
    forwarded = from_server.got;
    const GateVerdict second = co_await read_retry_hello(client, dst, first, from_client, sent);
    if (second.status != GateParse::done) {
      reset(server);
      co_return false;
    }
    if (!co_await forward(server, from_client.from(sent).first(second.end))) co_return false;
    sent += second.end;
  }
  co_return co_await forward(client, from_server.from(forwarded)) && co_await forward(server, from_client.from(sent));
}

asio::awaitable<GateVerdict> Gate::read_retry_hello(tcp::socket& client, const IpEndpoint& dst,
                                                    const GateVerdict& first, Inbox& from_client, std::size_t sent) {
  GateVerdict second;
  asio::steady_timer deadline(io_, options_.handshake_timeout);
  const ReadEnd end = co_await read_until(client, from_client, sent + kMaxFirstFlight, deadline, [&] {
    second = parse_retry_client_hello(from_client.from(sent), scratch_, first);
    return second.status != GateParse::need_more;
  });
  if (end != ReadEnd::decided) {
    second = GateVerdict{GateParse::reject, first.name,
                         end == ReadEnd::timed_out ? "timed out waiting for the second ClientHello"
                         : end == ReadEnd::closed  ? "closed before the second ClientHello"
                                                   : "second ClientHello too large"};
  }
  if (second.status == GateParse::reject)
    refuse(client, &dst, second.name.size > 0 ? second.name.view() : first.name.view(), second.reason);
  co_return second;
}


}  // namespace cagent::dnsguard
