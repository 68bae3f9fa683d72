#include "dnsguard/upstream.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <sys/random.h>
#include <sys/socket.h>

#include <cerrno>

#include <cstdlib>
#include <cstring>

#include "dnsguard/asio_glue.hpp"
#include "dnsguard/message.hpp"

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
      sweep_timer_(exec_) {}

UpstreamPool::~UpstreamPool() { stop(); }

void UpstreamPool::start() {
  if (!upstreams_.empty()) asio::co_spawn(exec_, sweep_loop(), asio::detached);
}

void UpstreamPool::stop() noexcept {
  stopped_ = true;
  // Every socket closes with its flight (its wait ends as aborted).
  for (auto& [serial, flight] : flights_) {
    boost::system::error_code ignored;
    flight->socket.close(ignored);
  }
  flights_.clear();
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

std::uint64_t UpstreamPool::launch(std::size_t up, std::span<const std::uint8_t> query, std::size_t qlen,
                                   std::uint32_t token, Pending* pending) noexcept {
  const std::string where = to_string(upstreams_[up]);
  if (flights_.size() >= max_flights_ || query.size() > 65535 || qlen > kMaxQuestion) {
    ++counters_.upstream_errors;
    log_.event(LogLevel::warning, "upstream " + where + ": too many queries in flight");
    return 0;
  }
  std::unique_ptr<Flight> f;
  if (!spare_.empty()) {
    f = std::move(spare_.back());
    spare_.pop_back();
  } else {
    f = std::make_unique<Flight>(exec_);
  }
  // connect(): the kernel binds a fresh random ephemeral port and from then
  // on drops datagrams from any other source.
  const udp::endpoint ep(to_asio(upstreams_[up].addr), upstreams_[up].port);
  boost::system::error_code ec;
  f->socket.open(ep.protocol(), ec);
  if (!ec) f->socket.connect(ep, ec);
  if (!ec) f->socket.non_blocking(true, ec);
  f->upstream = up;
  f->id = random_id();
  f->qlen = qlen;
  std::memcpy(f->question.data(), query.data() + kHeaderSize, qlen);
  f->token = token;
  f->pending = pending;
  if (!ec) {
    // The query with its new ID, sent as two pieces (no copy of the rest).
    const std::array<std::uint8_t, 2> id{static_cast<std::uint8_t>(f->id >> 8), static_cast<std::uint8_t>(f->id)};
    const std::array<asio::const_buffer, 2> parts{asio::buffer(id), asio::buffer(query.data() + 2, query.size() - 2)};
    f->socket.send(parts, 0, ec);
  }
  if (ec) {
    ++counters_.upstream_errors;
    log_.event(LogLevel::warning, "upstream " + where + ": send failed: " + ec.message());
    boost::system::error_code ignored;
    f->socket.close(ignored);
    spare_.push_back(std::move(f));
    return 0;
  }
  const std::uint64_t serial = ++next_serial_;
  Flight& flight = *f;
  flights_.emplace(serial, std::move(f));
  arm(serial, flight);
  return serial;
}

void UpstreamPool::arm(std::uint64_t serial, Flight& flight) noexcept {
  flight.socket.async_wait(udp::socket::wait_read, [this, serial](const boost::system::error_code& ec) {
    if (ec == asio::error::operation_aborted || stopped_) return;  // closed with its flight
    readable(serial);
  });
}

void UpstreamPool::readable(std::uint64_t serial) noexcept {
  auto it = flights_.find(serial);
  if (it == flights_.end()) return;
  Flight& f = *it->second;
  const int fd = f.socket.native_handle();
  for (;;) {
    iovec iov{recv_buf_.data(), recv_buf_.size()};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    const ssize_t n = ::recvmsg(fd, &msg, MSG_DONTWAIT);
    if (n < 0) {
      const int err = errno;
      if (err == EINTR) continue;
      if (err == EAGAIN || err == EWOULDBLOCK) break;
      // The upstream is unreachable (ECONNREFUSED from an ICMP error, …):
      // this attempt failed, the next one may try another upstream.
      ++counters_.upstream_errors;
      log_.event(LogLevel::warning, "upstream " + to_string(upstreams_[f.upstream]) + ": " + std::strerror(err));
      preferred_ = (f.upstream + 1) % upstreams_.size();
      finish(it, {}, false);
      return;
    }
    const std::span<const std::uint8_t> got(recv_buf_.data(), static_cast<std::size_t>(n));
    const std::span<const std::uint8_t> question(f.question.data(), f.qlen);
    // Only our answer ends the flight: same ID, same question. Anything
    // else (a garbage or forged datagram) is dropped, and we keep waiting.
    if (got.size() < kHeaderSize + f.qlen || read16(got, 0) != f.id ||
        !same_question(got.subspan(kHeaderSize, f.qlen), question))
      continue;
    finish(it, got, (msg.msg_flags & MSG_TRUNC) != 0);
    return;
  }
  arm(serial, f);
}

void UpstreamPool::finish(std::unordered_map<std::uint64_t, std::unique_ptr<Flight>>::iterator it,
                          std::span<const std::uint8_t> answer, bool truncated) noexcept {
  Flight& f = *it->second;
  const std::size_t up = f.upstream;
  if (f.pending != nullptr) {
    Pending& p = *f.pending;
    if (truncated) {
      ++counters_.upstream_errors;
      log_.event(LogLevel::warning, "upstream " + to_string(upstreams_[up]) + ": answer too large");
    } else if (!answer.empty()) {
      p.answer->assign(answer.begin(), answer.end());
      p.done = true;
    }
    p.timer->cancel();
    retire(it);
    return;
  }
  const std::uint32_t token = f.token;
  retire(it);
  if (fast_receiver_ == nullptr) return;
  schedule_batch_done();
  if (answer.empty()) {
    fast_receiver_->failed(token, std::string::npos);
    return;
  }
  if ((read16(answer, 2) & 0x0200) != 0) {
    fast_receiver_->failed(token, up);  // TC=1: the caller retries over TCP
    return;
  }
  const std::uint8_t rc = answer[3] & 0x0F;
  if (truncated || rc == rcode::SERVFAIL || rc == rcode::REFUSED) {
    ++counters_.upstream_errors;
    log_.event(LogLevel::warning, "upstream " + to_string(upstreams_[up]) +
                                      (truncated ? ": answer too large" : ": answered rcode " + std::to_string(rc)));
    fast_receiver_->failed(token, std::string::npos);
    return;
  }
  fast_receiver_->answered(token, answer);
}

void UpstreamPool::retire(std::unordered_map<std::uint64_t, std::unique_ptr<Flight>>::iterator it) noexcept {
  std::unique_ptr<Flight> f = std::move(it->second);
  flights_.erase(it);
  boost::system::error_code ignored;
  f->socket.close(ignored);  // its port is gone: a late answer finds no socket
  f->pending = nullptr;
  spare_.push_back(std::move(f));
}

void UpstreamPool::schedule_batch_done() noexcept {
  // Answers that became ready together complete one after another; the
  // receiver flushes its client answers once after all of them.
  if (batch_done_posted_) return;
  batch_done_posted_ = true;
  asio::post(exec_, [this] {
    batch_done_posted_ = false;
    if (fast_receiver_ != nullptr && !stopped_) fast_receiver_->batch_done();
  });
}

bool UpstreamPool::send_fast(std::span<const std::uint8_t> query, std::uint32_t token) noexcept {
  const std::size_t qend = question_end(query);
  if (qend == 0 || qend - kHeaderSize > kMaxQuestion || upstreams_.empty() ||
      fast_receiver_ == nullptr || stopped_ || query.size() > 512)
    return false;
  const std::uint64_t serial = launch(preferred_, query, qend - kHeaderSize, token, nullptr);
  if (serial == 0) {
    schedule_batch_done();
    fast_receiver_->failed(token, std::string::npos);
    return true;
  }
  deadlines_.push_back({std::chrono::steady_clock::now() + kAttemptTimeout, serial});
  if (sweep_idle_) {
    sweep_idle_ = false;
    sweep_timer_.cancel();
  }
  return true;
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
      bool any = false;
      while (!deadlines_.empty() && deadlines_.front().at <= now) {
        const Deadline d = deadlines_.front();
        deadlines_.pop_front();
        auto it = flights_.find(d.serial);
        if (it == flights_.end()) continue;  // answered
        ++counters_.upstream_errors;
        log_.event(LogLevel::warning, "upstream " + to_string(upstreams_[it->second->upstream]) + ": timeout");
        preferred_ = (it->second->upstream + 1) % upstreams_.size();
        const std::uint32_t token = it->second->token;
        retire(it);
        fast_receiver_->failed(token, std::string::npos);
        any = true;
      }
      if (any) fast_receiver_->batch_done();
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
  const std::size_t qend = question_end(query);
  if (qend == 0 || upstreams_.empty()) co_return false;
  asio::steady_timer timer(exec_);
  for (int attempt = first_attempt; attempt < kAttempts && !stopped_; ++attempt) {
    const std::size_t up = (preferred_ + static_cast<std::size_t>(attempt)) % upstreams_.size();
    Pending pending{&answer, &timer};
    const std::uint64_t serial = launch(up, query, qend - kHeaderSize, 0, &pending);
    if (serial == 0) continue;  // counted and logged
    timer.expires_after(kAttemptTimeout);
    co_await timer.async_wait(use_tuple);
    if (auto it = flights_.find(serial); it != flights_.end()) {
      // Still in flight: this attempt timed out.
      retire(it);
      ++counters_.upstream_errors;
      log_.event(LogLevel::warning, "upstream " + to_string(upstreams_[up]) + ": timeout");
      preferred_ = (up + 1) % upstreams_.size();
      continue;
    }
    if (!pending.done) continue;  // failed (error, too large): counted and logged
    const std::string where = to_string(upstreams_[up]);
    if (answer.size() >= kHeaderSize && (read16(answer, 2) & 0x0200) != 0) {
      // Truncated: the full answer only fits over TCP.
      std::vector<std::uint8_t> msg(query.begin(), query.end());
      write16(msg, 0, random_id());
      if (!co_await tcp_exchange(upstreams_[up], msg, answer)) {
        ++counters_.upstream_errors;
        log_.event(LogLevel::warning, "upstream " + where + ": TCP retry after TC=1 failed");
        continue;
      }
    }
    const std::uint8_t rc = answer[3] & 0x0F;
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
  if (tcp_exchanges_ >= kMaxTcpExchanges) co_return false;  // counted and logged by the caller
  ++tcp_exchanges_;
  struct Count {
    std::size_t& n;
    ~Count() { --n; }
  } count{tcp_exchanges_};
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
