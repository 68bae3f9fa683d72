#pragma once
// UpstreamPool: sends queries to the configured upstream resolvers.
//
// Every UDP query leaves from a socket of its own, connected to the
// upstream: the kernel gives it a random ephemeral port when it connects,
// and the query a random ID (the kernel's CSPRNG), so an off-path forger
// has to guess both (RFC 5452) — and the connected socket drops datagrams
// from any other source. The socket is closed with the query (answered,
// failed or timed out), so a late or forged answer finds no socket at all.
// Each socket's readiness is one Asio wait; an answer is handed to the
// waiting query after checking that it echoes the question (anything else —
// spoofed, garbage — is dropped and the query keeps waiting).
//
// Per query: up to kAttempts tries, each kAttemptTimeout long, starting at
// the preferred upstream and failing over to the next one (the preference
// moves with failures). A truncated (TC=1) UDP answer is retried over TCP
// against the same upstream. SERVFAIL/REFUSED count as a failed attempt.
//
// Flows are also protected in the firewall: nothing in the cage but the
// upstream itself may answer on them (nft/ruleset.cpp, owned_flows()).

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/steady_timer.hpp>

#include <array>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <span>
#include <unordered_map>
#include <vector>

#include "dnsguard/config.hpp"
#include "dnsguard/log.hpp"

namespace cagent::dnsguard {

class UpstreamPool {
 public:
  static constexpr std::chrono::milliseconds kAttemptTimeout{750};
  static constexpr int kAttempts = 3;
  // Queries in flight over UDP at once, i.e. sockets held (the server
  // bounds its own waiting clients well below this): beyond it a query
  // fails at once instead of exhausting descriptors.
  static constexpr std::size_t kMaxFlights = 8192;
  // The longest question section a query may have (name ≤ 255 + type + class).
  static constexpr std::size_t kMaxQuestion = 260;
  // TCP exchanges with upstreams at once (retries after TC=1). Each may read
  // an answer of up to 64 KiB into memory; past this many the attempt fails
  // at once (the client gets SERVFAIL) instead of letting a flood of names
  // with large answers grow dnsguard by 64 KiB per waiting query. Truncated
  // answers are rare (large TXT, DNSKEY): 64 at once is far above need.
  static constexpr std::size_t kMaxTcpExchanges = 64;

  UpstreamPool(boost::asio::any_io_executor exec, std::vector<IpEndpoint> upstreams, Logger& log,
               Counters& counters);
  ~UpstreamPool();

  // Starts the timeout sweep. Throws std::system_error.
  void start();
  void stop() noexcept;

  // `query` is a complete message (its ID is overwritten). On success the
  // answer is in `answer` and true is returned; false after every attempt
  // failed. `first_attempt` > 0 continues a query whose earlier attempts
  // were made by send_fast().
  boost::asio::awaitable<bool> exchange(std::span<const std::uint8_t> query,
                                        std::vector<std::uint8_t>& answer, int first_attempt = 0);

  // The UDP fast path (the client-facing UDP miss path): the first attempt
  // only, with no coroutine and no timer per query. Answers are reported to
  // the receiver from the sockets' readiness handlers; timeouts are found by
  // one sweep timer. Anything but a clean answer — timeout, TC=1,
  // SERVFAIL/REFUSED, a send error — is reported as failed, and the caller
  // continues with exchange(first_attempt = 1) or, for TC=1,
  // exchange_tcp(), which together behave exactly like exchange().
  class FastReceiver {
   public:
    virtual ~FastReceiver() = default;
    virtual void answered(std::uint32_t token, std::span<const std::uint8_t> answer) noexcept = 0;
    // truncated_at: the upstream that answered TC=1 (retry it over TCP), else npos.
    virtual void failed(std::uint32_t token, std::size_t truncated_at) noexcept = 0;
    // After the answers that were ready together were reported (flush the
    // client answers).
    virtual void batch_done() noexcept = 0;
  };
  void set_fast_receiver(FastReceiver* receiver) noexcept { fast_receiver_ = receiver; }
  // Sends the query on a socket of its own; false when it cannot take the
  // fast path (use exchange()). A query that cannot be sent is reported
  // failed() before this returns true.
  bool send_fast(std::span<const std::uint8_t> query, std::uint32_t token) noexcept;
  // The TCP retry of a query whose UDP answer from upstream `index` had TC=1.
  boost::asio::awaitable<bool> exchange_tcp(std::size_t index, std::span<const std::uint8_t> query,
                                            std::vector<std::uint8_t>& answer);

  // UDP queries in flight now (sockets held).
  std::size_t flights() const noexcept { return flights_.size(); }
  // The server's descriptor budget (fd_budget.hpp): at most this many
  // flights at once, never more than kMaxFlights.
  void set_max_flights(std::size_t n) noexcept { max_flights_ = n < kMaxFlights ? n : kMaxFlights; }

 private:
  // exchange()'s side of a flight: where the answer goes, whom to wake.
  struct Pending {
    std::vector<std::uint8_t>* answer;
    boost::asio::steady_timer* timer;
    bool done = false;
  };
  // One UDP query in flight: its own connected socket.
  struct Flight {
    explicit Flight(boost::asio::any_io_executor exec) : socket(std::move(exec)) {}
    boost::asio::ip::udp::socket socket;
    std::size_t upstream = 0;    // index into upstreams_
    std::uint16_t id = 0;
    std::size_t qlen = 0;
    std::array<std::uint8_t, kMaxQuestion> question{};  // bytes [12, question end) of what was sent
    std::uint32_t token = 0;     // the fast path's receiver token …
    Pending* pending = nullptr;  // … or exchange()'s waiter
  };
  struct Deadline {
    std::chrono::steady_clock::time_point at;
    std::uint64_t serial;
  };
  static constexpr std::chrono::milliseconds kSweepInterval{50};

  // Opens a socket to upstream `up`, sends `query` (ID replaced) on it and
  // waits for its answer. Returns the flight's serial, 0 when it could not
  // be sent (counted and logged).
  std::uint64_t launch(std::size_t up, std::span<const std::uint8_t> query, std::size_t qlen,
                       std::uint32_t token, Pending* pending) noexcept;
  void arm(std::uint64_t serial, Flight& flight) noexcept;
  // The flight's socket is readable: read what is there; an answer (or an
  // error) ends the flight, anything else is dropped and the wait re-armed.
  void readable(std::uint64_t serial) noexcept;
  // Ends the flight with `answer` (empty: failed; truncated: too large).
  void finish(std::unordered_map<std::uint64_t, std::unique_ptr<Flight>>::iterator it,
              std::span<const std::uint8_t> answer, bool truncated) noexcept;
  void retire(std::unordered_map<std::uint64_t, std::unique_ptr<Flight>>::iterator it) noexcept;
  void schedule_batch_done() noexcept;

  boost::asio::awaitable<void> sweep_loop();
  boost::asio::awaitable<bool> tcp_exchange(const IpEndpoint& upstream,
                                            std::span<const std::uint8_t> query,
                                            std::vector<std::uint8_t>& answer);
  // Query IDs from the kernel's CSPRNG, fetched 256 at a time: glibc 2.36's
  // arc4random makes one getrandom syscall per call, i.e. one per query.
  std::uint16_t random_id() noexcept;
  std::array<std::uint16_t, 256> id_pool_{};
  std::size_t id_next_ = 256;

  boost::asio::any_io_executor exec_;
  std::vector<IpEndpoint> upstreams_;
  Logger& log_;
  Counters& counters_;
  std::unordered_map<std::uint64_t, std::unique_ptr<Flight>> flights_;  // by serial
  std::vector<std::unique_ptr<Flight>> spare_;  // closed flights, reused (their sockets reopen)
  std::uint64_t next_serial_ = 0;
  std::size_t max_flights_ = kMaxFlights;
  std::size_t tcp_exchanges_ = 0;  // tcp_exchange() calls running
  std::size_t preferred_ = 0;
  bool stopped_ = false;
  FastReceiver* fast_receiver_ = nullptr;
  bool batch_done_posted_ = false;
  std::deque<Deadline> deadlines_;  // fast queries in send order (one timeout: sorted)
  boost::asio::steady_timer sweep_timer_;
  bool sweep_idle_ = false;  // the sweep waits without a deadline (nothing in flight)
  std::array<std::uint8_t, 4096> recv_buf_{};  // used only inside readable(), never across a wait
};

// Byte-wise, ASCII case-insensitive equality (question sections).
bool same_question(std::span<const std::uint8_t> a, std::span<const std::uint8_t> b) noexcept;

}  // namespace cagent::dnsguard
