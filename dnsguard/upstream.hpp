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
#include <chrono>
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
  // answer is in `answer` and true is returned; false after every attempt failed.
  boost::asio::awaitable<bool> exchange(std::span<const std::uint8_t> query,
                                        std::vector<std::uint8_t>& answer);

 private:
  struct Pending {
    std::vector<std::uint8_t>* answer;
    boost::asio::steady_timer* timer;
    std::span<const std::uint8_t> question;  // bytes [12, question end) of what we sent
    bool done = false;
  };
  struct Channel {
    explicit Channel(boost::asio::any_io_executor exec) : socket(exec) {}
    boost::asio::ip::udp::socket socket;
    std::unordered_map<std::uint16_t, Pending*> pending;
  };

  boost::asio::awaitable<void> receive_loop(Channel& channel);
  boost::asio::awaitable<bool> tcp_exchange(const IpEndpoint& upstream,
                                            std::span<const std::uint8_t> query,
                                            std::vector<std::uint8_t>& answer);
  std::uint16_t free_id(const Channel& channel) const noexcept;

  boost::asio::any_io_executor exec_;
  std::vector<IpEndpoint> upstreams_;
  Logger& log_;
  Counters& counters_;
  std::vector<std::unique_ptr<Channel>> channels_;  // kSocketsPerUpstream per upstream, in order
  std::size_t preferred_ = 0;
  std::size_t next_socket_ = 0;
  bool stopped_ = false;
};

// Byte-wise, ASCII case-insensitive equality (question sections).
bool same_question(std::span<const std::uint8_t> a, std::span<const std::uint8_t> b) noexcept;

}  // namespace cagent::dnsguard
