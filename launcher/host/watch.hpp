#pragma once
// `cagent watch [--all] [SESSION]`: the live approver of ask mode. It
// follows the denied (and, in ask mode, held) lookups of this user's running
// cages (--all: every cage of this Docker engine) — or of the one session
// named — and one key decides the decision the prompt on screen names.
//
//   docker ps (every ~2 s: cages that start later join)
//     └─ per cage: docker exec -i -u 0 C dnsguard --control SOCKET watch   (watch_argv)
//          stdout: ControlReply line, then WatchEvent lines ──read_stream_line()──▶
//          DecisionQueue::on_event ──▶ one printed line; held/denied queued
//   key (terminal in raw mode, or any byte stream: the same path; one per read)
//     ──read_keys()──▶ the decision whose prompt has been shown ≥ 0.5 s (DecisionQueue::answer):
//          a  allow for the session        send_control(allow)   (= cagent allow NAME --session ID)
//          w  save to the cage's workspace  save_domains + allow  (= cagent allow --save NAME --session ID)
//          g  save to the global config     save_domains + allow  (--save=global)
//          d  keep denied                   send_control(refuse): a held lookup is answered denied now
//          q  quit (so do end of input and Ctrl-C): every exec's stdin closed, every exec reaped
//
// The approver is this host process of the user's: the agent has no way to
// the control socket (live.hpp), so no decision can come from the cage.
// Holding is dnsguard's (bounded there); closing a stream detaches it, and
// a cage without a watcher denies at once again.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "dnsguard/contracts.hpp"
#include "launcher/host/live.hpp"

namespace cagent::launcher::host {

// `docker exec -i -u 0 CONTAINER dnsguard --control SOCKET watch`: -i keeps
// the exec's stdin open, and closing it is what detaches the watcher.
std::vector<std::string> watch_argv(const RunningCage& cage);

enum class WatchKey { allow, save_workspace, save_global, keep_denied, quit };
// a, w, g, d, q (either case; Ctrl-D quits too); nullopt for anything else (a newline from a pipe).
std::optional<WatchKey> watch_key(char c);

// What one read of the key stream means: at most ONE key is used (the
// first a/w/g/d); the rest of the read is discarded, so typeahead ("aa")
// can never decide a prompt that appeared after the first key. A q (or
// Ctrl-D) anywhere in the read quits.
struct KeyRead {
  bool quit = false;
  std::optional<WatchKey> key;
  bool discarded = false;  // other keys of the read were thrown away
};
KeyRead read_keys(std::string_view bytes);

// One line of a watch stream: the first is dnsguard's reply to the watch
// request, the rest are events. Anything else (docker's or dnsguard
// --control's own error) is the text to report.
struct StreamError {
  std::string text;
};
using StreamLine = std::variant<dnsguard::ControlReply, dnsguard::WatchEvent, StreamError>;
StreamLine read_stream_line(const std::string& line, bool first);

struct PendingDecision {
  std::uint64_t id = 0;  // one per queued decision: a name that leaves and comes back is a new one
  std::string container;  // the stream it came from (a session label alone may be anyone's)
  std::string workspace;  // the cage's workspace, shown in the prompt ("" if unknown)
  std::string session;
  std::string name;
  std::uint16_t type = 0;
  bool held = false;  // a lookup waits for it (else it was denied at once)
};

// The decisions waiting for a key; one per (session, name). Held ones
// (a lookup waits) come first, oldest first, then the ones denied at once.
// Bounded: past kMaxPending a held one evicts the newest denied-at-once one;
// otherwise the name is shown but not queued.
//
// A key is bound to the prompt it answers: show() records which decision
// the prompt on screen asks about and since when; answer() hands out that
// decision only if it is still the front and has been on screen for at
// least kMinShown. The clock is the caller's (tests drive it).
class DecisionQueue {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr std::size_t kMaxPending = 256;
  static constexpr std::chrono::milliseconds kMinShown{500};

  // One event of `session`'s stream: the line to print. held and denied
  // queue a decision (a held one upgrades a queued denied); allowed,
  // refused and timed_out mean someone or the clock decided: it leaves.
  std::string on_event(const RunningCage& cage, const dnsguard::WatchEvent& event);
  // The same for a cage known by its session only (container = session).
  std::string on_event(const std::string& session, const dnsguard::WatchEvent& event);
  // The oldest waiting one, taken off the queue.
  std::optional<PendingDecision> take();
  // Puts one back in front (its decision failed: the user may pick another key).
  void put_back(PendingDecision decision);
  const PendingDecision* front() const { return queue_.empty() ? nullptr : &queue_.front(); }
  std::size_t size() const { return queue_.size(); }
  // A container's stream ended: its decisions can no longer be made.
  void drop_session(const std::string& container);

  // The prompt for the front is (re)printed at `now`: the line to print,
  // nullopt when nothing waits. The time shown restarts only when the
  // front is another decision than the one shown before (re-printing the
  // same prompt after event lines does not delay its key).
  std::optional<std::string> show(Clock::time_point now);
  // A key at `now`: the decision on screen, taken off the queue; nullopt
  // (the key is discarded) when no prompt is shown, the front is no longer
  // the one shown, or it has been shown for less than kMinShown.
  std::optional<PendingDecision> answer(Clock::time_point now);

 private:
  std::deque<PendingDecision> queue_;
  std::uint64_t next_id_ = 1;
  std::uint64_t shown_id_ = 0;  // 0: no prompt on screen
  Clock::time_point shown_at_{};
};

// A flood of denied names must not scroll the prompt away: per stream, at
// most kPerSecond denied lines a second are printed; the rest are folded
// into one line, "SESSION … and N more denied names", once the second is
// over. (Held lines and decisions are always printed.)
class EventThrottle {
 public:
  using Clock = DecisionQueue::Clock;
  static constexpr int kPerSecond = 5;
  // Whether to print a denied line of `stream` (its label: `session`) now.
  bool admit(const std::string& stream, const std::string& session, Clock::time_point now);
  // The summary lines of the seconds that are over by `now`.
  std::vector<std::string> due(Clock::time_point now);

 private:
  struct Window {
    std::string session;
    Clock::time_point start{};
    int printed = 0;
    std::uint64_t folded = 0;
  };
  std::vector<std::pair<std::string, Window>> windows_;
};

// The line that asks for a key about `d` (and says how many wait behind it).
std::string prompt_line(const PendingDecision& d, std::size_t waiting);

// Where keys come from: a descriptor read byte by byte; a terminal is put
// in raw mode (no line buffering, no echo; Ctrl-C still signals) for as
// long as cagent watch runs.
// The same path for both: a key counts only when it answers the prompt on
// screen, shown for at least DecisionQueue::kMinShown; one key per read.
// Keys that do not count are discarded (on a terminal, with whatever else
// was typed ahead: tcflush).
struct WatchKeys {
  int fd = 0;
  bool tty = false;
  // The clock keys are timed against (a test's, or steady_clock's).
  std::function<DecisionQueue::Clock::time_point()> now = [] { return DecisionQueue::Clock::now(); };
};

// Starts one stream's process (watch_argv); start_piped, or a test's.
using StreamStarter = std::function<PipedChild(const std::vector<std::string>& argv)>;

// The whole command. Exit 0 on q or end of input, 130 on SIGINT (143
// SIGTERM, 129 SIGHUP); throws UsageError (exit 2) when there is no running
// cage, or no cage of the session named. Event lines on io.out, what
// cagent did or could not do on io.err.
int run_watch(const LiveCommand& command, const HostContext& host, ProcessRunner& runner, SessionIo io,
              WatchKeys keys, const StreamStarter& start = start_piped);

}  // namespace cagent::launcher::host
