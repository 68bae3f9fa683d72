#pragma once
// UpstreamPool: sends queries to the configured upstream resolvers.
//
// A few connected UDP sockets per upstream are shared by all queries; each
// query gets a random unused ID on its socket (query-ID remapping), so
// throughput does not depend on opening a socket per query. A receive loop
// per socket hands each answer to the waiting query, after checking that it
// echoes the question (anything else — late, spoofed, garbage — is dropped).
//
// Per query: up to kAttempts tries, each kAttemptTimeout long, starting at
// the preferred upstream and failing over to the next one (the preference
// moves with failures). A truncated (TC=1) UDP answer is retried over TCP
// against the same upstream. SERVFAIL/REFUSED count as a failed attempt.

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <sys/socket.h>
#include <sys/uio.h>

#include <array>
#include <chrono>
#include <deque>
#include <cstdint>
#include <memory>
#include <span>
#include <unordered_map>
#include <vector>

#include "config.hpp"
#include "log.hpp"

namespace cagent::dnsguard {

class UpstreamPool {
 public:
  static constexpr std::chrono::milliseconds kAttemptTimeout{750};
  static constexpr int kAttempts = 3;
  static constexpr std::size_t kSocketsPerUpstream = 4;

  UpstreamPool(boost::asio::any_io_executor exec, std::vector<IpEndpoint> upstreams, Logger& log,
               Counters& counters);
  ~UpstreamPool();

  // Opens the sockets and starts their receive loops. Throws std::system_error.
  void start();
  void stop() noexcept;

  // `query` is a complete message (its ID is overwritten). On success the
  // answer is in `answer` and true is returned; false after every attempt
  // failed. `first_attempt` > 0 continues a query whose earlier attempts
  // were made by send_fast().
  boost::asio::awaitable<bool> exchange(std::span<const std::uint8_t> query,
                                        std::vector<std::uint8_t>& answer, int first_attempt = 0);

  // The UDP fast path (the client-facing UDP miss path): the first attempt
  // only, with no coroutine and no timer per query. Answers are matched in
  // the receive loops (drained with recvmmsg) and reported to the receiver;
  // timeouts are found by one sweep timer. Anything but a clean answer —
  // timeout, TC=1, SERVFAIL/REFUSED, a send error — is reported as failed,
  // and the caller continues with exchange(first_attempt = 1) or, for TC=1,
  // exchange_tcp(), which together behave exactly like exchange().
  class FastReceiver {
   public:
    virtual ~FastReceiver() = default;
    virtual void answered(std::uint32_t token, std::span<const std::uint8_t> answer) noexcept = 0;
    // truncated_at: the upstream that answered TC=1 (retry it over TCP), else npos.
    virtual void failed(std::uint32_t token, std::size_t truncated_at) noexcept = 0;
    // After each drained batch of upstream answers (flush the client answers).
    virtual void batch_done() noexcept = 0;
  };
  void set_fast_receiver(FastReceiver* receiver) noexcept { fast_receiver_ = receiver; }
  // Queues the query; false when it cannot take the fast path: use exchange().
  // Queued queries leave in one sendmmsg per socket at flush_sends() (the
  // caller's end of a drained batch) or when the queue is full; one that
  // cannot be sent is reported failed().
  bool send_fast(std::span<const std::uint8_t> query, std::uint32_t token) noexcept;
  void flush_sends() noexcept;
  // The TCP retry of a query whose UDP answer from upstream `index` had TC=1.
  boost::asio::awaitable<bool> exchange_tcp(std::size_t index, std::span<const std::uint8_t> query,
                                            std::vector<std::uint8_t>& answer);

 private:
  struct Pending {
    std::vector<std::uint8_t>* answer;
    boost::asio::steady_timer* timer;
    std::span<const std::uint8_t> question;  // bytes [12, question end) of what we sent
    bool done = false;
  };
  struct FastPending {
    std::uint32_t token = 0;
    std::uint64_t serial = 0;  // tells a reused ID from the one a sweep entry means
    std::size_t qlen = 0;
    std::array<std::uint8_t, 260> question{};  // bytes [12, question end) of what we sent
  };
  struct Channel {
    explicit Channel(boost::asio::any_io_executor exec) : socket(exec) {}
    boost::asio::ip::udp::socket socket;
    std::size_t upstream = 0;  // index into upstreams_
    std::unordered_map<std::uint16_t, Pending*> pending;
    std::unordered_map<std::uint16_t, FastPending> fast;
  };
  struct Deadline {
    std::chrono::steady_clock::time_point at;
    Channel* channel;
    std::uint16_t id;
    std::uint64_t serial;
  };
  static constexpr std::size_t kRecvBatch = 32;
  static constexpr std::chrono::milliseconds kSweepInterval{50};

  boost::asio::awaitable<void> sweep_loop();
  // One received datagram of `channel`: wake its exchange() or report it.
  void dispatch(Channel& channel, std::span<const std::uint8_t> msg, bool truncated);

  boost::asio::awaitable<void> receive_loop(Channel& channel);
  boost::asio::awaitable<bool> tcp_exchange(const IpEndpoint& upstream,
                                            std::span<const std::uint8_t> query,
                                            std::vector<std::uint8_t>& answer);
  std::uint16_t free_id(const Channel& channel) noexcept;
  // Query IDs from the kernel's CSPRNG, fetched 256 at a time: glibc 2.36's
  // arc4random makes one getrandom syscall per call, i.e. one per query.
  std::uint16_t random_id() noexcept;
  std::array<std::uint16_t, 256> id_pool_{};
  std::size_t id_next_ = 256;

  boost::asio::any_io_executor exec_;
  std::vector<IpEndpoint> upstreams_;
  Logger& log_;
  Counters& counters_;
  std::vector<std::unique_ptr<Channel>> channels_;  // kSocketsPerUpstream per upstream, in order
  std::size_t preferred_ = 0;
  std::size_t next_socket_ = 0;
  bool stopped_ = false;
  FastReceiver* fast_receiver_ = nullptr;
  std::uint64_t next_serial_ = 0;
  std::deque<Deadline> deadlines_;  // fast queries in send order (one timeout: sorted)
  boost::asio::steady_timer sweep_timer_;
  bool sweep_idle_ = false;  // the sweep waits without a deadline (nothing in flight)
  // recvmmsg scratch shared by the receive loops (used without a co_await in between).
  struct RecvBatch {
    std::array<std::array<std::uint8_t, 4096>, kRecvBatch> buf;
    std::array<iovec, kRecvBatch> iov;
    std::array<mmsghdr, kRecvBatch> msgs;
  };
  std::unique_ptr<RecvBatch> recv_batch_;
  struct SendQueue {
    std::array<std::array<std::uint8_t, 512>, kRecvBatch> msg;
    std::array<iovec, kRecvBatch> iov;
    std::array<mmsghdr, kRecvBatch> msgs;
    std::array<std::uint16_t, kRecvBatch> id;
    Channel* channel = nullptr;  // one socket per queued batch
    std::size_t count = 0;
  };
  std::unique_ptr<SendQueue> send_queue_;
};

// Byte-wise, ASCII case-insensitive equality (question sections).
bool same_question(std::span<const std::uint8_t> a, std::span<const std::uint8_t> b) noexcept;

}  // namespace cagent::dnsguard
