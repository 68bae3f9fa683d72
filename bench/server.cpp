#include "bench/server.hpp"

#include "bench/sockaddr.hpp"
#include "bench/zone.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bench/asio.hpp"
#include "dnsguard/ip.hpp"
#include "dnsguard/posix.hpp"

#include <array>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <thread>
#include <vector>

namespace cagent::bench {

namespace {

namespace asio = boost::asio;
using asio::awaitable;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

using Fd = cagent::UniqueFd;

std::string describe(const HostPort& hp) {
  return (hp.host.find(':') != std::string::npos ? "[" + hp.host + "]" : hp.host) + ":" + std::to_string(hp.port);
}

Fd bind_udp(const std::string& host, std::uint16_t port) {
  sockaddr_storage ss{};
  const socklen_t len = to_sockaddr(host, port, ss);
  Fd fd(::socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) throw std::runtime_error("udp socket for " + host + ": " + std::strerror(errno));
  const int one = 1;
  // One socket per worker thread on the same port; the kernel spreads
  // clients over them by 4-tuple hash.
  ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  const int buf = 8 << 20;
  ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVBUF, &buf, sizeof buf);
  ::setsockopt(fd.get(), SOL_SOCKET, SO_SNDBUF, &buf, sizeof buf);
  // Wake up regularly to notice the stop flag (a blocked recvmmsg is not
  // interrupted when another thread handles the signal).
  const timeval tv{0, 200'000};
  ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&ss), len) != 0) {
    const int err = errno;
    throw std::runtime_error("cannot bind udp " + host + ":" + std::to_string(port) + ": " + std::strerror(err));
  }
  return fd;
}

// The UDP hot loop: batches in, batches out, buffers allocated once.
void udp_worker(int fd, const Zone& zone, const std::atomic<bool>& stop) {
  constexpr std::size_t kBatch = 64;
  constexpr std::size_t kIn = 4096;  // larger queries are not ours to answer
  constexpr std::size_t kOut = 512;
  std::vector<std::array<std::uint8_t, kIn>> in(kBatch);
  std::vector<std::array<std::uint8_t, kOut>> out(kBatch);
  std::vector<sockaddr_storage> peers(kBatch);
  std::vector<iovec> in_iov(kBatch), out_iov(kBatch);
  std::vector<mmsghdr> in_msgs(kBatch), out_msgs(kBatch);
  for (std::size_t i = 0; i < kBatch; ++i) {
    in_iov[i] = {in[i].data(), kIn};
    in_msgs[i].msg_hdr.msg_iov = &in_iov[i];
    in_msgs[i].msg_hdr.msg_iovlen = 1;
  }
  while (!stop.load(std::memory_order_relaxed)) {
    for (std::size_t i = 0; i < kBatch; ++i) {
      in_msgs[i].msg_hdr.msg_name = &peers[i];
      in_msgs[i].msg_hdr.msg_namelen = sizeof peers[i];
    }
    const int n = ::recvmmsg(fd, in_msgs.data(), kBatch, MSG_WAITFORONE, nullptr);
    if (n <= 0) continue;  // timeout (stop check), EINTR, or a transient error
    unsigned replies = 0;
    for (unsigned i = 0; i < static_cast<unsigned>(n); ++i) {
      const std::size_t len =
          zone.answer(std::span<const std::uint8_t>(in[i].data(), in_msgs[i].msg_len), out[replies]);
      if (len == 0) continue;  // not a query we answer: drop
      out_iov[replies] = {out[replies].data(), len};
      auto& h = out_msgs[replies].msg_hdr;
      h = {};
      h.msg_name = &peers[i];
      h.msg_namelen = in_msgs[i].msg_hdr.msg_namelen;
      h.msg_iov = &out_iov[replies];
      h.msg_iovlen = 1;
      ++replies;
    }
    unsigned done = 0;
    while (done < replies) {
      const int sent = ::sendmmsg(fd, out_msgs.data() + done, replies - done, 0);
      if (sent <= 0) break;  // the client's problem (e.g. its buffer is full): drop the rest
      done += static_cast<unsigned>(sent);
    }
  }
}

awaitable<void> tcp_connection(asio::ip::tcp::socket sock, const Zone& zone) {
  std::array<std::uint8_t, 2 + 65535> in{};
  std::array<std::uint8_t, 2 + 512> out{};
  while (true) {
    auto [ec1, n1] = co_await asio::async_read(sock, asio::buffer(in.data(), 2), use_tuple);
    if (ec1) co_return;
    const std::size_t len = (std::size_t{in[0]} << 8) | in[1];
    auto [ec2, n2] = co_await asio::async_read(sock, asio::buffer(in.data() + 2, len), use_tuple);
    if (ec2) co_return;
    const std::size_t rlen =
        zone.answer(std::span<const std::uint8_t>(in.data() + 2, len), std::span(out).subspan(2));
    if (rlen == 0) co_return;  // garbage on a stream: hang up
    out[0] = static_cast<std::uint8_t>(rlen >> 8);
    out[1] = static_cast<std::uint8_t>(rlen & 0xff);
    auto [ec3, n3] = co_await asio::async_write(sock, asio::buffer(out.data(), 2 + rlen), use_tuple);
    if (ec3) co_return;
  }
}

awaitable<void> tcp_accept_loop(asio::ip::tcp::acceptor& acceptor, const Zone& zone) {
  while (true) {
    auto [ec, sock] = co_await acceptor.async_accept(use_tuple);
    if (ec == asio::error::operation_aborted) co_return;
    if (ec) continue;  // e.g. EMFILE: keep serving the connections we have
    asio::co_spawn(acceptor.get_executor(), tcp_connection(std::move(sock), zone), [](std::exception_ptr) {
      // A connection's failure ends only that connection.
    });
  }
}

// Accepts and immediately closes: the far end of --connect-after-answer.
awaitable<void> sink_loop(asio::ip::tcp::acceptor& acceptor) {
  while (true) {
    auto [ec, sock] = co_await acceptor.async_accept(use_tuple);
    if (ec == asio::error::operation_aborted) co_return;
  }
}

asio::ip::tcp::acceptor make_acceptor(asio::io_context& ctx, const HostPort& hp) {
  asio::ip::tcp::acceptor acceptor(ctx);
  boost::system::error_code ec;
  const asio::ip::tcp::endpoint ep(asio::ip::make_address(hp.host, ec), hp.port);
  if (!ec) acceptor.open(ep.protocol(), ec);
  if (!ec) acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor.bind(ep, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) throw std::runtime_error("cannot listen on tcp " + describe(hp) + ": " + ec.message());
  return acceptor;
}

}  // namespace

void serve(const ServeOptions& o) {
  const Zone zone(o.zone, o.ttl, o.v4, o.v6);

  std::vector<Fd> udp;
  udp.push_back(bind_udp(o.listen.host, o.listen.port));
  const std::uint16_t port = bound_port(udp.front().get());
  for (unsigned i = 1; i < o.threads; ++i) udp.push_back(bind_udp(o.listen.host, port));

  asio::io_context ctx(1);
  auto acceptor = make_acceptor(ctx, HostPort{o.listen.host, port});
  std::optional<asio::ip::tcp::acceptor> sink;
  if (o.sink) sink.emplace(make_acceptor(ctx, *o.sink));

  std::atomic<bool> stop{false};
  asio::signal_set signals(ctx, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code&, int) {
    stop = true;
    ctx.stop();
  });

  std::vector<std::jthread> workers;
  for (auto& fd : udp) workers.emplace_back([&zone, &stop, f = fd.get()] { udp_worker(f, zone, stop); });

  asio::co_spawn(ctx, tcp_accept_loop(acceptor, zone), [](std::exception_ptr) {});
  if (sink) asio::co_spawn(ctx, sink_loop(*sink), [](std::exception_ptr) {});

  std::printf("ready udp=%u tcp=%u", static_cast<unsigned>(port), static_cast<unsigned>(port));
  if (sink) std::printf(" sink=%u", static_cast<unsigned>(sink->local_endpoint().port()));
  std::printf("\n");
  std::fflush(stdout);

  ctx.run();
  stop = true;
  workers.clear();  // joins
}

}  // namespace cagent::bench
