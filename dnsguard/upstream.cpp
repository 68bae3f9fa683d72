#include "upstream.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <sys/random.h>

#include <cstdlib>
#include <cstring>

#include "asio_glue.hpp"
#include "message.hpp"

namespace cagent::dnsguard {

namespace asio = boost::asio;
using asio::ip::tcp;
using asio::ip::udp;
using namespace asio::experimental::awaitable_operators;

namespace {
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
    : exec_(std::move(exec)),
      upstreams_(std::move(upstreams)),
      log_(log),
      counters_(counters),
      sweep_timer_(exec_),
      recv_batch_(std::make_unique<RecvBatch>()),
      send_queue_(std::make_unique<SendQueue>()) {}

UpstreamPool::~UpstreamPool() { stop(); }

void UpstreamPool::start() {
  for (const auto& up : upstreams_) {
    udp::endpoint ep(to_asio(up.addr), up.port);
    for (std::size_t i = 0; i < kSocketsPerUpstream; ++i) {
      auto ch = std::make_unique<Channel>(exec_);
      ch->upstream = static_cast<std::size_t>(&up - upstreams_.data());
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
  if (!channels_.empty()) asio::co_spawn(exec_, sweep_loop(), asio::detached);
}

void UpstreamPool::stop() noexcept {
  stopped_ = true;
  for (auto& ch : channels_) {
    boost::system::error_code ignored;
    ch->socket.close(ignored);
  }
  sweep_timer_.cancel();
}

std::uint16_t UpstreamPool::random_id() noexcept {
  if (id_next_ == id_pool_.size()) {
    const auto want = static_cast<ssize_t>(sizeof(id_pool_));
    if (::getrandom(id_pool_.data(), sizeof(id_pool_), 0) != want) {
      // Practically never (the pool is initialised after boot); arc4random
      // reads the same kernel CSPRNG, one call at a time.
      for (auto& id : id_pool_) id = static_cast<std::uint16_t>(arc4random_uniform(65536));
    }
    id_next_ = 0;
  }
  return id_pool_[id_next_++];
}

std::uint16_t UpstreamPool::free_id(const Channel& channel) noexcept {
  // Random IDs (kernel CSPRNG) make blind spoofing of answers costly;
  // collisions with queries in flight are skipped.
  for (int i = 0; i < 64; ++i) {
    auto id = random_id();
    if (!channel.pending.contains(id) && !channel.fast.contains(id)) return id;
  }
  return random_id();
}

void UpstreamPool::dispatch(Channel& channel, std::span<const std::uint8_t> msg, bool truncated) {
  if (msg.size() < kHeaderSize) return;  // e.g. garbage: the query times out
  const std::uint16_t id = read16(msg, 0);
  if (auto it = channel.pending.find(id); it != channel.pending.end()) {
    Pending* p = it->second;
    std::size_t qend = kHeaderSize + p->question.size();
    if (truncated || msg.size() < qend ||
        !same_question(msg.subspan(kHeaderSize, p->question.size()), p->question))
      return;
    p->answer->assign(msg.begin(), msg.end());
    p->done = true;
    channel.pending.erase(it);
    p->timer->cancel();
    return;
  }
  auto it = channel.fast.find(id);
  if (it == channel.fast.end()) return;
  const FastPending& f = it->second;
  if (msg.size() < kHeaderSize + f.qlen ||
      !same_question(msg.subspan(kHeaderSize, f.qlen), std::span<const std::uint8_t>(f.question.data(), f.qlen)))
    return;  // not our answer (late, spoofed): keep waiting
  const std::uint32_t token = f.token;
  channel.fast.erase(it);
  if ((read16(msg, 2) & 0x0200) != 0) {
    fast_receiver_->failed(token, channel.upstream);  // TC=1: the caller retries over TCP
    return;
  }
  std::uint8_t rc = msg[3] & 0x0F;
  if (truncated || rc == rcode::SERVFAIL || rc == rcode::REFUSED) {
    ++counters_.upstream_errors;
    log_.event(LogLevel::warning, "upstream " + to_string(upstreams_[channel.upstream]) +
                                      (truncated ? ": answer too large" : ": answered rcode " + std::to_string(rc)));
    fast_receiver_->failed(token, std::string::npos);
    return;
  }
  fast_receiver_->answered(token, msg);
}

asio::awaitable<void> UpstreamPool::receive_loop(Channel& channel) {
  // Readiness, then drain with recvmmsg: one syscall per batch of answers
  // rather than one per answer plus an EAGAIN.
  try {
    RecvBatch& b = *recv_batch_;
    while (!stopped_) {
      auto [ec] = co_await channel.socket.async_wait(udp::socket::wait_read, use_tuple);
      if (stopped_ || ec == asio::error::operation_aborted || ec == asio::error::bad_descriptor)
        co_return;
      if (ec) continue;
      const int fd = channel.socket.native_handle();
      for (int round = 0; round < 8 && !stopped_; ++round) {
        for (std::size_t i = 0; i < kRecvBatch; ++i) {
          b.iov[i] = {b.buf[i].data(), b.buf[i].size()};
          b.msgs[i] = {};
          b.msgs[i].msg_hdr.msg_iov = &b.iov[i];
          b.msgs[i].msg_hdr.msg_iovlen = 1;
        }
        // e.g. ECONNREFUSED from an ICMP error: the query times out.
        const int got = ::recvmmsg(fd, b.msgs.data(), kRecvBatch, MSG_DONTWAIT, nullptr);
        if (got <= 0) break;
        const auto n = static_cast<std::size_t>(got);
        for (std::size_t i = 0; i < n && !stopped_; ++i)
          dispatch(channel, std::span<const std::uint8_t>(b.buf[i].data(), b.msgs[i].msg_len),
                   (b.msgs[i].msg_hdr.msg_flags & MSG_TRUNC) != 0);
        if (fast_receiver_ != nullptr) fast_receiver_->batch_done();
        if (n < kRecvBatch) break;
      }
    }
  } catch (const std::exception& e) {
    log_.always(std::string("upstream receive loop stopped: ") + e.what());
  }
}

bool UpstreamPool::send_fast(std::span<const std::uint8_t> query, std::uint32_t token) noexcept {
  std::size_t qend = question_end(query);
  if (qend == 0 || qend - kHeaderSize > FastPending{}.question.size() || channels_.empty() ||
      fast_receiver_ == nullptr || stopped_ || query.size() > 512)
    return false;
  SendQueue& sq = *send_queue_;
  if (sq.count == kRecvBatch) flush_sends();
  if (sq.count == 0)
    sq.channel = channels_[preferred_ * kSocketsPerUpstream + (next_socket_++ % kSocketsPerUpstream)].get();
  Channel& ch = *sq.channel;
  const std::uint16_t id = free_id(ch);
  const std::size_t i = sq.count++;
  std::memcpy(sq.msg[i].data(), query.data(), query.size());
  write16(sq.msg[i], 0, id);
  sq.iov[i] = {sq.msg[i].data(), query.size()};
  sq.id[i] = id;
  // Registered now (the ID is taken); the deadline counts from the flush,
  // which follows within the same drained batch.
  FastPending& f = ch.fast[id];
  f.token = token;
  f.serial = ++next_serial_;
  f.qlen = qend - kHeaderSize;
  std::memcpy(f.question.data(), query.data() + kHeaderSize, f.qlen);
  deadlines_.push_back({std::chrono::steady_clock::now() + kAttemptTimeout, &ch, id, f.serial});
  if (sweep_idle_) {
    sweep_idle_ = false;
    sweep_timer_.cancel();
  }
  return true;
}

void UpstreamPool::flush_sends() noexcept {
  SendQueue& sq = *send_queue_;
  if (sq.count == 0) return;
  const std::size_t count = sq.count;
  sq.count = 0;
  Channel& ch = *sq.channel;
  for (std::size_t i = 0; i < count; ++i) {
    sq.msgs[i] = {};
    sq.msgs[i].msg_hdr.msg_iov = &sq.iov[i];
    sq.msgs[i].msg_hdr.msg_iovlen = 1;
  }
  std::size_t sent = 0;
  while (sent < count) {
    const int k = ::sendmmsg(ch.socket.native_handle(), sq.msgs.data() + sent,
                             static_cast<unsigned>(count - sent), MSG_DONTWAIT);
    if (k <= 0) break;
    sent += static_cast<std::size_t>(k);
  }
  // Not sent (send buffer full, socket error): their first attempt failed.
  for (std::size_t i = sent; i < count; ++i) {
    auto it = ch.fast.find(sq.id[i]);
    if (it == ch.fast.end()) continue;
    const std::uint32_t token = it->second.token;
    ch.fast.erase(it);
    ++counters_.upstream_errors;
    fast_receiver_->failed(token, std::string::npos);
  }
}

asio::awaitable<void> UpstreamPool::sweep_loop() {
  // The fast path's timeouts: deadlines_ is in send order, and every fast
  // query has the same timeout, so the expired ones are at the front.
  try {
    while (!stopped_) {
      // Idle (nothing in flight): no periodic wake-ups; send_fast() wakes us.
      sweep_idle_ = deadlines_.empty();
      if (sweep_idle_) sweep_timer_.expires_at(std::chrono::steady_clock::time_point::max());
      else sweep_timer_.expires_after(kSweepInterval);
      co_await sweep_timer_.async_wait(use_tuple);
      sweep_idle_ = false;
      if (stopped_) co_return;
      const auto now = std::chrono::steady_clock::now();
      while (!deadlines_.empty() && deadlines_.front().at <= now) {
        Deadline d = deadlines_.front();
        deadlines_.pop_front();
        auto it = d.channel->fast.find(d.id);
        if (it == d.channel->fast.end() || it->second.serial != d.serial) continue;  // answered
        std::uint32_t token = it->second.token;
        d.channel->fast.erase(it);
        ++counters_.upstream_errors;
        log_.event(LogLevel::warning, "upstream " + to_string(upstreams_[d.channel->upstream]) + ": timeout");
        preferred_ = (d.channel->upstream + 1) % upstreams_.size();
        fast_receiver_->failed(token, std::string::npos);
      }
    }
  } catch (const std::exception& e) {
    log_.always(std::string("upstream sweep stopped: ") + e.what());
  }
}

asio::awaitable<bool> UpstreamPool::exchange_tcp(std::size_t index, std::span<const std::uint8_t> query,
                                                 std::vector<std::uint8_t>& answer) {
  if (index >= upstreams_.size()) co_return false;
  std::vector<std::uint8_t> msg(query.begin(), query.end());
  write16(msg, 0, random_id());
  bool ok = co_await tcp_exchange(upstreams_[index], msg, answer);
  if (!ok) {
    ++counters_.upstream_errors;
    log_.event(LogLevel::warning, "upstream " + to_string(upstreams_[index]) + ": TCP retry after TC=1 failed");
    co_return false;
  }
  std::uint8_t rc = answer[3] & 0x0F;
  co_return rc != rcode::SERVFAIL && rc != rcode::REFUSED;
}

asio::awaitable<bool> UpstreamPool::exchange(std::span<const std::uint8_t> query,
                                             std::vector<std::uint8_t>& answer, int first_attempt) {
  std::size_t qend = question_end(query);
  if (qend == 0 || channels_.empty()) co_return false;
  std::vector<std::uint8_t> msg(query.begin(), query.end());
  auto question = std::span<const std::uint8_t>(msg).subspan(kHeaderSize, qend - kHeaderSize);
  asio::steady_timer timer(exec_);
  for (int attempt = first_attempt; attempt < kAttempts && !stopped_; ++attempt) {
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
