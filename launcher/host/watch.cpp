#include "launcher/host/watch.hpp"

#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <filesystem>
#include <ostream>
#include <set>

#include "dnsguard/allow_list.hpp"
#include "dnsguard/posix.hpp"
#include "launcher/host/cli.hpp"
#include "launcher/host/file_identity.hpp"
#include "launcher/host/text.hpp"

namespace cagent::launcher::host {

std::vector<std::string> watch_argv(const RunningCage& cage) {
  std::vector<std::string> argv = control_argv(cage, "watch", {});
  argv.insert(argv.begin() + 2, "-i");  // docker exec -i …: the exec's stdin stays ours
  return argv;
}

std::optional<WatchKey> watch_key(char c) {
  switch (c) {
    case 'a': case 'A': return WatchKey::allow;
    case 'w': case 'W': return WatchKey::save_workspace;
    case 'g': case 'G': return WatchKey::save_global;
    case 'd': case 'D': return WatchKey::keep_denied;
    case 'q': case 'Q':
    case '\x04':  // Ctrl-D on a terminal in raw mode (no end of input there)
      return WatchKey::quit;
    default: return std::nullopt;
  }
}

KeyRead read_keys(std::string_view bytes) {
  KeyRead r;
  for (char c : bytes) {
    const auto key = watch_key(c);
    if (!key) continue;
    if (*key == WatchKey::quit) {
      r.quit = true;
    } else if (!r.key) {
      r.key = key;
    } else {
      r.discarded = true;
    }
  }
  return r;
}

StreamLine read_stream_line(const std::string& line, bool first) {
  if (line.empty() || line.front() != '{') return StreamError{line.empty() ? "dnsguard did not answer" : line};
  try {
    if (first) return dnsguard::parse_control_reply(line);
    return dnsguard::parse_watch_event(line);
  } catch (const dnsguard::FormatError& e) {
    return StreamError{e.what()};  // another version of dnsguard, or not its line at all
  }
}

namespace {

const char* what_word(dnsguard::WatchWhat what) {
  switch (what) {
    case dnsguard::WatchWhat::held: return "held";
    case dnsguard::WatchWhat::denied: return "denied";
    case dnsguard::WatchWhat::allowed: return "allowed";
    case dnsguard::WatchWhat::refused: return "refused";
    case dnsguard::WatchWhat::timed_out: return "timed_out";
  }
  return "?";
}

}  // namespace

namespace {

// A name the agent looked up that no allow pattern can express (the root,
// a label with a leading or trailing hyphen, a '*' of its own…): the same
// check as cagent allow's; such a name is shown, never decidable.
bool decidable(const std::string& name) {
  try {
    return !dnsguard::normalize_pattern(name).starts_with("*");  // a looked-up name is never a wildcard
  } catch (const dnsguard::PatternError&) {
    return false;
  }
}

}  // namespace

std::string DecisionQueue::on_event(const std::string& session, const dnsguard::WatchEvent& event) {
  RunningCage cage;
  cage.container = session;
  cage.session = session;
  return on_event(cage, event);
}

std::string DecisionQueue::on_event(const RunningCage& cage, const dnsguard::WatchEvent& event) {
  const std::string& session = cage.session;
  // The name comes from the agent's query: printable() before any terminal sees it.
  std::string line = printable(session) + " " + what_word(event.event) + " " + printable(event.name);
  if (event.type != 0) line += " " + dns_type_text(event.type);
  const auto same = [&](const PendingDecision& d) { return d.container == cage.container && d.name == event.name; };
  // Held ones first (oldest first), then the denied-at-once ones.
  const auto first_denied = [&] {
    return std::find_if(queue_.begin(), queue_.end(), [](const PendingDecision& d) { return !d.held; });
  };
  switch (event.event) {
    case dnsguard::WatchWhat::held:
    case dnsguard::WatchWhat::denied: {
      const bool held = event.event == dnsguard::WatchWhat::held;
      if (held) line += " (waits up to " + std::to_string((event.wait_ms + 999) / 1000) + " s)";
      if (!decidable(event.name)) {
        line += " (no pattern can express this name: it stays denied)";
        break;
      }
      const auto it = std::find_if(queue_.begin(), queue_.end(), same);
      if (it != queue_.end()) {
        if (held && !it->held) {  // a name denied before now waits: it moves up among the held ones
          PendingDecision d = std::move(*it);
          queue_.erase(it);
          d.held = true;
          queue_.insert(first_denied(), std::move(d));
        }
      } else {
        if (queue_.size() >= kMaxPending && held && !queue_.back().held) queue_.pop_back();  // the newest denied one
        if (queue_.size() < kMaxPending) {
          PendingDecision d{next_id_++, cage.container, cage.workspace.string(), session, event.name, event.type, held};
          if (held) {
            queue_.insert(first_denied(), std::move(d));
          } else {
            queue_.push_back(std::move(d));
          }
        } else {
          line += " (not queued: " + std::to_string(kMaxPending) + " decisions wait already)";
        }
      }
      break;
    }
    case dnsguard::WatchWhat::allowed:
    case dnsguard::WatchWhat::refused:
    case dnsguard::WatchWhat::timed_out:
      std::erase_if(queue_, same);
      break;
  }
  // dnsguard folds a flood of denied names (and what a lagging watcher
  // missed) into a count on the next event.
  if (event.dropped != 0)
    line += " (and " + std::to_string(event.dropped) + " earlier events dnsguard did not send: a flood, or this watch lagged)";
  return line;
}

std::optional<PendingDecision> DecisionQueue::take() {
  if (queue_.empty()) return std::nullopt;
  PendingDecision d = std::move(queue_.front());
  queue_.pop_front();
  return d;
}

void DecisionQueue::put_back(PendingDecision decision) { queue_.push_front(std::move(decision)); }

void DecisionQueue::drop_session(const std::string& container) {
  std::erase_if(queue_, [&](const PendingDecision& d) { return d.container == container; });
}

std::optional<std::string> DecisionQueue::show(Clock::time_point now) {
  if (queue_.empty()) {
    shown_id_ = 0;
    return std::nullopt;
  }
  if (queue_.front().id != shown_id_) {
    shown_id_ = queue_.front().id;
    shown_at_ = now;
  }
  return prompt_line(queue_.front(), queue_.size());
}

std::optional<PendingDecision> DecisionQueue::answer(Clock::time_point now) {
  if (queue_.empty() || shown_id_ == 0 || queue_.front().id != shown_id_ || now - shown_at_ < kMinShown)
    return std::nullopt;
  shown_id_ = 0;  // the next prompt is a new one, even for a decision put back
  return take();
}

bool EventThrottle::admit(const std::string& stream, const std::string& session, Clock::time_point now) {
  auto it = std::find_if(windows_.begin(), windows_.end(), [&](const auto& w) { return w.first == stream; });
  if (it == windows_.end()) {
    windows_.emplace_back(stream, Window{session, now, 0, 0});
    it = windows_.end() - 1;
  }
  Window& w = it->second;
  if (now - w.start >= std::chrono::seconds(1) && w.folded == 0) w = Window{session, now, 0, 0};
  if (now - w.start < std::chrono::seconds(1) && w.printed < kPerSecond) {
    ++w.printed;
    return true;
  }
  ++w.folded;  // said in the summary once this second is over (due)
  return false;
}

std::vector<std::string> EventThrottle::due(Clock::time_point now) {
  std::vector<std::string> lines;
  for (auto& [stream, w] : windows_) {
    if (w.folded == 0 || now - w.start < std::chrono::seconds(1)) continue;
    lines.push_back(printable(w.session) + " … and " + std::to_string(w.folded) + " more denied names");
    w = Window{w.session, now, 0, 0};
  }
  return lines;
}

std::string prompt_line(const PendingDecision& d, std::size_t waiting) {
  std::string line = "cagent watch: " + printable(d.session);
  if (!d.workspace.empty()) line += " (" + printable(d.workspace) + ")";  // whose cage this is
  line += " " + printable(d.name);
  if (d.type != 0) line += " " + dns_type_text(d.type);
  line += "? a allow for the session, w save to its workspace, g save globally, d keep denied";
  if (waiting > 1) line += " (" + std::to_string(waiting - 1) + " more waiting)";
  return line;
}

namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kRescan = std::chrono::seconds(2);
// How long a closed stream's docker exec gets to end before it is killed.
constexpr auto kCloseGrace = std::chrono::seconds(5);
// How long a stream that ended may wait for its cage to leave docker's list.
constexpr auto kGoneGrace = std::chrono::seconds(5);
constexpr std::size_t kMaxLine = 64 * 1024;  // a longer "line" is not dnsguard's

// The terminal's modes, put back however cagent watch ends.
class RawTerminal {
 public:
  explicit RawTerminal(int fd) {
    if (::tcgetattr(fd, &saved_) != 0) return;
    termios raw = saved_;
    // Keys one by one, not echoed; ISIG stays, so Ctrl-C is still SIGINT.
    raw.c_lflag &= ~static_cast<tcflag_t>(ICANON | ECHO);
    raw.c_cc[VMIN] = 1;
    raw.c_cc[VTIME] = 0;
    if (::tcsetattr(fd, TCSANOW, &raw) == 0) fd_ = fd;
  }
  RawTerminal(const RawTerminal&) = delete;
  RawTerminal& operator=(const RawTerminal&) = delete;
  ~RawTerminal() {
    if (fd_ >= 0) ::tcsetattr(fd_, TCSANOW, &saved_);
  }

 private:
  termios saved_{};
  int fd_ = -1;
};

// SIGINT, SIGTERM and SIGHUP as readable events of the loop; the mask as
// it was, put back at the end.
class StopSignals {
 public:
  StopSignals() {
    sigemptyset(&mask_);
    for (int s : {SIGINT, SIGTERM, SIGHUP}) sigaddset(&mask_, s);
    if (::sigprocmask(SIG_BLOCK, &mask_, &old_) != 0) throw_errno("sigprocmask");
    fd_.reset(::signalfd(-1, &mask_, SFD_CLOEXEC | SFD_NONBLOCK));
    if (!fd_.valid()) {
      ::sigprocmask(SIG_SETMASK, &old_, nullptr);
      throw_errno("signalfd");
    }
  }
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;
  ~StopSignals() {
    fd_.reset();
    ::sigprocmask(SIG_SETMASK, &old_, nullptr);
  }
  int fd() const { return fd_.get(); }
  // The signal that arrived (0: none).
  int take() const {
    signalfd_siginfo info{};
    return ::read(fd_.get(), &info, sizeof info) == static_cast<ssize_t>(sizeof info)
               ? static_cast<int>(info.ssi_signo)
               : 0;
  }

 private:
  sigset_t mask_{}, old_{};
  UniqueFd fd_;
};

// One cage's event stream: the docker exec, and what it printed so far.
struct Stream {
  RunningCage cage;
  PipedChild child;
  std::string buffer;
  bool replied = false;  // the first line (dnsguard's reply) came
  std::string failure;   // what ended it early (a refusal, an unreadable line)
  int status = 0;        // the exec's exit status, once reaped
  bool watching = false; // dnsguard took the watch (its reply was ok)
};

class Watcher {
 public:
  Watcher(const LiveCommand& command, const HostContext& host, ProcessRunner& runner, SessionIo io,
          const StreamStarter& start)
      : command_(command), host_(host), runner_(runner), io_(io), start_(start) {}

  ~Watcher() { close_all(); }
  Watcher(const Watcher&) = delete;
  Watcher& operator=(const Watcher&) = delete;

  // The cages at the start: every one, or the session named. Throws
  // UsageError when there is none to watch.
  void attach_first() {
    std::vector<RunningCage> cages = list_cages(runner_);
    if (cages.empty()) throw UsageError("no running cage to watch");
    if (command_.session) {
      cages = select_cages(cages, {}, command_.session);
      if (!command_.all) std::erase_if(cages, [&](const RunningCage& c) { return !ours(c); });
      if (cages.empty())
        throw UsageError("session " + printable(*command_.session) +
                         " was not started by your cagent (cagent watch --all to watch it anyway)");
    } else if (!command_.all) {
      std::erase_if(cages, [&](const RunningCage& c) { return !ours(c); });
      if (cages.empty()) throw UsageError("no running cage of yours to watch (cagent watch --all: every user's)");
    }
    for (RunningCage& c : cages) attach(std::move(c));
  }

  // A session this user's cagent started: its directory under our
  // cagent home exists (while it is supervised) and the container has the
  // name cagent gives it. Another docker-group user's cages are watched
  // only with --all.
  bool ours(const RunningCage& c) const {
    if (c.container != "cagent-" + c.session || c.session.empty()) return false;
    std::error_code ec;
    return std::filesystem::is_directory(host_.cagent_home / "sessions" / c.session, ec);
  }

  // Cages started since the last look (none when a session was named).
  void rescan() {
    if (command_.session) return;
    std::vector<RunningCage> cages;
    try {
      cages = list_cage_names(runner_);  // docker inspect only for the new ones
    } catch (const std::exception& e) {
      io_.err << "cagent watch: " << printable(e.what()) << "\n" << std::flush;
      return;
    }
    for (RunningCage& c : cages) {
      if (seen_.count(c.container) != 0) continue;
      if (!command_.all && !ours(c)) continue;
      inspect_cage(runner_, c);
      attach(std::move(c));
    }
  }

  int run(const WatchKeys& keys) {
    now_ = keys.now;
    const StopSignals signals;
    std::optional<RawTerminal> raw;
    if (keys.tty) raw.emplace(keys.fd);
    int key_fd = keys.fd;
    auto next_scan = Clock::now() + kRescan;
    while (true) {
      if (command_.session && streams_.empty()) {
        io_.err << "cagent watch: nothing left to watch\n" << std::flush;
        return 0;
      }
      std::vector<pollfd> fds{{signals.fd(), POLLIN, 0}, {key_fd, POLLIN, 0}};
      for (const Stream& s : streams_) fds.push_back({s.child.out.get(), POLLIN, 0});
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(next_scan - Clock::now()).count();
      // At most a second: folded event lines are summed up when their second is over.
      const int n = ::poll(fds.data(), fds.size(), static_cast<int>(std::clamp<long long>(left, 0, 1000)));
      if (n < 0 && errno != EINTR) throw_errno("poll");
      if (n > 0 && (fds[0].revents & POLLIN) != 0) {
        if (const int signo = signals.take(); signo != 0) return 128 + signo;
      }
      // Keys first: a decision waits for nothing else.
      if (n > 0 && fds[1].revents != 0) {
        char buf[64];
        const ssize_t got = ::read(key_fd, buf, sizeof buf);
        if (got == 0 || (got < 0 && errno != EINTR && errno != EAGAIN)) return 0;  // end of input
        const KeyRead read = read_keys(std::string_view(buf, got > 0 ? static_cast<std::size_t>(got) : 0));
        if (read.quit) return 0;
        if (read.key) take_key(*read.key, keys, read.discarded);
      }
      // Streams: fds[2 + i] is streams_[i] (none is added or removed until below).
      std::vector<std::size_t> ended;
      for (std::size_t i = 0; n > 0 && i < streams_.size(); ++i) {
        if (fds[2 + i].revents == 0) continue;
        if (!read_stream(streams_[i])) ended.push_back(i);
      }
      for (auto it = ended.rbegin(); it != ended.rend(); ++it) end_stream(*it);
      if (const auto summaries = throttle_.due(now_()); !summaries.empty()) {
        for (const std::string& line : summaries) io_.out << line << "\n";
        io_.out << std::flush;
        ask_next();
      }
      if (Clock::now() >= next_scan) {
        rescan();
        next_scan = Clock::now() + kRescan;
      }
    }
  }

 private:
  void attach(RunningCage cage) {
    seen_.insert(cage.container);
    Stream s;
    s.child = start_(watch_argv(cage));
    s.cage = std::move(cage);
    if (s.child.pid < 0) {
      io_.err << "cagent watch: session " << printable(s.cage.session) << ": cannot watch: "
              << printable(s.child.error) << "\n"
              << std::flush;
      return;
    }
    streams_.push_back(std::move(s));
  }

  // Reads what is there; false once the stream is over.
  bool read_stream(Stream& s) {
    char buf[4096];
    const ssize_t got = ::read(s.child.out.get(), buf, sizeof buf);
    if (got < 0) return errno == EINTR || errno == EAGAIN;
    if (got == 0) return false;
    s.buffer.append(buf, static_cast<std::size_t>(got));
    std::size_t start = 0;
    for (std::size_t nl; (nl = s.buffer.find('\n', start)) != std::string::npos; start = nl + 1) {
      if (!take_line(s, s.buffer.substr(start, nl - start))) return false;
    }
    s.buffer.erase(0, start);
    if (s.buffer.size() > kMaxLine) {
      s.failure = "a line of more than " + std::to_string(kMaxLine) + " bytes";
      return false;
    }
    return true;
  }

  bool take_line(Stream& s, const std::string& line) {
    const StreamLine read = read_stream_line(line, !s.replied);
    if (const auto* error = std::get_if<StreamError>(&read)) {
      s.failure = error->text;
      return false;
    }
    if (const auto* reply = std::get_if<dnsguard::ControlReply>(&read)) {
      s.replied = true;
      if (!reply->ok || reply->op != dnsguard::ControlOp::watch) {
        s.failure = reply->ok ? "dnsguard answered another request" : reply->error;
        return false;
      }
      // From here on dnsguard counts this watcher (ask mode holds lookups).
      s.watching = true;
      io_.err << "cagent watch: watching session " << printable(s.cage.session) << " ("
              << printable(s.cage.workspace.string()) << ")\n"
              << std::flush;
      return true;
    }
    const auto& event = std::get<dnsguard::WatchEvent>(read);
    const std::uint64_t front_before = queue_.front() != nullptr ? queue_.front()->id : 0;
    const std::string shown = queue_.on_event(s.cage, event);
    const bool print = event.event != dnsguard::WatchWhat::denied || throttle_.admit(s.cage.container, s.cage.session, now_());
    if (print) io_.out << shown << "\n" << std::flush;
    // The prompt stays the last line, and says which decision it is now.
    if (print || front_before != (queue_.front() != nullptr ? queue_.front()->id : 0)) ask_next();
    return true;
  }

  // Closes stream i, reaps its exec and says why it ended.
  void end_stream(std::size_t i) {
    Stream s = std::move(streams_[i]);
    streams_.erase(streams_.begin() + static_cast<std::ptrdiff_t>(i));
    close_stream(s);
    queue_.drop_session(s.cage.container);
    // Why it ended: the cage went away (docker exec then says something
    // of its own, or nothing), or the watch itself failed in a running cage.
    // A cage that stops ends dnsguard (and so the stream) a moment before
    // docker lists it no more: a stream that was working gets kGoneGrace to
    // see the cage leave the list (this blocks the loop for at most that).
    const auto listed = [&] {
      try {
        for (const RunningCage& c : list_cage_names(runner_))
          if (c.container == s.cage.container) return true;
      } catch (const std::exception&) {
        // The engine does not answer: the cage is as good as gone.
      }
      return false;
    };
    const auto give_up = Clock::now() + (s.watching ? kGoneGrace : std::chrono::seconds(0));
    bool running = listed();
    while (running && Clock::now() < give_up) {
      ::poll(nullptr, 0, 250);
      running = listed();
    }
    std::string why;
    if (!running) {
      why = "its cage is gone; watching the others";
      if (command_.session) why = "its cage is gone";
    } else if (!s.failure.empty()) {
      why = "cannot watch: " + printable(s.failure);
    } else {
      why = "the watch stream ended (exit status " + std::to_string(s.status) + ")";
    }
    io_.err << "cagent watch: session " << printable(s.cage.session) << ": " << why << "\n" << std::flush;
    ask_next();
  }

  // (Re)prints the prompt as the last line: after every event line and
  // whenever the front may have changed (a decision left, was put back,
  // its session ended). A key answers only the decision this names.
  void ask_next() {
    if (const auto line = queue_.show(now_())) io_.err << *line << "\n" << std::flush;
  }

  // One key of a read: it decides the decision on screen only if that
  // prompt has been there long enough; otherwise it is discarded (and on a
  // terminal whatever was typed ahead with it).
  void take_key(WatchKey key, const WatchKeys& keys, bool discarded) {
    std::optional<PendingDecision> d;
    if (queue_.front() == nullptr) {
      io_.err << "cagent watch: nothing to decide\n" << std::flush;
    } else if (!(d = queue_.answer(now_()))) {
      io_.err << "cagent watch: key ignored: the prompt is new (read it, then press the key again)\n" << std::flush;
      discarded = true;
    }
    if (discarded && keys.tty) ::tcflush(keys.fd, TCIFLUSH);
    if (d) {
      decide(key, std::move(*d));
    } else {
      ask_next();
    }
  }

  const RunningCage* cage_of(const std::string& container) const {
    for (const Stream& s : streams_)
      if (s.cage.container == container) return &s.cage;
    return nullptr;
  }

  void decide(WatchKey key, PendingDecision decision) {
    std::optional<PendingDecision> d = std::move(decision);
    const RunningCage* cage = cage_of(d->container);
    const std::string who = "cagent watch: session " + printable(d->session) + ": ";
    if (cage == nullptr) {  // its stream ended meanwhile (drop_session makes this rare)
      io_.err << who << "its cage is gone\n" << std::flush;
      ask_next();
      return;
    }
    try {
      if (key == WatchKey::keep_denied) {
        // A name denied at once has nothing waiting: denied it stays.
        if (d->held) {
          const dnsguard::ControlReply reply = send_control(runner_, *cage, dnsguard::ControlOp::refuse, {d->name});
          if (!reply.ok) throw UsageError(reply.error);
        }
        io_.err << who << "kept denied " << printable(d->name) << "\n" << std::flush;
      } else {
        // The name as dnsguard and the config take it; a name no pattern
        // can express (dnsguard shows what the agent asked) is refused here.
        std::string pattern;
        try {
          pattern = dnsguard::normalize_pattern(d->name);
        } catch (const dnsguard::PatternError& e) {
          throw UsageError("cannot allow " + printable(d->name) + ": " + e.what());
        }
        std::string saved;
        if (key != WatchKey::allow) saved = save(key, *cage, pattern);
        const dnsguard::ControlReply reply = send_control(runner_, *cage, dnsguard::ControlOp::allow, {pattern});
        if (!reply.ok) throw UsageError(reply.error + (saved.empty() ? "" : " (" + saved + ")"));
        io_.err << who << printable(dnsguard::describe(reply))
                << (saved.empty() ? " (until the session ends)" : " (" + saved + ")") << "\n"
                << std::flush;
      }
    } catch (const std::exception& e) {
      // Nothing decided: it waits for another key (or its timeout).
      io_.err << who << printable(e.what()) << "\n" << std::flush;
      queue_.put_back(std::move(*d));
    }
    ask_next();
  }

  // w / g: the name into the session's workspace config (the cage's, not
  // the directory cagent watch runs in) or the global one; what was done.
  std::string save(WatchKey key, const RunningCage& cage, const std::string& pattern) {
    HostContext where = host_;
    const bool global = key == WatchKey::save_global;
    if (!global) {
      if (cage.workspace.empty()) throw UsageError("docker does not say this cage's workspace; use g or a");
      where.workspace = cage.workspace;
      where.workspace_identity = file_identity(cage.workspace);
    }
    const auto file = save_domains(global ? LiveCommand::Save::global : LiveCommand::Save::workspace, {pattern}, where);
    return file.empty() ? std::string("already in the config") : "saved to " + printable(file.string());
  }

  // Closing the exec's stdin detaches the watcher (dnsguard --control ends
  // at end of input, and docker exec with it); one that does not end
  // within the grace is killed. Output after that is read and dropped, so
  // a full pipe cannot keep it from ending.
  // Sets s.status.
  static void close_stream(Stream& s) {
    if (s.child.pid < 0) return;
    s.child.in.reset();
    const auto deadline = Clock::now() + kCloseGrace;
    while (s.child.out.valid()) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
      if (left <= 0) {
        ::kill(s.child.pid, SIGKILL);
        break;
      }
      pollfd p{s.child.out.get(), POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left)) <= 0) continue;
      char buf[4096];
      const ssize_t got = ::read(s.child.out.get(), buf, sizeof buf);
      if (got == 0 || (got < 0 && errno != EINTR && errno != EAGAIN)) s.child.out.reset();
    }
    s.status = wait_piped(s.child.pid);
    s.child.pid = -1;
  }

  void close_all() {
    // Every stdin first, so the execs end together, then each reaped.
    for (Stream& s : streams_) s.child.in.reset();
    for (Stream& s : streams_) close_stream(s);
    streams_.clear();
  }

  const LiveCommand& command_;
  const HostContext& host_;
  ProcessRunner& runner_;
  SessionIo io_;
  const StreamStarter& start_;
  std::vector<Stream> streams_;
  std::set<std::string> seen_;  // containers attached once: a stream that ended is not retried
  DecisionQueue queue_;
  EventThrottle throttle_;
  std::function<DecisionQueue::Clock::time_point()> now_ = [] { return DecisionQueue::Clock::now(); };
};

}  // namespace

int run_watch(const LiveCommand& command, const HostContext& host, ProcessRunner& runner, SessionIo io,
              WatchKeys keys, const StreamStarter& start) {
  Watcher watcher(command, host, runner, io, start);
  watcher.attach_first();
  io.err << "cagent watch: keys: a allow for the session, w save to its workspace, g save globally, d keep denied, "
            "q quit\n"
         << std::flush;
  return watcher.run(keys);
}

}  // namespace cagent::launcher::host
