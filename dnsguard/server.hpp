#pragma once
// Server: dnsguard's I/O. One single-threaded io_context runs everything:
// a UDP receive loop and a TCP acceptor per `listen` address, one coroutine
// per TCP connection and per query that has to go upstream, the upstream
// pool's receive loops and the refresh timer. All decisions are made by the
// synchronous QueryEngine, which also calls the AnswerSink — so nothing else
// runs between a set insert and the send of the answer that needed it.
// (One other thread exists: RecordWriter's, which only turns snapshots of
// the decision record into decisions.json.)

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
#include <deque>
#include <chrono>
#include <list>
#include <memory>
#include <vector>

#include "dnsguard/accept_backoff.hpp"
#include "dnsguard/control.hpp"
#include "dnsguard/engine.hpp"
#include "dnsguard/fd_budget.hpp"
#include "dnsguard/gate.hpp"
#include "dnsguard/held_lookups.hpp"
#include "dnsguard/posix.hpp"
#include "dnsguard/record_writer.hpp"
#include "dnsguard/source_flights.hpp"
#include "dnsguard/upstream.hpp"

namespace cagent::dnsguard {

// What tests may shorten; the defaults are the production values.
struct ServerTuning {
  std::chrono::seconds relay_idle_timeout = kRelayIdleTimeout;  // the gate's (gate.hpp)
};

class Server final : private UpstreamPool::FastReceiver {
 public:
  // Full sizes; the descriptor budget (fd_budget.hpp) may lower both when
  // RLIMIT_NOFILE is small.
  static constexpr std::size_t kMaxInflight = 4096;        // UDP queries waiting for an upstream
  static constexpr std::size_t kMaxTcpConnections = 128;
  // DNS over TCP (RFC 7766 6.2.3 lets a server close idle connections and
  // asks clients to cope): a connection may wait this long for the first
  // byte of its next query (unbound: tcp-idle-timeout, 30 s; busy servers
  // much less) …
  static constexpr std::chrono::seconds kTcpIdleTimeout{10};
  // … and, once a query has begun, this long for the rest of it; writing
  // an answer has the same deadline. A client that trickles its bytes (the
  // "slow client" that held every slot before) is closed after 2 s, and a
  // real client sends its query in one segment. When every slot is taken,
  // a new connection takes the one whose client has kept dnsguard waiting
  // longest (unbound closes idle connections as its slots fill up, too),
  // so a client that holds slots without asking cannot lock others out.
  static constexpr std::chrono::seconds kTcpQueryTimeout{2};

  Server(boost::asio::io_context& io, const Config& config, AnswerSink& sink, Logger& log,
         ServerTuning tuning = {});
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
  // Hands a snapshot of the record to the writer (the file is replaced off
  // this thread) when it changed, when its promised rewrite is due
  // (RecordWriter::due), or when `force`d. The log's, the journal's and the
  // record's own write failures go into the record first. The last write,
  // `final`, is stop()'s.
  void write_decisions(bool force) noexcept;
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
  // A miss: a wait slot, started at once or waiting for its socket's share
  // (source_flights.hpp); dropped (counted as overload) when kMaxInflight
  // queries already wait or its socket's queue is full.
  void send_upstream(boost::asio::ip::udp::socket& socket, const boost::asio::ip::udp::endpoint& client,
                     std::span<const std::uint8_t> query, const Query& q);
  // A miss its socket's share lets start (source_flights.hpp): the fast
  // path, or the coroutine path when that cannot take it.
  void start_flight(std::uint32_t token) noexcept;
  // One of `source`'s lookups ended (answered, failed, or handed on):
  // its socket's next waiting miss starts.
  void flight_ended(SourceKey source) noexcept;
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
  // One DNS-over-TCP connection, listed in tcp_slots_ while it runs.
  boost::asio::awaitable<void> tcp_connection(boost::asio::ip::tcp::socket socket);
  // All slots are taken: closes the connection whose client has kept
  // dnsguard waiting longest. False when none waits on its client (every
  // one is with the upstream or being answered).
  bool reclaim_tcp_slot() noexcept;
  // RLIMIT_NOFILE raised to the hard limit, the budget planned and logged.
  void plan_descriptor_budget();
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

  // ---- ask mode (held_lookups.hpp, contracts.hpp "watch") ----
  // A `watch` connection: the reply, then one WatchEvent line per denied
  // or held lookup until the watcher closes it. While one is open and the
  // policy says ask.enabled, the engine holds denied lookups.
  boost::asio::awaitable<void> watch_session(boost::asio::local::stream_protocol::socket& sock);
  // Waits until an approver decides the held lookup of `name` or
  // ask.timeout passes. refused at once when there is no room to hold it.
  boost::asio::awaitable<HeldLookups::Outcome> hold(std::string name, std::uint16_t type);
  // After the wait: the query runs again when it was allowed (an answer,
  // or needs_upstream), else its deny answer (the EDE text says why).
  QueryEngine::Local settle_held(std::span<const std::uint8_t> query, Query& q, const IpEndpoint& client, bool tcp,
                                 HeldLookups::Outcome outcome, std::span<std::uint8_t> out);
  // A held UDP query: its own coroutine, so the receive loop goes on.
  boost::asio::awaitable<void> udp_held(boost::asio::ip::udp::socket& socket, boost::asio::ip::udp::endpoint client,
                                        std::vector<std::uint8_t> query, Query q);
  // The held lookups the allowlist now allows are answered (after every
  // allow, from any control connection).
  void release_allowed();
  // Every watcher gets `event` (dropped, counted, for one whose queue is full).
  void tell_watchers(const WatchEvent& event);
  // A plain denial, told at most once per name in a short window: a client
  // retrying (A and AAAA, each twice) is one line for the approver.
  void tell_denied(std::string_view name, std::uint16_t type);
  void update_holding() noexcept;

  boost::asio::io_context& io_;
  const Config& config_;
  Logger& log_;
  Counters counters_;
  // Declared before the engine and the gate, which hold pointers to it.
  DecisionRecord decisions_;
  std::filesystem::path decisions_path_;  // empty: no log directory, no record written
  boost::asio::steady_timer decisions_timer_;
  FirewallCounters* firewall_ = nullptr;
  std::vector<FirewallFlow> firewall_flows_;  // reused between readings
  bool firewall_failed_ = false;              // logged once, not every second
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
  std::size_t inflight_ = 0;  // started and waiting in flights_ alike
  SourceFlights flights_;
  // The descriptor budget's caps (fd_budget.hpp), set in start().
  DescriptorBudget budget_;
  std::size_t inflight_cap_ = kMaxInflight;
  std::size_t tcp_cap_ = kMaxTcpConnections;
  // DNS-over-TCP connections: each one's socket and whether (and since
  // when) it is waiting on its client. Reclaimed slots are closed at once
  // and no longer counted; their coroutine unlists them when it ends.
  struct TcpSlot {
    boost::asio::ip::tcp::socket* socket = nullptr;
    bool waiting = true;
    bool reclaimed = false;
    std::chrono::steady_clock::time_point since{};
  };
  std::list<TcpSlot> tcp_slots_;
  std::size_t tcp_connections_ = 0;  // slots not reclaimed
  std::uint64_t tcp_reclaimed_ = 0;
  AcceptBackoff tcp_backoff_;
  AcceptBackoff control_backoff_;
  std::size_t control_sessions_ = 0;
  // Writes decisions.json off this thread (record_writer.hpp), with a
  // descriptor of its own; null without a log directory.
  std::unique_ptr<RecordWriter> record_writer_;
  std::optional<RecordWriter::Clock::time_point> last_submit_;  // for the freshness rule
  // Writes are failing: said when it starts (an alarm) and when a snapshot
  // that carries the failures (ticket marked_ticket_, 0: none submitted yet)
  // is in the file.
  bool record_failing_ = false;
  std::uint64_t marked_ticket_ = 0;
  // The log's, the journal's and the writer's losses into the record (the
  // journal's said once); resolver thread, with record_writer_.
  void take_up_write_losses();
  ServerTuning tuning_;
  bool stopped_ = false;
  // False once the server is destroyed. run_daemon's io_context outlives
  // the server and destroys the coroutines still waiting then; their
  // clean-up must not touch the server (a control or watch session open
  // at SIGTERM).
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  // Ask mode. A watcher's queue and the timer its writer sleeps on; listed
  // while its connection is open (at most kMaxWatchers: the rest of the
  // control sessions stay free for allow/deny/refuse).
  struct Watcher {
    explicit Watcher(boost::asio::io_context& io) : wake(io) {}
    std::deque<std::string> queue;
    boost::asio::steady_timer wake;
  };
  static constexpr std::size_t kMaxWatchers = 4;
  static constexpr std::size_t kWatchQueue = 512;  // lines a slow watcher may lag behind
  std::list<Watcher*> watchers_;
  HeldLookups held_;
  // Names told as denied lately (tell_denied): bounded, oldest first.
  std::deque<std::pair<std::string, std::chrono::steady_clock::time_point>> told_;
  std::unique_ptr<Gate> gate_;  // with gate.enabled
  AnswerSink& sink_;
  std::unique_ptr<BindingJournal> journal_;  // with a log directory
};

// The daemon: logger already open, sink wired. Serves until SIGTERM/SIGINT,
// writes counters on SIGUSR1 and at exit. Throws on startup failure.
// `firewall` (may be null): where the firewall's refusals are read from.
void run_daemon(const Config& config, AnswerSink& sink, Logger& log, FirewallCounters* firewall = nullptr,
                ServerTuning tuning = {});

}  // namespace cagent::dnsguard
