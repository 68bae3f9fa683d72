#pragma once
// Server: dnsguard's I/O. One single-threaded io_context runs everything:
// a UDP receive loop and a TCP acceptor per `listen` address, one coroutine
// per TCP connection and per query that has to go upstream, the upstream
// pool's receive loops and the refresh timer. All decisions are made by the
// synchronous QueryEngine, which also calls the AnswerSink — so nothing else
// runs between a set insert and the send of the answer that needed it.

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/steady_timer.hpp>
#include <sys/socket.h>
#include <sys/uio.h>

#include <array>
#include <chrono>
#include <list>
#include <memory>
#include <vector>

#include "dnsguard/control.hpp"
#include "dnsguard/engine.hpp"
#include "dnsguard/gate.hpp"
#include "dnsguard/upstream.hpp"

namespace cagent::dnsguard {

class Server final : private UpstreamPool::FastReceiver {
 public:
  static constexpr std::size_t kMaxInflight = 4096;        // queries waiting for upstream
  static constexpr std::size_t kMaxTcpConnections = 128;
  static constexpr std::chrono::seconds kTcpIdleTimeout{10};

  Server(boost::asio::io_context& io, const Config& config, AnswerSink& sink, Logger& log);
  ~Server();

  // Binds every listen address (UDP and TCP) and starts serving and
  // refreshing. Throws std::system_error naming the address on failure.
  void start();
  void stop() noexcept;

  const Counters& counters() const noexcept { return counters_; }
  // The counters as the log's "counters …" line (the gate's too, when on).
  std::string counters_line() const;
  // A restart within a session: the predecessor's record and run-time
  // allowlist changes (decisions.json in the session's log directory).
  void take_up_previous_record();
  // The gate's bindings: journalled from now on; after a restart, first
  // bound again from the journal where the sets still hold the address.
  void take_up_bindings(bool restarted);
  // Rewrites decisions.json when the record changed, when its promised
  // rewrite is due, or when `force`d; `final`: the last write, at stop.
  // The log's and the journal's losses go into the record first.
  void write_decisions(bool force, bool final = false) noexcept;
  // Where the firewall's own refusals are read from (each second, and at
  // stop); not owned; null: not recorded.
  void set_firewall_counters(FirewallCounters* firewall) noexcept { firewall_ = firewall; }

 private:
  boost::asio::awaitable<void> udp_loop(boost::asio::ip::udp::socket& socket);
  // The steps of one udp_loop round, all synchronous (no co_await between
  // the receive and the send): recvmmsg into udp_batch_ (0: nothing
  // received), then each datagram answered locally (queued in udp_batch_'s
  // out slots, `answers` counts them) or sent upstream, then one sendmmsg.
  std::size_t receive_batch(int fd) noexcept;
  void handle_datagram(boost::asio::ip::udp::socket& socket, std::size_t i, Query& q,
                       QueryEngine::Clock::time_point now, std::size_t& answers);
  // A miss: the fast path (a wait slot + UpstreamPool::send_fast), or the
  // coroutine path when that cannot take it; dropped (counted) when
  // kMaxInflight queries already wait.
  void send_upstream(boost::asio::ip::udp::socket& socket, const boost::asio::ip::udp::endpoint& client,
                     std::span<const std::uint8_t> query, const Query& q);
  void send_answers(int fd, std::size_t answers) noexcept;
  // The coroutine path of a UDP miss: the whole exchange, or — after the
  // fast path's first attempt failed — its continuation (first_attempt 1,
  // or the TCP retry at upstream `tcp_first` after TC=1).
  boost::asio::awaitable<void> udp_resolve(boost::asio::ip::udp::socket& socket,
                                           boost::asio::ip::udp::endpoint client,
                                           std::vector<std::uint8_t> query, Query q,
                                           int first_attempt, std::size_t tcp_first);
  // UpstreamPool::FastReceiver: the UDP miss path without a coroutine.
  void answered(std::uint32_t token, std::span<const std::uint8_t> answer) noexcept override;
  void failed(std::uint32_t token, std::size_t truncated_at) noexcept override;
  void batch_done() noexcept override;
  void flush_replies() noexcept;
  boost::asio::awaitable<void> tcp_accept_loop(boost::asio::ip::tcp::acceptor& acceptor);
  boost::asio::awaitable<void> tcp_connection(boost::asio::ip::tcp::socket socket);
  boost::asio::awaitable<void> refresh_loop();
  // Rewrites the decision file once a second while it changes.
  boost::asio::awaitable<void> decisions_loop();
  // The control socket (control.hpp): created in a 0700 directory of
  // dnsguard's own, serving only uid 0.
  void start_control();
  boost::asio::awaitable<void> control_loop();
  boost::asio::awaitable<void> control_session(boost::asio::local::stream_protocol::socket socket);
  // One request against the live policy, the engine, the gate and the
  // record: the reply to send.
  ControlReply carry_out(const ControlRequest& request);

  boost::asio::io_context& io_;
  const Config& config_;
  Logger& log_;
  Counters counters_;
  // Declared before the engine and the gate, which hold pointers to it.
  DecisionRecord decisions_;
  DecisionFile decisions_file_;
  boost::asio::steady_timer decisions_timer_;
  FirewallCounters* firewall_ = nullptr;
  std::vector<FirewallFlow> firewall_flows_;  // reused between readings
  bool firewall_failed_ = false;              // logged once, not every second
  bool record_failing_ = false;               // said when it starts and when it ends
  bool journal_loss_said_ = false;
  void read_firewall() noexcept;
  QueryEngine engine_;
  LivePolicy live_;
  std::string control_path_;  // empty: no control socket (no log directory)
  std::unique_ptr<boost::asio::local::stream_protocol::acceptor> control_;
  UpstreamPool upstreams_;
  std::list<boost::asio::ip::udp::socket> udp_sockets_;
  std::list<boost::asio::ip::tcp::acceptor> acceptors_;
  boost::asio::steady_timer refresh_timer_;
  std::vector<std::uint8_t> out_;  // answers are built here and sent before any co_await

  // recvmmsg/sendmmsg scratch of the UDP loops (shared: a loop uses it only
  // between a readiness wake-up and its sendmmsg, with no co_await between).
  // UDP answers are at most 4096 bytes (the largest EDNS size we honour);
  // a cached answer that does not fit a slot simply goes upstream again.
  static constexpr std::size_t kUdpBatch = 32;
  static constexpr int kUdpRounds = 8;  // batches per wake-up before yielding to other work
  struct UdpBatch {
    std::array<std::array<std::uint8_t, 4096>, kUdpBatch> in;
    std::array<std::array<std::uint8_t, 4096>, kUdpBatch> out;
    std::array<sockaddr_storage, kUdpBatch> peers;
    std::array<iovec, kUdpBatch> in_iov, out_iov;
    std::array<mmsghdr, kUdpBatch> in_msgs, out_msgs;
  };
  std::unique_ptr<UdpBatch> udp_batch_;

  // UDP queries waiting for the fast path (token = index; slots are reused).
  struct UdpWait {
    boost::asio::ip::udp::socket* socket = nullptr;
    boost::asio::ip::udp::endpoint client;
    std::vector<std::uint8_t> query;
    Query q;
  };
  std::vector<UdpWait> waits_;
  std::vector<std::uint32_t> free_waits_;
  // Answers finished during one drained batch of upstream answers, sent
  // together by batch_done() (each after its own sink call: finish() is
  // synchronous and inserts before it builds the answer).
  struct Replies {
    std::array<std::array<std::uint8_t, 4096>, kUdpBatch> buf;
    std::array<boost::asio::ip::udp::socket*, kUdpBatch> socket;
    std::array<boost::asio::ip::udp::endpoint, kUdpBatch> client;
    std::array<iovec, kUdpBatch> iov;
    std::array<mmsghdr, kUdpBatch> msgs;
    std::size_t count = 0;
  };
  std::unique_ptr<Replies> replies_;
  std::size_t inflight_ = 0;
  std::size_t tcp_connections_ = 0;
  bool stopped_ = false;
  std::unique_ptr<Gate> gate_;  // with gate.enabled
  AnswerSink& sink_;
  std::unique_ptr<BindingJournal> journal_;  // with a log directory
};

// The daemon: logger already open, sink wired. Serves until SIGTERM/SIGINT,
// writes counters on SIGUSR1 and at exit. Throws on startup failure.
// `firewall` (may be null): where the firewall's refusals are read from.
void run_daemon(const Config& config, AnswerSink& sink, Logger& log, FirewallCounters* firewall = nullptr);

}  // namespace cagent::dnsguard
