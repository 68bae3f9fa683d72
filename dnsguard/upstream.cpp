#include "upstream.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <cstdlib>
#include <cstring>

#include "message.hpp"

namespace cagent::dnsguard {

namespace asio = boost::asio;
using asio::ip::tcp;
using asio::ip::udp;
using namespace asio::experimental::awaitable_operators;

namespace {
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

asio::ip::address to_asio(const IpAddress& a) {
  if (a.v6) return asio::ip::address_v6(a.bytes);
  return asio::ip::address_v4({a.bytes[0], a.bytes[1], a.bytes[2], a.bytes[3]});
}

std::uint8_t lower(std::uint8_t c) noexcept {
  return (c >= 'A' && c <= 'Z') ? static_cast<std::uint8_t>(c + 32) : c;
}

// Reads the question section end of a message we built ourselves.
std::size_t question_end(std::span<const std::uint8_t> msg) noexcept {
  std::size_t pos = kHeaderSize;
  WireName name;
  if (!read_name(msg, pos, name) || pos + 4 > msg.size()) return 0;
  return pos + 4;
}
}  // namespace

bool same_question(std::span<const std::uint8_t> a, std::span<const std::uint8_t> b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (lower(a[i]) != lower(b[i])) return false;
  return true;
}

UpstreamPool::UpstreamPool(asio::any_io_executor exec, std::vector<IpEndpoint> upstreams,
                           Logger& log, Counters& counters)
    : exec_(std::move(exec)), upstreams_(std::move(upstreams)), log_(log), counters_(counters) {}

UpstreamPool::~UpstreamPool() { stop(); }

void UpstreamPool::start() {
  for (const auto& up : upstreams_) {
    udp::endpoint ep(to_asio(up.addr), up.port);
    for (std::size_t i = 0; i < kSocketsPerUpstream; ++i) {
      auto ch = std::make_unique<Channel>(exec_);
      // connect(): the kernel drops datagrams from any other source, and
      // picks a fresh ephemeral source port per socket.
      ch->socket.open(ep.protocol());
      ch->socket.connect(ep);
      ch->socket.non_blocking(true);
      channels_.push_back(std::move(ch));
    }
  }
  for (auto& ch : channels_) {
    asio::co_spawn(exec_, receive_loop(*ch), asio::detached);
  }
}

void UpstreamPool::stop() noexcept {
  stopped_ = true;
  for (auto& ch : channels_) {
    boost::system::error_code ignored;
    ch->socket.close(ignored);
  }
}

std::uint16_t UpstreamPool::free_id(const Channel& channel) const noexcept {
  // Random IDs (arc4random: kernel-seeded ChaCha) make blind spoofing of
  // answers costly; collisions with queries in flight are skipped.
  for (int i = 0; i < 64; ++i) {
    auto id = static_cast<std::uint16_t>(arc4random_uniform(65536));
    if (channel.pending.find(id) == channel.pending.end()) return id;
  }
  return static_cast<std::uint16_t>(arc4random_uniform(65536));
}

asio::awaitable<void> UpstreamPool::receive_loop(Channel& channel) {
  try {
    std::array<std::uint8_t, 4096> buf;
    while (!stopped_) {
      auto [ec, n] = co_await channel.socket.async_receive(asio::buffer(buf), use_tuple);
      if (stopped_ || ec == asio::error::operation_aborted || ec == asio::error::bad_descriptor)
        co_return;
      if (ec || n < kHeaderSize) continue;  // e.g. ECONNREFUSED from an ICMP error: the query times out
      std::uint16_t id = read16(buf, 0);
      auto it = channel.pending.find(id);
      if (it == channel.pending.end()) continue;
      Pending* p = it->second;
      std::size_t qend = kHeaderSize + p->question.size();
      if (n < qend ||
          !same_question(std::span<const std::uint8_t>(buf).subspan(kHeaderSize, p->question.size()),
                         p->question))
        continue;
      p->answer->assign(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(n));
      p->done = true;
      channel.pending.erase(it);
      p->timer->cancel();
    }
  } catch (const std::exception& e) {
    log_.always(std::string("upstream receive loop stopped: ") + e.what());
  }
}

asio::awaitable<bool> UpstreamPool::exchange(std::span<const std::uint8_t> query,
                                             std::vector<std::uint8_t>& answer) {
  std::size_t qend = question_end(query);
  if (qend == 0 || channels_.empty()) co_return false;
  std::vector<std::uint8_t> msg(query.begin(), query.end());
  auto question = std::span<const std::uint8_t>(msg).subspan(kHeaderSize, qend - kHeaderSize);
  asio::steady_timer timer(exec_);
  for (int attempt = 0; attempt < kAttempts && !stopped_; ++attempt) {
    std::size_t up = (preferred_ + static_cast<std::size_t>(attempt)) % upstreams_.size();
    Channel& ch = *channels_[up * kSocketsPerUpstream + (next_socket_++ % kSocketsPerUpstream)];
    std::uint16_t id = free_id(ch);
    write16(msg, 0, id);
    Pending pending{&answer, &timer, question};
    ch.pending[id] = &pending;
    timer.expires_after(kAttemptTimeout);
    boost::system::error_code ec;
    ch.socket.send(asio::buffer(msg), 0, ec);
    if (!ec) co_await timer.async_wait(use_tuple);
    if (auto it = ch.pending.find(id); it != ch.pending.end() && it->second == &pending)
      ch.pending.erase(it);
    const std::string where = to_string(upstreams_[up]);
    if (pending.done && answer.size() >= kHeaderSize && (read16(answer, 2) & 0x0200) != 0) {
      // Truncated: the full answer only fits over TCP.
      pending.done = co_await tcp_exchange(upstreams_[up], msg, answer);
      if (!pending.done) {
        ++counters_.upstream_errors;
        log_.event(LogLevel::warning, "upstream " + where + ": TCP retry after TC=1 failed");
        continue;
      }
    }
    if (!pending.done) {
      ++counters_.upstream_errors;
      log_.event(LogLevel::warning,
                 "upstream " + where + (ec ? ": send failed: " + ec.message() : ": timeout"));
      preferred_ = (up + 1) % upstreams_.size();
      continue;
    }
    std::uint8_t rc = answer[3] & 0x0F;
    if (rc == rcode::SERVFAIL || rc == rcode::REFUSED) {
      ++counters_.upstream_errors;
      log_.event(LogLevel::warning, "upstream " + where + ": answered rcode " + std::to_string(rc));
      continue;
    }
    co_return true;
  }
  co_return false;
}

asio::awaitable<bool> UpstreamPool::tcp_exchange(const IpEndpoint& upstream,
                                                 std::span<const std::uint8_t> query,
                                                 std::vector<std::uint8_t>& answer) {
  tcp::socket sock(exec_);
  asio::steady_timer deadline(exec_);
  deadline.expires_after(kAttemptTimeout * 2);
  auto body = [&]() -> asio::awaitable<bool> {
    auto [cec] = co_await sock.async_connect(tcp::endpoint(to_asio(upstream.addr), upstream.port),
                                             use_tuple);
    if (cec) co_return false;
    std::array<std::uint8_t, 2> len{static_cast<std::uint8_t>(query.size() >> 8),
                                    static_cast<std::uint8_t>(query.size())};
    std::array<asio::const_buffer, 2> bufs{asio::buffer(len), asio::buffer(query.data(), query.size())};
    auto [wec, wn] = co_await asio::async_write(sock, bufs, use_tuple);
    if (wec) co_return false;
    auto [rec, rn] = co_await asio::async_read(sock, asio::buffer(len), use_tuple);
    if (rec) co_return false;
    std::size_t size = (std::size_t{len[0]} << 8) | len[1];
    if (size < kHeaderSize) co_return false;
    answer.resize(size);
    auto [bec, bn] = co_await asio::async_read(sock, asio::buffer(answer), use_tuple);
    if (bec) co_return false;
    // Same ID and question as what we sent, or it is not our answer.
    std::size_t qend = question_end(query);
    co_return read16(answer, 0) == read16(query, 0) && answer.size() >= qend &&
        same_question(std::span<const std::uint8_t>(answer).subspan(kHeaderSize, qend - kHeaderSize),
                      query.subspan(kHeaderSize, qend - kHeaderSize));
  };
  auto result = co_await (body() || deadline.async_wait(use_tuple));
  co_return result.index() == 0 && std::get<0>(result);
}

}  // namespace cagent::dnsguard
