#include "dnsguard/server.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <unordered_map>
#include <optional>
#include <utility>
#include <system_error>
#include <cstring>

#include "dnsguard/asio_glue.hpp"
#include "dnsguard/ldns_message.hpp"
#include "dnsguard/posix.hpp"

namespace cagent::dnsguard {

namespace asio = boost::asio;
using asio::ip::tcp;
using asio::ip::udp;
using namespace asio::experimental::awaitable_operators;

namespace {

// The UDP listeners' receive buffer. The default (net.core.rmem_default,
// 208 KiB) holds only about 270 small datagrams (each costs ~768 bytes of
// buffer on loopback): an agent with a few hundred lookups in flight
// overflows it, and the kernel then drops queries of every client alike — an
// allowed lookup of another process included, which its resolver retries
// only after a second or more. 1 MiB holds ~1 300 queries: a closed-loop
// flood of that many in flight loses nothing, and an open-loop one that
// outruns dnsguard waits at most ~1 300 queries' work in the queue (tens of
// ms on the hit and deny paths) before the kernel drops. Kernel memory, not
// dnsguard's; SO_RCVBUFFORCE (CAP_NET_ADMIN, which dnsguard has) passes the
// net.core.rmem_max cap, SO_RCVBUF is the fallback.
constexpr int kUdpReceiveBuffer = 1 << 20;

void grow_receive_buffer(int fd) noexcept {
  const int size = kUdpReceiveBuffer;
  if (::setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size) != 0)
    (void)::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
}

// The client socket a UDP query came from, as SourceFlights keys it.
SourceKey source_of(const udp::endpoint& client) noexcept {
  SourceKey k;
  const asio::ip::address a = client.address();
  k.address = a.is_v4() ? asio::ip::make_address_v6(asio::ip::v4_mapped, a.to_v4()).to_bytes() : a.to_v6().to_bytes();
  k.port = client.port();
  return k;
}

}  // namespace

Server::Server(asio::io_context& io, const Config& config, AnswerSink& sink, Logger& log, ServerTuning tuning)
    : io_(io),
      config_(config),
      log_(log),
      decisions_path_(config.log_file.empty() ? std::filesystem::path()
                                              : decisions_path(session_log_dir(config.log_file))),
      decisions_timer_(io),
      engine_(config, sink, log, counters_),
      live_(config.allow),
      control_path_(config.log_file.empty() ? std::string()
                                            : control_socket_path(session_log_dir(config.log_file)).string()),
      upstreams_(io.get_executor(), config.upstreams, log, counters_),
      refresh_timer_(io),
      out_(kMaxMessage),
      udp_batch_(std::make_unique<UdpBatch>()),
      replies_(std::make_unique<Replies>()),
      tcp_backoff_(io.get_executor(), log, "DNS over TCP"),
      control_backoff_(io.get_executor(), log, "control socket"),
      tuning_(tuning),
      sink_(sink) {
  upstreams_.set_fast_receiver(this);
  if (!decisions_path_.empty()) engine_.set_decisions(&decisions_);
}

Server::~Server() {
  stop();
  *alive_ = false;
}

void Server::take_up_bindings(bool restarted) {
  const std::filesystem::path path = binding_journal_path(decisions_path_.parent_path());
  const auto now = AnswerCache::Clock::now();
  if (restarted) {
    std::unordered_map<std::string, std::chrono::milliseconds> held;
    for (const auto& [addr, left] : sink_.held_now()) held.emplace(to_string(addr), left);
    for (const JournalEntry& e : read_binding_journal(path)) {
      const auto it = held.find(to_string(e.addr));
      if (it == held.end()) continue;  // gone from the set: the firewall refuses it anyway
      // Until the earlier of the two: another name may keep the address in
      // the set long after this binding expired.
      const auto until = std::min(e.until, now + it->second);
      if (until > now) engine_.restore_binding(e.name, e.addr, until);
    }
    log_.always("restarted in this session: bound " + std::to_string(engine_.bindings()) +
                " names to addresses the sets still hold");
  }
  try {
    journal_ = std::make_unique<BindingJournal>(path, !restarted);
    if (restarted) journal_->rewrite(engine_.journal_entries(now));
    engine_.set_binding_journal(journal_.get());
  } catch (const std::exception& e) {
    journal_.reset();
    log_.always(std::string("gate binding journal unavailable (bindings will not survive a restart): ") + e.what());
  }
}

void Server::take_up_previous_record() {
  Decisions previous;
  try {
    std::ifstream in(decisions_path_);
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    previous = parse_decisions(text, decisions_path_.string());
  } catch (const std::exception& e) {
    log_.always(std::string("restarted, but the previous decision record is unreadable; starting a new one: ") +
                e.what());
    return;
  }
  decisions_.restore(previous, DecisionRecord::WallClock::now());
  // The run-time allowlist, as the kept changes leave it. Only the oldest
  // changes are ever dropped, and a deny takes back only run-time
  // additions, so a shortened list can lose an early addition (closed),
  // never bring back a name taken back later.
  std::size_t replayed = 0;
  for (const AllowChange& change : previous.changes) {
    ControlRequest request;
    request.op = change.op == ChangeOp::allow ? ControlOp::allow : ControlOp::deny;
    request.patterns = {change.name};
    LivePolicy::Outcome out = live_.execute(request);
    if (out.next) {
      engine_.replace_allow_list(std::move(*out.next));
      ++replayed;
    }
  }
  log_.always("restarted in this session: took up the decision record (" + std::to_string(previous.denied_total) +
              " lookups denied so far) and " + std::to_string(replayed) + " run-time allowlist changes");
}

void Server::plan_descriptor_budget() {
  // Use what the hard limit allows (a default soft limit of 1024 would make
  // the budget small for no reason), then share it out (fd_budget.hpp).
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) throw_errno("getrlimit(RLIMIT_NOFILE)");
  if (limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &limit) != 0) (void)::getrlimit(RLIMIT_NOFILE, &limit);
  }
  DescriptorNeeds needs;
  needs.listen_addresses = config_.listen.size();
  if (config_.gate_enabled) {
    const auto& listen = config_.listen;
    const bool v4 = std::any_of(listen.begin(), listen.end(), [](const IpEndpoint& e) { return !e.addr.v6; });
    const bool v6 = std::any_of(listen.begin(), listen.end(), [](const IpEndpoint& e) { return e.addr.v6; });
    needs.gate_listeners = (v4 ? 1u : 0u) + (v6 ? 1u : 0u);
  }
  needs.max_tcp_clients = kMaxTcpConnections;
  needs.max_upstream_queries = kMaxInflight;
  needs.max_gate_connections = kMaxGateConnections;
  const std::uint64_t soft = limit.rlim_cur == RLIM_INFINITY ? std::uint64_t{1} << 20 : limit.rlim_cur;
  budget_ = plan_descriptors(soft, needs);
  inflight_cap_ = budget_.upstream_queries;
  tcp_cap_ = budget_.tcp_clients;
  // Every socket an upstream query may hold at once: the waiting UDP
  // queries', the TCP clients' and the refresh loop's.
  upstreams_.set_max_flights(budget_.upstream_queries + budget_.tcp_clients + 1);
  log_.always(describe(budget_));
}

void Server::start() {
  plan_descriptor_budget();
  if (!decisions_path_.empty()) {
    // A record in the session's log directory: this dnsguard is a restart.
    std::error_code ec;
    const bool restarted = std::filesystem::exists(decisions_path_, ec);
    take_up_bindings(restarted);
    if (restarted) take_up_previous_record();
  }
  for (const auto& ep : config_.listen) {
    try {
      auto& sock = udp_sockets_.emplace_back(io_);
      udp::endpoint uep(to_asio(ep.addr), ep.port);
      sock.open(uep.protocol());
      if (ep.addr.v6) sock.set_option(asio::ip::v6_only(true));
      sock.bind(uep);
      sock.non_blocking(true);  // answers are sent synchronously; never block the loop
      grow_receive_buffer(sock.native_handle());
      listen_tcp(acceptors_.emplace_back(io_), ep);
    } catch (const boost::system::system_error& e) {
      throw std::runtime_error("listen " + to_string(ep) + ": " + e.code().message());
    }
  }
  if (config_.gate_enabled) {
    // The gate listens where the ruleset redirects to: the loopback address
    // of every family dnsguard serves, at gate.port.
    GateOptions options;
    for (const auto& ep : config_.listen) {
      IpEndpoint own;
      own.addr.v6 = ep.addr.v6;
      if (ep.addr.v6) own.addr.bytes[15] = 1;
      else own.addr.bytes = {127, 0, 0, 1};
      own.port = static_cast<std::uint16_t>(config_.gate_port);
      if (std::find(options.listen.begin(), options.listen.end(), own) == options.listen.end()) options.listen.push_back(own);
    }
    options.tls_ports.assign(config_.gate_tls_ports.begin(), config_.gate_tls_ports.end());
    options.http_ports.assign(config_.gate_http_ports.begin(), config_.gate_http_ports.end());
    if (!config_.relay_hosts.empty()) {
      IpEndpoint relay;
      relay.addr.bytes = {127, 0, 0, 1};
      relay.port = static_cast<std::uint16_t>(config_.relay_port);
      options.relay = relay;
      options.relay_hosts = config_.relay_hosts;
    }
    options.max_connections = budget_.gate_connections;
    options.relay_idle_timeout = tuning_.relay_idle_timeout;
    gate_ = std::make_unique<Gate>(io_, std::move(options), engine_, log_);
    if (!decisions_path_.empty()) gate_->set_decisions(&decisions_);
    gate_->start();
  }
  upstreams_.start();
  for (auto& sock : udp_sockets_) asio::co_spawn(io_, udp_loop(sock), asio::detached);
  for (auto& acc : acceptors_) asio::co_spawn(io_, tcp_accept_loop(acc), asio::detached);
  // Always with an interval: names allowed at run time are refreshed too.
  if (config_.refresh_interval > 0) asio::co_spawn(io_, refresh_loop(), asio::detached);
  if (!control_path_.empty()) {
    // Without it the session still runs with its policy file's allowlist;
    // only `cagent allow` cannot reach it.
    try {
      start_control();
    } catch (const std::exception& e) {
      control_.reset();
      log_.always(std::string("control socket unavailable: ") + e.what());
    }
  }
  if (!decisions_path_.empty()) {
    record_writer_ = std::make_unique<RecordWriter>(decisions_path_);
    write_decisions(true);  // "nothing refused yet" is an answer the host can read
    asio::co_spawn(io_, decisions_loop(), asio::detached);
  }
  std::string where;
  for (const auto& ep : config_.listen) where += " " + to_string(ep);
  log_.always("dnsguard ready: listening on" + where);
  if (config_.learn)
    log_.always("LEARN MODE: names the allowlist does not allow are resolved too, and recorded as learned");
}

std::string Server::counters_line() const {
  std::string line = format_counters(counters_);
  if (gate_) {
    const GateCounters& g = gate_->counters();
    line += " gate_accepted=" + std::to_string(g.accepted) + " gate_admitted=" + std::to_string(g.admitted) +
            " gate_refused=" + std::to_string(g.refused) + " gate_failed=" + std::to_string(g.failed) +
            " gate_retried=" + std::to_string(g.retried) + " gate_at_cap=" + std::to_string(g.at_cap) +
            " gate_idle_ended=" + std::to_string(g.idle_ended) +
            " gate_accept_paused=" + std::to_string(gate_->accept_failures()) +
            " gate_connections=" + std::to_string(gate_->connections()) +
            " bindings=" + std::to_string(engine_.bindings());
  }
  line += " tcp_connections=" + std::to_string(tcp_connections_) + " tcp_reclaimed=" + std::to_string(tcp_reclaimed_) +
          " tcp_accept_paused=" + std::to_string(tcp_backoff_.failures()) +
          " upstream_flights=" + std::to_string(upstreams_.flights()) +
          " source_waited=" + std::to_string(flights_.waited());
  return line;
}

void Server::take_up_write_losses() {
  // A full disk costs a line or a binding, never an answer: the losses
  // are counted where they happen and said here, once, and in the record.
  decisions_.lost(DecisionRecord::Lost::log, log_.lost());
  if (journal_) {
    decisions_.lost(DecisionRecord::Lost::journal, journal_->lost());
    if (journal_->lost().count > 0 && !journal_loss_said_) {
      journal_loss_said_ = true;
      log_.alarm(std::string("gate binding journal: ") + std::strerror(journal_->lost().first_error) +
                 "; bindings made from now on may not survive a restart (the decision record counts them)");
    }
  }
  // The record's own writes fail on the writer thread, which only counts
  // them (record_writer.hpp); they reach the record here, which makes it
  // dirty, so this same tick submits it again, marked incomplete.
  RecordWriter::Report report = record_writer_->take_report();
  if (report.failed > 0) {
    decisions_.write_failed(report.first_error, report.first_at, report.failed);
    if (!record_failing_) {
      // Once, not every second: the next tick tries again by itself.
      log_.alarm("decision record: " + report.first_message +
                 "; answering goes on, and the record, marked incomplete, is written again once it can be");
    }
    record_failing_ = true;
    marked_ticket_ = 0;  // this failure is in no snapshot yet
  } else if (record_failing_ && marked_ticket_ != 0 && report.written_ticket >= marked_ticket_) {
    log_.always("decision record: written again, marked incomplete (" +
                std::to_string(decisions_.incomplete() ? decisions_.incomplete()->record_writes_failed : 0) +
                " rewrites failed)");
    record_failing_ = false;
  }
}

void Server::write_decisions(bool force) noexcept {
  if (!record_writer_) return;
  try {
    take_up_write_losses();
    // Only the snapshot is taken here; the JSON and the file are the
    // writer thread's (record_writer.hpp: 18-33 ms for a full record).
    const auto now = RecordWriter::Clock::now();
    if (!RecordWriter::due(decisions_.dirty(), force, last_submit_, now)) return;
    const std::uint64_t ticket = record_writer_->submit(decisions_.snapshot(DecisionRecord::WallClock::now()));
    decisions_.mark_written();
    last_submit_ = now;
    // The first snapshot since the last failure was counted carries the
    // mark: once it is in the file, the record is written again.
    if (record_failing_ && marked_ticket_ == 0) marked_ticket_ = ticket;
  } catch (const std::exception& e) {
    log_.event(LogLevel::error, std::string("decision record: ") + e.what());
  }
}

void Server::read_firewall() noexcept {
  if (firewall_ == nullptr) return;
  std::uint64_t total = 0;
  firewall_flows_.clear();
  if (!firewall_->read(total, firewall_flows_)) {
    if (!firewall_failed_) log_.always("decision record: cannot read the firewall's refusal counters");
    firewall_failed_ = true;
    return;
  }
  firewall_failed_ = false;
  try {
    decisions_.firewall_counts(total, firewall_flows_, DecisionRecord::WallClock::now());
  } catch (const std::exception& e) {
    log_.event(LogLevel::error, std::string("decision record: ") + e.what());
  }
}

asio::awaitable<void> Server::decisions_loop() {
  try {
    while (!stopped_) {
      decisions_timer_.expires_after(std::chrono::seconds(1));
      auto [ec] = co_await decisions_timer_.async_wait(use_tuple);
      if (ec || stopped_) co_return;
      read_firewall();
      write_decisions(false);
    }
  } catch (const std::exception& e) {
    log_.always(std::string("decision record loop stopped: ") + e.what());
  }
}

void Server::start_control() {
  namespace fs = std::filesystem;
  const fs::path sock(control_path_);
  const fs::path dir = sock.parent_path();
  // The directory is the access control: 0700 and ours, so no other uid
  // without CAP_DAC_OVERRIDE (the agent) can reach the socket's name. One
  // left by an earlier run is reused only if it is a real directory we own.
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) throw_errno("mkdir ", dir.native());
  struct stat st {};
  if (::lstat(dir.c_str(), &st) != 0) throw_errno("lstat ", dir.native());
  if (!S_ISDIR(st.st_mode) || st.st_uid != ::geteuid())
    throw std::runtime_error(dir.string() + " is not a directory of dnsguard's own");
  if (::chmod(dir.c_str(), 0700) != 0) throw_errno("chmod ", dir.native());
  ::unlink(sock.c_str());
  control_ = std::make_unique<asio::local::stream_protocol::acceptor>(io_);
  control_->open();
  control_->bind(asio::local::stream_protocol::endpoint(sock.string()));
  ::chmod(sock.c_str(), 0600);
  control_->listen(8);
  asio::co_spawn(io_, control_loop(), asio::detached);
}

asio::awaitable<void> Server::control_loop() {
  try {
    while (!stopped_) {
      auto [ec, sock] = co_await control_->async_accept(use_tuple);
      if (stopped_) co_return;
      if (ec) {
        if (AcceptBackoff::out_of_resources(ec)) co_await control_backoff_.pause(ec);
        continue;
      }
      control_backoff_.accepted();
      // Root only, and each session ends within 5 s; still bounded, so the
      // descriptors the budget set aside for them are enough.
      if (control_sessions_ >= kControlSessions) {
        log_.event(LogLevel::warning, "control: " + std::to_string(control_sessions_) +
                                          " sessions open already; closed a new one");
        continue;  // `sock` closes here
      }
      ++control_sessions_;  // given back when the session ends
      asio::co_spawn(io_, control_session(std::move(sock)), asio::detached);
    }
  } catch (const std::exception& e) {
    log_.always(std::string("control loop stopped: ") + e.what());
  }
}

asio::awaitable<void> Server::control_session(asio::local::stream_protocol::socket sock) {
  struct Count {
    std::size_t& n;
    std::shared_ptr<const bool> alive;
    ~Count() {
      if (*alive) --n;
    }
  } count{control_sessions_, alive_};
  try {
    // Defence in depth behind the directory's mode: only root (the host's
    // `docker exec -u 0`) may change the policy.
    ucred cred{};
    socklen_t len = sizeof cred;
    if (::getsockopt(sock.native_handle(), SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 || cred.uid != 0) {
      log_.always("control: refused a connection from uid " + std::to_string(cred.uid));
      co_return;
    }
    // Not root of another network namespace (the nested engine's sandbox).
    if (peer_network_namespace(sock.native_handle()) == PeerNamespace::other) {
      log_.always("control: refused a connection from another network namespace (pid " + std::to_string(cred.pid) + ")");
      co_return;
    }
    std::string line;
    asio::steady_timer deadline(io_);
    deadline.expires_after(std::chrono::seconds(5));
    deadline.async_wait([&sock](const boost::system::error_code& ec) {
      if (!ec) {
        boost::system::error_code ignored;
        sock.close(ignored);
      }
    });
    auto [ec, n] = co_await asio::async_read_until(sock, asio::dynamic_buffer(line, 65536), '\n', use_tuple);
    deadline.cancel();
    if (ec) co_return;
    ControlReply reply;
    try {
      const ControlRequest request = parse_control_request(std::string_view(line).substr(0, n));
      if (request.op == ControlOp::watch) {
        co_await watch_session(sock);
        co_return;
      }
      reply = carry_out(request);
    } catch (const FormatError& e) {
      reply.error = e.what();  // nothing changed; the client learns why
    }
    const std::string text = write_control_reply(reply);
    co_await asio::async_write(sock, asio::buffer(text), use_tuple);
  } catch (const std::exception& e) {
    log_.always(std::string("control session: ") + e.what());
  }
}

ControlReply Server::carry_out(const ControlRequest& request) {
  if (request.op == ControlOp::refuse) {
    // The approver's "keep denied": the held lookups of these names are
    // answered denied now. Nothing about the policy changes.
    ControlReply reply;
    reply.op = ControlOp::refuse;
    reply.ok = true;
    std::vector<std::string> wanted;
    for (std::string name : request.patterns) {
      std::transform(name.begin(), name.end(), name.begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      if (!name.empty() && name.back() == '.') name.pop_back();
      wanted.push_back(std::move(name));
    }
    reply.names = held_.decide(
        [&](std::string_view name) { return std::find(wanted.begin(), wanted.end(), name) != wanted.end(); },
        HeldLookups::Outcome::refused);
    for (const std::string& name : reply.names) {
      tell_watchers({WatchWhat::refused, name, 0, 0});
      log_.always("control: kept " + name + " denied");
    }
    return reply;
  }
  LivePolicy::Outcome out = live_.execute(request);
  ControlReply& reply = out.reply;
  if (out.next) engine_.replace_allow_list(std::move(*out.next));
  const bool denied = reply.ok && request.op == ControlOp::deny;
  if (denied) {
    // Addresses held only for the names taken back leave the sets now;
    // the reply says how many (the host prints it).
    const std::optional<std::size_t> evicted = engine_.release_denied(AnswerCache::Clock::now());
    if (gate_) gate_->end_relays([this](std::string_view name) { return engine_.permits(name); });
    if (evicted) reply.evicted = *evicted;
  }
  const auto now = DecisionRecord::WallClock::now();
  for (const auto& a : reply.added) {
    decisions_.allow_changed(ChangeOp::allow, a, now);
    log_.always("control: allowed " + a + " for this session");
  }
  if (denied) {
    for (const auto& d : reply.names) {
      decisions_.allow_changed(ChangeOp::deny, d, now);
      log_.always("control: took back " + d);
    }
  }
  if (reply.ok && request.op == ControlOp::allow) release_allowed();
  if ((!reply.added.empty() || denied) && record_writer_) {
    // The host may read the record as soon as it has the reply.
    write_decisions(true);
    record_writer_->flush();
  }
  return std::move(reply);
}

// ---- ask mode -------------------------------------------------------------------

void Server::update_holding() noexcept { engine_.set_holding(config_.ask_enabled && !watchers_.empty() && !stopped_); }

void Server::tell_watchers(const WatchEvent& event) {
  if (watchers_.empty()) return;
  const std::string line = write_watch_event(event);
  for (Watcher* w : watchers_) {
    if (w->queue.size() >= kWatchQueue) {
      ++counters_.watch_dropped;
      continue;
    }
    w->queue.push_back(line);
    w->wake.cancel();
  }
}

void Server::tell_denied(std::string_view name, std::uint16_t type) {
  if (watchers_.empty()) return;
  const auto now = std::chrono::steady_clock::now();
  constexpr auto kWindow = std::chrono::seconds(2);
  constexpr std::size_t kRemembered = 256;
  while (!told_.empty() && (now - told_.front().second > kWindow || told_.size() >= kRemembered)) told_.pop_front();
  for (const auto& [told, when] : told_)
    if (told == name) return;
  told_.emplace_back(std::string(name), now);
  tell_watchers({WatchWhat::denied, std::string(name), type, 0});
}

void Server::release_allowed() {
  const std::vector<std::string> names =
      held_.decide([this](std::string_view name) { return engine_.permits(name); }, HeldLookups::Outcome::allowed);
  for (const std::string& name : names) tell_watchers({WatchWhat::allowed, name, 0, 0});
}

asio::awaitable<HeldLookups::Outcome> Server::hold(std::string name, std::uint16_t type) {
  asio::steady_timer timer(io_);
  timer.expires_after(std::chrono::seconds(config_.ask_timeout));
  // The entry wakes this wait when an approver decides; `timer` lives in
  // this frame until remove() below unlists the entry.
  const auto added = held_.add(name, [&timer] { timer.cancel(); });
  if (!added) {
    ++counters_.held_overflow;
    tell_denied(name, type);
    co_return HeldLookups::Outcome::refused;
  }
  if (added->first_of_name)
    tell_watchers({WatchWhat::held, name, type, std::uint64_t{config_.ask_timeout} * 1000});
  co_await timer.async_wait(use_tuple);
  const HeldLookups::Removed removed = held_.remove(added->handle);
  if (removed.outcome == HeldLookups::Outcome::timed_out && removed.last_of_name && !stopped_) {
    tell_watchers({WatchWhat::timed_out, name, 0, 0});
    log_.event(LogLevel::info, "ask: nobody decided " + name + " within " + std::to_string(config_.ask_timeout) + " s");
  }
  co_return removed.outcome;
}

QueryEngine::Local Server::settle_held(std::span<const std::uint8_t> query, Query& q, const IpEndpoint& client,
                                       bool tcp, HeldLookups::Outcome outcome, std::span<std::uint8_t> out) {
  if (outcome == HeldLookups::Outcome::allowed) {
    // Now allowed: the ordinary path — the cache, or the upstream, and the
    // set insert before the answer.
    const QueryEngine::Local again = engine_.handle_local(query, q, client, tcp, out, QueryEngine::Clock::now());
    if (again.action != QueryEngine::Action::hold) return again;
    outcome = HeldLookups::Outcome::refused;  // taken back again before it ran
  }
  const auto why = outcome == HeldLookups::Outcome::timed_out ? QueryEngine::HeldEnd::timed_out
                                                              : QueryEngine::HeldEnd::kept_denied;
  return {QueryEngine::Action::answer, engine_.deny_held(query, q, client, tcp, why, out), false};
}

asio::awaitable<void> Server::udp_held(udp::socket& socket, udp::endpoint client, std::vector<std::uint8_t> query,
                                       Query q) {
  try {
    const HeldLookups::Outcome outcome = co_await hold(std::string(q.name()), q.qtype);
    if (stopped_) co_return;
    std::array<std::uint8_t, 4096> out;  // the largest UDP answer (udp_batch_'s slots)
    const QueryEngine::Local local =
        settle_held(query, q, from_asio(client.address(), client.port()), false, outcome, out);
    if (local.action == QueryEngine::Action::answer && local.size != 0) {
      boost::system::error_code ec;  // lost like any UDP answer: the client asks again
      socket.send_to(asio::buffer(out.data(), local.size), client, 0, ec);
    } else if (local.action == QueryEngine::Action::needs_upstream) {
      send_upstream(socket, client, query, q);
    }
  } catch (const std::exception& e) {
    log_.event(LogLevel::error, std::string("held query failed: ") + e.what());
  }
}

asio::awaitable<void> Server::watch_session(asio::local::stream_protocol::socket& sock) {
  ControlReply reply;
  reply.op = ControlOp::watch;
  if (watchers_.size() >= kMaxWatchers) {
    reply.error = std::to_string(kMaxWatchers) + " watchers are attached already";
    const std::string text = write_control_reply(reply);
    co_await asio::async_write(sock, asio::buffer(text), use_tuple);
    co_return;
  }
  Watcher w(io_);
  reply.ok = true;
  reply.names = held_.pending_names();
  w.queue.push_back(write_control_reply(reply));
  // Lookups already held when this watcher came: its to decide too.
  for (const std::string& name : reply.names)
    w.queue.push_back(write_watch_event({WatchWhat::held, name, 0, std::uint64_t{config_.ask_timeout} * 1000}));
  watchers_.push_back(&w);
  update_holding();
  log_.always("control: a watcher attached (" + std::to_string(watchers_.size()) + " now)");
  struct Unlist {
    Server& s;
    Watcher& w;
    std::shared_ptr<const bool> alive;
    ~Unlist() {
      if (!*alive) return;  // the io_context outlived the server and destroys this frame now
      s.watchers_.remove(&w);
      s.update_holding();
      // Held only while someone can decide: with the last watcher gone,
      // what it left undecided is denied now rather than at its timeout.
      if (s.watchers_.empty()) s.held_.decide([](std::string_view) { return true; }, HeldLookups::Outcome::refused);
      s.log_.always("control: a watcher left (" + std::to_string(s.watchers_.size()) + " now)");
    }
  } unlist{*this, w, alive_};
  // A watcher sends nothing after its request: any byte or the end of the
  // stream ends the session (dnsguard --control closes it at its stdin's end).
  auto reader = [&]() -> asio::awaitable<void> {
    std::array<char, 256> buf;
    for (;;) {
      auto [ec, n] = co_await sock.async_read_some(asio::buffer(buf), use_tuple);
      if (ec) co_return;
    }
  };
  auto writer = [&]() -> asio::awaitable<void> {
    while (!stopped_) {
      while (!w.queue.empty()) {
        auto [ec, n] = co_await asio::async_write(sock, asio::buffer(w.queue.front()), use_tuple);
        if (ec) co_return;
        w.queue.pop_front();
      }
      w.wake.expires_at(asio::steady_timer::time_point::max());
      co_await w.wake.async_wait(use_tuple);
    }
  };
  co_await (reader() || writer());
}

void Server::stop() noexcept {
  if (stopped_) return;
  stopped_ = true;
  update_holding();
  held_.decide([](std::string_view) { return true; }, HeldLookups::Outcome::refused);
  for (Watcher* w : watchers_) w->wake.cancel();
  read_firewall();
  if (record_writer_) {
    // The last word, exact up to the very end: what still waits is
    // written and the writer ends; its outcome and the log's and journal's
    // losses go into the record; then the final snapshot is written here.
    std::string error;
    record_writer_->finish(nullptr, error);
    try {
      take_up_write_losses();
      const Decisions last = decisions_.snapshot(DecisionRecord::WallClock::now(), true);
      if (!record_writer_->finish(&last, error)) log_.always("decision record: " + error);
    } catch (const std::exception& e) {
      log_.always(std::string("decision record: ") + e.what());
    }
    record_writer_.reset();
  }
  decisions_timer_.cancel();
  tcp_backoff_.cancel();
  control_backoff_.cancel();
  boost::system::error_code ignored;
  if (control_) {
    control_->close(ignored);
    // Leave the log directory as the host expects to read it: no socket,
    // no directory only dnsguard's uid can enter.
    ::unlink(control_path_.c_str());
    ::rmdir(std::filesystem::path(control_path_).parent_path().c_str());
  }
  for (auto& s : udp_sockets_) s.close(ignored);
  for (auto& a : acceptors_) a.close(ignored);
  if (gate_) gate_->stop();
  refresh_timer_.cancel();
  upstreams_.stop();
}

asio::awaitable<void> Server::udp_loop(udp::socket& socket) {
  // Readiness, then drain: up to kUdpBatch datagrams per recvmmsg, answers
  // to all of them that need no upstream in one sendmmsg. Under load this
  // is two syscalls per batch instead of two or three per query (receive,
  // send, and the EAGAIN/epoll round trip). Everything from the receive to
  // the sendmmsg is synchronous, so the set-before-answer order of each
  // answer is the one QueryEngine::handle_local establishes.
  try {
    const int fd = socket.native_handle();
    Query q;
    while (!stopped_) {
      auto [ec] = co_await socket.async_wait(udp::socket::wait_read, use_tuple);
      if (stopped_ || ec == asio::error::operation_aborted) co_return;
      if (ec) continue;
      for (int round = 0; round < kUdpRounds && !stopped_; ++round) {
        const std::size_t n = receive_batch(fd);
        if (n == 0) break;  // EAGAIN: drained; other errors: the next readiness retries
        const auto now = QueryEngine::Clock::now();
        std::size_t answers = 0;
        for (std::size_t i = 0; i < n; ++i) handle_datagram(socket, i, q, now, answers);
        send_answers(fd, answers);
        if (n < kUdpBatch) break;
      }
    }
  } catch (const std::exception& e) {
    log_.always(std::string("UDP loop stopped: ") + e.what());
  }
}

std::size_t Server::receive_batch(int fd) noexcept {
  UdpBatch& b = *udp_batch_;
  for (std::size_t i = 0; i < kUdpBatch; ++i) {
    b.in_iov[i] = {b.in[i].data(), b.in[i].size()};
    b.in_msgs[i] = {};
    b.in_msgs[i].msg_hdr.msg_name = &b.peers[i];
    b.in_msgs[i].msg_hdr.msg_namelen = sizeof(b.peers[i]);
    b.in_msgs[i].msg_hdr.msg_iov = &b.in_iov[i];
    b.in_msgs[i].msg_hdr.msg_iovlen = 1;
  }
  const int got = ::recvmmsg(fd, b.in_msgs.data(), kUdpBatch, MSG_DONTWAIT, nullptr);
  return got <= 0 ? 0 : static_cast<std::size_t>(got);
}

void Server::handle_datagram(udp::socket& socket, std::size_t i, Query& q, QueryEngine::Clock::time_point now,
                             std::size_t& answers) {
  UdpBatch& b = *udp_batch_;
  const auto& hdr = b.in_msgs[i].msg_hdr;
  if ((hdr.msg_flags & MSG_TRUNC) != 0) {
    ++counters_.malformed;  // larger than any query we accept
    return;
  }
  udp::endpoint client;
  if (hdr.msg_namelen > client.capacity()) return;
  std::memcpy(client.data(), &b.peers[i], hdr.msg_namelen);
  client.resize(hdr.msg_namelen);
  auto query = std::span<const std::uint8_t>(b.in[i].data(), b.in_msgs[i].msg_len);
  auto& slot = b.out[answers];
  auto local = engine_.handle_local(query, q, from_asio(client.address(), client.port()), false, slot, now);
  if (local.action == QueryEngine::Action::answer) {
    // Queued for this round's sendmmsg, back to the datagram's own peer.
    b.out_iov[answers] = {slot.data(), local.size};
    b.out_msgs[answers] = {};
    b.out_msgs[answers].msg_hdr.msg_name = &b.peers[i];
    b.out_msgs[answers].msg_hdr.msg_namelen = hdr.msg_namelen;
    b.out_msgs[answers].msg_hdr.msg_iov = &b.out_iov[answers];
    b.out_msgs[answers].msg_hdr.msg_iovlen = 1;
    ++answers;
    if (local.denied) tell_denied(q.name(), q.qtype);
  } else if (local.action == QueryEngine::Action::needs_upstream) {
    send_upstream(socket, client, query, q);
  } else if (local.action == QueryEngine::Action::hold) {
    asio::co_spawn(io_, udp_held(socket, client, std::vector<std::uint8_t>(query.begin(), query.end()), q),
                   asio::detached);
  }
}

void Server::send_upstream(udp::socket& socket, const udp::endpoint& client, std::span<const std::uint8_t> query,
                           const Query& q) {
  if (inflight_ >= inflight_cap_) {
    ++counters_.overload;
    return;
  }
  // A wait slot (reused: its query vector keeps its capacity) carries the
  // query until the fast path answers or hands it to udp_resolve — or,
  // while its socket has its share in flight, until one of those ends.
  std::uint32_t token = 0;
  if (!free_waits_.empty()) {
    token = free_waits_.back();
    free_waits_.pop_back();
  } else {
    token = static_cast<std::uint32_t>(waits_.size());
    waits_.emplace_back();
  }
  UdpWait& w = waits_[token];
  w.socket = &socket;
  w.client = client;
  w.query.assign(query.begin(), query.end());
  w.q = q;
  switch (flights_.admit(source_of(client), token)) {
    case SourceFlights::Admission::refused:
      free_waits_.push_back(token);
      ++counters_.overload;
      return;
    case SourceFlights::Admission::queued:
      ++inflight_;
      return;
    case SourceFlights::Admission::start:
      ++inflight_;
      start_flight(token);
      return;
  }
}

void Server::start_flight(std::uint32_t token) noexcept {
  UdpWait& w = waits_[token];
  std::array<std::uint8_t, 512> upq;
  const std::size_t qn = engine_.upstream_query(w.query, w.q, upq);
  if (qn != 0 && upstreams_.send_fast(std::span(upq.data(), qn), token)) return;
  // The coroutine path owns copies; the slot is free again.
  free_waits_.push_back(token);
  try {
    asio::co_spawn(io_, udp_resolve(*w.socket, w.client, w.query, w.q, 0, std::string::npos), asio::detached);
  } catch (const std::exception& e) {
    log_.event(LogLevel::error, std::string("query failed: ") + e.what());
    --inflight_;
    flight_ended(source_of(w.client));
  }
}

void Server::flight_ended(SourceKey source) noexcept {
  // The ended lookup's slot passes to its socket's next waiting miss.
  const std::optional<std::uint32_t> next = flights_.finished(source);
  if (!next) return;
  if (stopped_) {
    free_waits_.push_back(*next);
    --inflight_;
    return;
  }
  start_flight(*next);
}

void Server::send_answers(int fd, std::size_t answers) noexcept {
  // The socket is non-blocking: a full send buffer drops answers (the
  // client retries) rather than stalling every other query.
  UdpBatch& b = *udp_batch_;
  for (std::size_t sent = 0; sent < answers;) {
    const int r = ::sendmmsg(fd, b.out_msgs.data() + sent, static_cast<unsigned>(answers - sent), MSG_DONTWAIT);
    if (r <= 0) break;
    sent += static_cast<std::size_t>(r);
  }
}

asio::awaitable<void> Server::udp_resolve(udp::socket& socket, udp::endpoint client,
                                          std::vector<std::uint8_t> query, Query q, int first_attempt,
                                          std::size_t tcp_first) {
  try {
    std::array<std::uint8_t, 512> upq;
    std::size_t n = engine_.upstream_query(query, q, upq);
    std::vector<std::uint8_t> answer;
    bool ok = false;
    if (n != 0) {
      auto msg = std::span<const std::uint8_t>(upq.data(), n);
      if (tcp_first != std::string::npos) ok = co_await upstreams_.exchange_tcp(tcp_first, msg, answer);
      if (!ok) ok = co_await upstreams_.exchange(msg, answer, first_attempt);
    }
    if (!ok) answer.clear();
    if (!stopped_) {
      // No co_await from here to the send: out_ is shared.
      std::size_t size = engine_.finish(query, q, false, answer, out_, QueryEngine::Clock::now());
      boost::system::error_code sec;
      if (size != 0) socket.send_to(asio::buffer(out_.data(), size), client, 0, sec);
    }
  } catch (const std::exception& e) {
    log_.event(LogLevel::error, std::string("query failed: ") + e.what());
  }
  --inflight_;
  flight_ended(source_of(client));
}

void Server::answered(std::uint32_t token, std::span<const std::uint8_t> answer) noexcept {
  UdpWait& w = waits_[token];
  if (!stopped_) {
    Replies& r = *replies_;
    if (r.count == kUdpBatch) flush_replies();
    std::size_t i = r.count;
    // finish() inserts (synchronously, kernel ACK) before it builds the
    // answer; the answer leaves at the end of this batch, never before.
    std::size_t size = engine_.finish(w.query, w.q, false, answer, r.buf[i], QueryEngine::Clock::now());
    if (size != 0) {
      r.socket[i] = w.socket;
      r.client[i] = w.client;
      r.iov[i] = {r.buf[i].data(), size};
      r.count = i + 1;
    }
  }
  free_waits_.push_back(token);
  --inflight_;
  flight_ended(source_of(w.client));
}

void Server::failed(std::uint32_t token, std::size_t truncated_at) noexcept {
  UdpWait& w = waits_[token];
  if (!stopped_) {
    try {
      asio::co_spawn(io_, udp_resolve(*w.socket, w.client, w.query, w.q, 1, truncated_at), asio::detached);
      free_waits_.push_back(token);
      return;  // inflight_ is released by udp_resolve
    } catch (const std::exception& e) {
      log_.event(LogLevel::error, std::string("query retry failed: ") + e.what());
    }
  }
  free_waits_.push_back(token);
  --inflight_;
  flight_ended(source_of(w.client));
}

void Server::batch_done() noexcept { flush_replies(); }

void Server::flush_replies() noexcept {
  Replies& r = *replies_;
  std::size_t from = 0;
  while (from < r.count) {
    // sendmmsg sends on one socket: take the run of replies sharing it.
    std::size_t to = from + 1;
    while (to < r.count && r.socket[to] == r.socket[from]) ++to;
    for (std::size_t i = from; i < to; ++i) {
      r.msgs[i] = {};
      r.msgs[i].msg_hdr.msg_name = r.client[i].data();
      r.msgs[i].msg_hdr.msg_namelen = static_cast<socklen_t>(r.client[i].size());
      r.msgs[i].msg_hdr.msg_iov = &r.iov[i];
      r.msgs[i].msg_hdr.msg_iovlen = 1;
    }
    const int fd = r.socket[from]->native_handle();
    for (std::size_t sent = from; sent < to;) {
      const int k = ::sendmmsg(fd, r.msgs.data() + sent, static_cast<unsigned>(to - sent), MSG_DONTWAIT);
      if (k <= 0) break;  // full buffer: those clients retry
      sent += static_cast<std::size_t>(k);
    }
    from = to;
  }
  r.count = 0;
}

asio::awaitable<void> Server::tcp_accept_loop(tcp::acceptor& acceptor) {
  try {
    while (!stopped_) {
      auto [ec, sock] = co_await acceptor.async_accept(use_tuple);
      if (stopped_ || ec == asio::error::operation_aborted) co_return;
      if (ec) {
        // Out of descriptors: the connection waits in the backlog; pause
        // rather than spin on it. Anything else consumed the connection.
        if (AcceptBackoff::out_of_resources(ec)) co_await tcp_backoff_.pause(ec);
        continue;
      }
      tcp_backoff_.accepted();
      if (tcp_connections_ >= tcp_cap_ && !reclaim_tcp_slot()) {
        ++counters_.overload;
        continue;  // `sock` closes here
      }
      // Counted here, not when the coroutine starts (later): the next
      // accept must see it.
      ++tcp_connections_;
      asio::co_spawn(io_, tcp_connection(std::move(sock)), asio::detached);
    }
  } catch (const std::exception& e) {
    log_.always(std::string("TCP accept loop stopped: ") + e.what());
  }
}

bool Server::reclaim_tcp_slot() noexcept {
  TcpSlot* oldest = nullptr;
  for (TcpSlot& slot : tcp_slots_) {
    if (slot.reclaimed || !slot.waiting) continue;
    if (oldest == nullptr || slot.since < oldest->since) oldest = &slot;
  }
  if (oldest == nullptr) return false;
  // Closed now (its descriptor is free for the new connection); its
  // coroutine wakes with operation_aborted and unlists the slot.
  boost::system::error_code ignored;
  oldest->socket->close(ignored);
  oldest->reclaimed = true;
  --tcp_connections_;
  ++tcp_reclaimed_;
  return true;
}

asio::awaitable<void> Server::tcp_connection(tcp::socket socket) {
  tcp_slots_.push_back(TcpSlot{&socket, true, false, std::chrono::steady_clock::now()});
  struct Unlist {
    Server& server;
    std::list<TcpSlot>::iterator it;
    ~Unlist() {
      if (!it->reclaimed) --server.tcp_connections_;
      server.tcp_slots_.erase(it);
    }
  } unlist{*this, std::prev(tcp_slots_.end())};
  TcpSlot& slot = *unlist.it;
  try {
    asio::steady_timer deadline(io_);
    std::vector<std::uint8_t> query, reply;
    Query q;
    boost::system::error_code ec;
    auto peer = socket.remote_endpoint(ec);
    IpEndpoint client = from_asio(peer.address(), peer.port());
    // Several queries per connection, answered in order. Every read and
    // write races a deadline: kTcpIdleTimeout for the first byte of the
    // next query, kTcpQueryTimeout for the rest of it and for the answer's
    // write, so a silent or trickling client holds a slot for at most that
    // long — and while it waits on its client, a new connection may take
    // its slot (reclaim_tcp_slot).
    auto read = [&](asio::mutable_buffer buf) -> asio::awaitable<bool> {
      auto r = co_await (asio::async_read(socket, buf, use_tuple) || deadline.async_wait(use_tuple));
      co_return r.index() == 0 && !std::get<0>(std::get<0>(r));
    };
    while (!stopped_) {
      std::array<std::uint8_t, 2> len;
      slot.waiting = true;
      slot.since = std::chrono::steady_clock::now();
      deadline.expires_after(kTcpIdleTimeout);
      if (!co_await read(asio::buffer(len.data(), 1))) break;
      deadline.expires_after(kTcpQueryTimeout);
      if (!co_await read(asio::buffer(len.data() + 1, 1))) break;
      std::size_t size = (std::size_t{len[0]} << 8) | len[1];
      query.resize(size);
      if (!co_await read(asio::buffer(query))) break;
      slot.waiting = false;
      auto local = engine_.handle_local(query, q, client, true, out_, QueryEngine::Clock::now());
      if (local.action == QueryEngine::Action::hold) {
        const HeldLookups::Outcome outcome = co_await hold(std::string(q.name()), q.qtype);
        if (stopped_ || slot.reclaimed) break;
        local = settle_held(query, q, client, true, outcome, out_);
      }
      if (local.denied) tell_denied(q.name(), q.qtype);
      std::size_t answer_size = 0;
      if (local.action == QueryEngine::Action::drop) break;  // malformed: close the stream
      if (local.action == QueryEngine::Action::answer) {
        answer_size = local.size;
      } else {
        std::array<std::uint8_t, 512> upq;
        std::size_t n = engine_.upstream_query(query, q, upq);
        std::vector<std::uint8_t> answer;
        bool ok = n != 0 && co_await upstreams_.exchange(std::span(upq.data(), n), answer);
        if (!ok) answer.clear();
        if (stopped_ || slot.reclaimed) break;
        answer_size = engine_.finish(query, q, true, answer, out_, QueryEngine::Clock::now());
      }
      if (answer_size == 0) continue;
      reply.resize(answer_size + 2);
      reply[0] = static_cast<std::uint8_t>(answer_size >> 8);
      reply[1] = static_cast<std::uint8_t>(answer_size);
      std::copy_n(out_.begin(), answer_size, reply.begin() + 2);
      deadline.expires_after(kTcpQueryTimeout);
      auto r3 = co_await (asio::async_write(socket, asio::buffer(reply), use_tuple) || deadline.async_wait(use_tuple));
      if (r3.index() != 0 || std::get<0>(std::get<0>(r3))) break;
    }
  } catch (const std::exception& e) {
    log_.event(LogLevel::error, std::string("TCP connection failed: ") + e.what());
  }
}

asio::awaitable<void> Server::refresh_loop() {
  // Re-resolve every exact allowlisted name so its set entries stay alive
  // while the name is in use and follow CDN address rotation. A failure is
  // logged and simply retried next round. The first round waits one
  // interval: at start nothing is in use yet, and a name that gets used is
  // inserted at lookup time anyway (a round at start would cost a burst of
  // two upstream queries per name on every cage start).
  try {
    while (!stopped_) {
      refresh_timer_.expires_after(std::chrono::seconds(config_.refresh_interval));
      co_await refresh_timer_.async_wait(use_tuple);
      if (stopped_) co_return;
      // A copy per round: the allowlist may be replaced (control.hpp) while
      // this loop waits for an upstream.
      const std::vector<std::string> names = engine_.allow_list().exact_names();
      for (const auto& name : names) {
        for (std::uint16_t type : {rrtype::A, rrtype::AAAA}) {
          if (stopped_) co_return;
          if (!engine_.allow_list().allows(name)) break;  // taken back meanwhile
          auto query = build_query_wire(name, type);
          auto qname = wire_name(name);
          if (!query || !qname) continue;
          std::vector<std::uint8_t> answer;
          bool ok = co_await upstreams_.exchange(*query, answer);
          if (stopped_) co_return;
          ++counters_.refreshes;
          if (!ok || !engine_.absorb(*qname, type, answer))
            log_.event(LogLevel::warning, "refresh " + name + " type " + std::to_string(type) +
                                              " failed; retrying next round");
        }
      }
    }
  } catch (const std::exception& e) {
    log_.always(std::string("refresh loop stopped: ") + e.what());
  }
}

void run_daemon(const Config& config, AnswerSink& sink, Logger& log, FirewallCounters* firewall,
                ServerTuning tuning) {
  asio::io_context io(1);
  Server server(io, config, sink, log, tuning);
  server.set_firewall_counters(firewall);
  server.start();
  asio::signal_set signals(io, SIGTERM, SIGINT, SIGUSR1);
  std::function<void(const boost::system::error_code&, int)> on_signal =
      [&](const boost::system::error_code& ec, int signo) {
        if (ec) return;
        if (signo == SIGUSR1) {
          log.always(server.counters_line());
          signals.async_wait(on_signal);
          return;
        }
        log.always(std::string("stopping on ") + (signo == SIGTERM ? "SIGTERM" : "SIGINT"));
        server.stop();
        io.stop();
      };
  signals.async_wait(on_signal);
  io.run();
  log.always(server.counters_line());
}

}  // namespace cagent::dnsguard
