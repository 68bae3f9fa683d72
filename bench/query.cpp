#include "bench/query.hpp"

#include "bench/sockaddr.hpp"

#include "bench/dns_wire.hpp"
#include "bench/zone.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bench/asio.hpp"
#include "dnsguard/posix.hpp"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <deque>
#include <exception>
#include <stdexcept>
#include <vector>

namespace cagent::bench {

namespace {

namespace asio = boost::asio;
using asio::awaitable;
using asio::use_awaitable;
using namespace asio::experimental::awaitable_operators;
constexpr auto use_tuple = asio::as_tuple(use_awaitable);
using Clock = std::chrono::steady_clock;

std::uint64_t now_ns() {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count());
}

// Identifies a question independent of case, to reject answers to another
// question that happen to carry a reused id.
std::uint64_t question_key(std::span<const std::uint8_t> wire_name, std::uint16_t qtype) {
  return name_hash(wire_name) ^ (std::uint64_t{qtype} * 0x9e3779b97f4a7c15ull);
}


void count_rcode(Report& r, const ResponseView& v) {
  switch (v.rcode) {
    case Rcode::noerror: ++r.noerror; break;
    case Rcode::nxdomain: ++r.nxdomain; break;
    case Rcode::servfail: ++r.servfail; break;
    case Rcode::refused: ++r.refused_rcode; break;
    default: ++r.other_rcode; break;
  }
}

asio::ip::address server_address(const QueryOptions& o) {
  boost::system::error_code ec;
  auto addr = asio::ip::make_address(o.server.host, ec);
  if (ec) throw std::runtime_error("bad server address " + o.server.host);
  return addr;
}

void raise_fd_limit() {
  // Connect-after-answer keeps up to kMaxConnects sockets open at once.
  rlimit lim{};
  if (::getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
    lim.rlim_cur = lim.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &lim);
  }
}

// --connect-after-answer: one TCP connect per returned address.
class Connector {
 public:
  static constexpr std::uint64_t kMaxInFlight = 4096;

  Connector(asio::io_context& ctx, std::uint16_t port, std::chrono::milliseconds timeout, ConnectStats& stats)
      : ctx_(ctx), port_(port), timeout_(timeout), stats_(stats) {}

  std::uint64_t in_flight() const noexcept { return in_flight_; }

  // Issues the connect now: a non-blocking connect() sends the SYN inside
  // this call, so the attempt happens before the resolver's next answer is
  // even read. Only the wait for the outcome is asynchronous.
  void start(const AnswerAddress& a) {
    if (in_flight_ >= kMaxInFlight) {
      ++skipped_;
      return;
    }
    ++stats_.attempted;
    sockaddr_storage ss{};
    dnsguard::IpAddress ip;
    ip.v6 = a.v6;
    std::memcpy(ip.bytes.data(), a.bytes.data(), a.v6 ? 16 : 4);
    const socklen_t len = to_sockaddr(ip, port_, ss);
    cagent::UniqueFd fd{::socket(a.v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)};
    if (!fd.valid()) {
      ++stats_.other;
      return;
    }
    // Close with RST: no TIME_WAIT pile-up over tens of thousands of connects.
    const linger lg{1, 0};
    ::setsockopt(fd.get(), SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    const int rc = ::connect(fd.get(), reinterpret_cast<const sockaddr*>(&ss), len);
    const int err = errno;
    if (rc == 0) {
      ++stats_.succeeded;
      return;
    }
    if (err != EINPROGRESS) {
      classify(err);
      return;
    }
    asio::ip::tcp::socket sock(ctx_);
    boost::system::error_code ec;
    sock.assign(a.v6 ? asio::ip::tcp::v6() : asio::ip::tcp::v4(), fd.get(), ec);
    if (ec) {
      ++stats_.other;
      return;
    }
    fd.release();  // now owned by `sock`
    ++in_flight_;
    asio::co_spawn(ctx_, finish(std::move(sock)), [this](std::exception_ptr e) {
      --in_flight_;
      if (e) ++stats_.other;  // finish() catches its own errors; this is a backstop
    });
  }

  std::uint64_t skipped() const noexcept { return skipped_; }

 private:
  awaitable<void> finish(asio::ip::tcp::socket sock) {
    asio::steady_timer timer(ctx_);
    timer.expires_after(timeout_);
    auto result = co_await (sock.async_wait(asio::socket_base::wait_write, use_tuple) || timer.async_wait(use_tuple));
    if (result.index() == 1) {
      ++stats_.timed_out;
      co_return;
    }
    int so_error = 0;
    socklen_t len = sizeof so_error;
    if (::getsockopt(sock.native_handle(), SOL_SOCKET, SO_ERROR, &so_error, &len) != 0) so_error = errno;
    if (so_error == 0)
      ++stats_.succeeded;
    else
      classify(so_error);
  }

  void classify(int err) {
    switch (err) {
      case ECONNREFUSED: ++stats_.refused; break;
      case EHOSTUNREACH:
      case ENETUNREACH:
      case EACCES:
      case EPERM: ++stats_.unreachable; break;
      case ETIMEDOUT: ++stats_.timed_out; break;
      default: ++stats_.other; break;
    }
  }

  asio::io_context& ctx_;
  std::uint16_t port_;
  std::chrono::milliseconds timeout_;
  ConnectStats& stats_;
  std::uint64_t in_flight_ = 0;
  std::uint64_t skipped_ = 0;
};

// UDP load: one connected socket, ids as slots.
class UdpLoad {
 public:
  UdpLoad(asio::io_context& ctx, const QueryOptions& o, const NameSource& names, Report& report)
      : ctx_(ctx), o_(o), names_(names), report_(report), sock_(ctx), ticker_(ctx),
        connector_(ctx, o.connect_port, o.timeout, report.connect), slots_(65536), free_ids_(65536) {
    // Hand ids out in a scrambled order and reuse the longest-free one first,
    // so a late answer rarely meets a reused id (and the question check
    // catches it when it does).
    for (std::size_t i = 0; i < free_ids_.size(); ++i)
      free_ids_[i] = static_cast<std::uint16_t>((i * 40503u + 1u) & 0xffffu);
    free_count_ = free_ids_.size();
    budget_ = o.count ? *o.count : UINT64_MAX;
  }

  awaitable<void> run() {
    const asio::ip::udp::endpoint server(server_address(o_), o_.server.port);
    sock_.open(server.protocol());
    sock_.set_option(asio::socket_base::receive_buffer_size(4 << 20));
    sock_.set_option(asio::socket_base::send_buffer_size(4 << 20));
    boost::system::error_code ec;
    sock_.connect(server, ec);
    if (ec) throw std::runtime_error("cannot connect UDP socket to " + o_.server.host + ": " + ec.message());
    sock_.non_blocking(true);

    start_ns_ = now_ns();
    last_answer_ns_ = start_ns_;
    last_progress_ns_ = start_ns_;
    if (o_.duration) stop_send_ns_ = start_ns_ + static_cast<std::uint64_t>(*o_.duration * 1e9);
    if (!o_.rate) pending_ = o_.outstanding ? o_.outstanding : 64;
    pump();
    co_await (receive_loop() && tick_loop());

    const std::uint64_t end = report_.answered ? last_answer_ns_ : now_ns();
    report_.seconds = static_cast<double>(end - start_ns_) / 1e9;
  }

 private:
  struct Slot {
    std::uint64_t sent_ns = 0;
    std::uint64_t key = 0;
    std::uint64_t seq = 0;
    bool busy = false;
  };

  bool closed_loop() const { return !o_.rate.has_value(); }
  bool sending_over() const { return report_.sent >= budget_ || (stop_send_ns_ && now_ns() >= stop_send_ns_); }

  void free_id(std::uint16_t id) {
    free_ids_[(free_head_ + free_count_) % free_ids_.size()] = id;
    ++free_count_;
  }

  // Sends as many pending queries as ids allow; stops at EAGAIN and retries
  // on the next answer or tick.
  void pump() {
    if (sending_over()) return;
    std::uint8_t buf[512];
    while (pending_ > 0 && free_count_ > 0 && report_.sent < budget_) {
      const std::uint16_t id = free_ids_[free_head_];
      const std::size_t name_len = names_.wire_name(report_.sent, std::span(buf).subspan(kHeaderSize));
      if (name_len == 0) {  // cannot happen for names that encoded at load time
        ++report_.malformed;
        return;
      }
      const std::uint8_t header[12] = {static_cast<std::uint8_t>(id >> 8), static_cast<std::uint8_t>(id & 0xff),
                                       0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0};
      std::memcpy(buf, header, sizeof header);
      std::size_t len = kHeaderSize + name_len;
      buf[len++] = static_cast<std::uint8_t>(o_.qtype >> 8);
      buf[len++] = static_cast<std::uint8_t>(o_.qtype & 0xff);
      buf[len++] = 0;
      buf[len++] = 1;
      boost::system::error_code ec;
      sock_.send(asio::buffer(buf, len), 0, ec);
      if (ec == asio::error::would_block || ec == asio::error::no_buffer_space) return;
      if (ec) {
        // E.g. ECONNREFUSED reported for an earlier datagram (ICMP port
        // unreachable): the query is not sent; try again on the next tick.
        ++send_errors_;
        return;
      }
      last_progress_ns_ = now_ns();
      free_head_ = (free_head_ + 1) % free_ids_.size();
      --free_count_;
      Slot& s = slots_[id];
      s.sent_ns = now_ns();
      s.key = question_key(std::span<const std::uint8_t>(buf + kHeaderSize, name_len), o_.qtype);
      s.seq = report_.sent;
      s.busy = true;
      ++busy_;
      in_flight_.emplace_back(id, report_.sent);
      ++report_.sent;
      --pending_;
    }
  }

  void on_datagram(std::span<const std::uint8_t> msg) {
    const std::uint64_t now = now_ns();
    const auto r = parse_response(msg);
    if (!r) {
      ++report_.malformed;
      return;
    }
    Slot& s = slots_[r->id];
    if (!s.busy || question_key(r->question.name, r->question.qtype) != s.key) {
      ++report_.malformed;  // late (after its timeout), duplicate or foreign
      return;
    }
    s.busy = false;
    --busy_;
    free_id(r->id);
    report_.latency.record(now - s.sent_ns);
    ++report_.answered;
    last_answer_ns_ = now;
    last_progress_ns_ = now;
    count_rcode(report_, *r);
    report_.addresses += r->address_count;
    if (o_.connect_after_answer)
      for (std::size_t i = 0; i < r->address_count; ++i) connector_.start(r->addresses[i]);
    if (closed_loop()) ++pending_;
  }

  awaitable<void> receive_loop() {
    std::vector<std::uint8_t> rx(65536);
    while (!done_) {
      auto [ec, n] = co_await sock_.async_receive(asio::buffer(rx), use_tuple);
      if (ec == asio::error::operation_aborted || done_) break;
      if (!ec) on_datagram(std::span<const std::uint8_t>(rx.data(), n));
      // Drain what else is queued before going back to the reactor.
      for (int i = 0; i < 512; ++i) {
        n = sock_.receive(asio::buffer(rx), 0, ec);
        if (ec == asio::error::would_block) break;
        if (ec) continue;  // ICMP errors on the connected socket: nothing to match
        on_datagram(std::span<const std::uint8_t>(rx.data(), n));
      }
      pump();
    }
  }

  awaitable<void> tick_loop() {
    // Open loop: fine ticks so bursts stay small; closed loop: only timeouts.
    const auto tick = o_.rate ? std::chrono::microseconds(200) : std::chrono::microseconds(5000);
    const std::uint64_t timeout_ns = static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(o_.timeout).count());
    while (true) {
      ticker_.expires_after(tick);
      co_await ticker_.async_wait(use_tuple);
      const std::uint64_t now = now_ns();
      if (o_.rate && !sending_over()) {
        const auto due = static_cast<std::uint64_t>(static_cast<double>(now - start_ns_) / 1e9 * *o_.rate);
        if (due > scheduled_) {
          pending_ += due - scheduled_;
          scheduled_ = due;
        }
      }
      // Expire the oldest queries first (in_flight_ is in send order).
      while (!in_flight_.empty()) {
        const auto [id, seq] = in_flight_.front();
        Slot& s = slots_[id];
        if (!s.busy || s.seq != seq) {
          in_flight_.pop_front();
          continue;
        }
        if (now - s.sent_ns < timeout_ns) break;
        s.busy = false;
        --busy_;
        free_id(id);
        ++report_.lost;
        last_progress_ns_ = now;
        in_flight_.pop_front();
        if (closed_loop()) ++pending_;
      }
      // A server that never answers (or a socket that cannot send) must not
      // keep a --count run alive forever: stop sending after a long stall.
      if (now - last_progress_ns_ > std::max<std::uint64_t>(5'000'000'000ull, 5 * timeout_ns) &&
          (stop_send_ns_ == 0 || stop_send_ns_ > now))
        stop_send_ns_ = now;
      pump();
      if (sending_over() && busy_ == 0 && connector_.in_flight() == 0) break;
    }
    done_ = true;
    boost::system::error_code ignored;
    sock_.cancel(ignored);
    report_.connect.skipped += connector_.skipped();
  }

  asio::io_context& ctx_;
  const QueryOptions& o_;
  const NameSource& names_;
  Report& report_;
  asio::ip::udp::socket sock_;
  asio::steady_timer ticker_;
  Connector connector_;
  std::vector<Slot> slots_;
  std::vector<std::uint16_t> free_ids_;  // ring
  std::size_t free_head_ = 0;
  std::size_t free_count_ = 0;
  std::deque<std::pair<std::uint16_t, std::uint64_t>> in_flight_;
  std::uint64_t busy_ = 0;
  std::uint64_t pending_ = 0;
  std::uint64_t scheduled_ = 0;
  std::uint64_t budget_ = 0;
  std::uint64_t send_errors_ = 0;
  std::uint64_t start_ns_ = 0;
  std::uint64_t stop_send_ns_ = 0;
  std::uint64_t last_answer_ns_ = 0;
  std::uint64_t last_progress_ns_ = 0;
  bool done_ = false;
};

// TCP load: `outstanding` connections, one query in flight on each
// (RFC 7766 pipelining is possible but not what stub clients do).
class TcpLoad {
 public:
  TcpLoad(asio::io_context& ctx, const QueryOptions& o, const NameSource& names, Report& report)
      : ctx_(ctx), o_(o), names_(names), report_(report) {
    budget_ = o.count ? *o.count : UINT64_MAX;
  }

  void start() {
    start_ns_ = now_ns();
    last_answer_ns_ = start_ns_;
    if (o_.duration) stop_send_ns_ = start_ns_ + static_cast<std::uint64_t>(*o_.duration * 1e9);
    const std::uint32_t workers = o_.outstanding ? o_.outstanding : 16;
    for (std::uint32_t i = 0; i < workers; ++i)
      asio::co_spawn(ctx_, worker(static_cast<std::uint16_t>(i)), [this](std::exception_ptr e) {
        if (e && !error_) error_ = e;
      });
  }

  void finish() {
    if (error_) std::rethrow_exception(error_);
    const std::uint64_t end = report_.answered ? last_answer_ns_ : now_ns();
    report_.seconds = static_cast<double>(end - start_ns_) / 1e9;
  }

 private:
  bool sending_over() const { return report_.sent >= budget_ || (stop_send_ns_ && now_ns() >= stop_send_ns_); }

  awaitable<void> worker(std::uint16_t worker_id) {
    const asio::ip::tcp::endpoint server(server_address(o_), o_.server.port);
    std::vector<std::uint8_t> buf(2 + 65535);
    asio::steady_timer timer(ctx_);
    std::uint16_t id = worker_id;
    while (!sending_over()) {
      asio::ip::tcp::socket sock(ctx_);
      timer.expires_after(o_.timeout);
      auto connected = co_await (sock.async_connect(server, use_tuple) || timer.async_wait(use_tuple));
      if (connected.index() != 0 || std::get<0>(std::get<0>(connected))) {
        ++connect_failures_;
        // Back off a little so a dead server does not spin the loop; still
        // bounded by --duration/--count.
        timer.expires_after(std::chrono::milliseconds(10));
        co_await timer.async_wait(use_tuple);
        if (connect_failures_ > 1000 && report_.answered == 0)
          throw std::runtime_error("cannot connect TCP to " + o_.server.host + ":" + std::to_string(o_.server.port));
        continue;
      }
      sock.set_option(asio::ip::tcp::no_delay(true));
      while (!sending_over()) {
        id = static_cast<std::uint16_t>(id + 4099);
        const std::size_t name_len = names_.wire_name(report_.sent, std::span(buf).subspan(2 + kHeaderSize));
        const std::uint8_t header[12] = {static_cast<std::uint8_t>(id >> 8), static_cast<std::uint8_t>(id & 0xff),
                                         0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0};
        std::memcpy(buf.data() + 2, header, sizeof header);
        std::size_t len = kHeaderSize + name_len;
        buf[2 + len++] = static_cast<std::uint8_t>(o_.qtype >> 8);
        buf[2 + len++] = static_cast<std::uint8_t>(o_.qtype & 0xff);
        buf[2 + len++] = 0;
        buf[2 + len++] = 1;
        buf[0] = static_cast<std::uint8_t>(len >> 8);
        buf[1] = static_cast<std::uint8_t>(len & 0xff);
        const std::uint64_t key =
            question_key(std::span<const std::uint8_t>(buf.data() + 2 + kHeaderSize, name_len), o_.qtype);
        ++report_.sent;
        const std::uint64_t sent_ns = now_ns();
        timer.expires_after(o_.timeout);
        auto exchanged = co_await (exchange(sock, buf, len) || timer.async_wait(use_tuple));
        if (exchanged.index() != 0 || std::get<0>(exchanged) == 0) {
          ++report_.lost;
          break;  // reconnect
        }
        const std::size_t rlen = std::get<0>(exchanged);
        const std::uint64_t now = now_ns();
        const auto r = parse_response(std::span<const std::uint8_t>(buf.data(), rlen));
        if (!r || r->id != id || question_key(r->question.name, r->question.qtype) != key) {
          ++report_.malformed;
          ++report_.lost;
          break;
        }
        report_.latency.record(now - sent_ns);
        ++report_.answered;
        last_answer_ns_ = now;
        count_rcode(report_, *r);
        report_.addresses += r->address_count;
      }
    }
  }

  // Writes the framed query, reads the framed answer into buf[0..n). Returns n
  // (0 on any error).
  awaitable<std::size_t> exchange(asio::ip::tcp::socket& sock, std::vector<std::uint8_t>& buf, std::size_t len) {
    auto [wec, wn] = co_await asio::async_write(sock, asio::buffer(buf.data(), 2 + len), use_tuple);
    if (wec) co_return 0;
    std::uint8_t prefix[2];
    auto [pec, pn] = co_await asio::async_read(sock, asio::buffer(prefix), use_tuple);
    if (pec) co_return 0;
    const std::size_t rlen = (std::size_t{prefix[0]} << 8) | prefix[1];
    auto [rec, rn] = co_await asio::async_read(sock, asio::buffer(buf.data(), rlen), use_tuple);
    if (rec) co_return 0;
    co_return rlen;
  }

  asio::io_context& ctx_;
  const QueryOptions& o_;
  const NameSource& names_;
  Report& report_;
  std::uint64_t budget_ = 0;
  std::uint64_t start_ns_ = 0;
  std::uint64_t stop_send_ns_ = 0;
  std::uint64_t last_answer_ns_ = 0;
  std::uint64_t connect_failures_ = 0;
  std::exception_ptr error_;
};

}  // namespace

Report run_query(const QueryOptions& o, const NameSource& names) {
  Report report;
  report.label = o.label;
  report.server = (o.server.host.find(':') != std::string::npos ? "[" + o.server.host + "]" : o.server.host) + ":" +
                  std::to_string(o.server.port);
  report.transport = o.tcp ? "tcp" : "udp";
  report.connect_enabled = o.connect_after_answer;
  if (o.connect_after_answer) raise_fd_limit();

  asio::io_context ctx(1);
  if (o.tcp) {
    TcpLoad load(ctx, o, names, report);
    load.start();
    ctx.run();
    load.finish();
  } else {
    UdpLoad load(ctx, o, names, report);
    std::exception_ptr error;
    asio::co_spawn(ctx, load.run(), [&error](std::exception_ptr e) { error = e; });
    ctx.run();
    if (error) std::rethrow_exception(error);
  }
  return report;
}

}  // namespace cagent::bench
