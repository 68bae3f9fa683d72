#pragma once
// `cagent watch [SESSION]`: the live approver of ask mode. It follows the
// denied (and, in ask mode, held) lookups of every running cage of this
// Docker engine — or of the one session named — and one key decides the
// oldest one waiting.
//
//   docker ps (every ~2 s: cages that start later join)
//     └─ per cage: docker exec -i -u 0 C dnsguard --control SOCKET watch   (watch_argv)
//          stdout: ControlReply line, then WatchEvent lines ──read_stream_line()──▶
//          DecisionQueue::on_event ──▶ one printed line; held/denied queued
//   key (terminal in raw mode, or any byte stream: the same path)
//     ──watch_key()──▶ the oldest pending decision:
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

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <string>
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

// One line of a watch stream: the first is dnsguard's reply to the watch
// request, the rest are events. Anything else (docker's or dnsguard
// --control's own error) is the text to report.
struct StreamError {
  std::string text;
};
using StreamLine = std::variant<dnsguard::ControlReply, dnsguard::WatchEvent, StreamError>;
StreamLine read_stream_line(const std::string& line, bool first);

struct PendingDecision {
  std::string session;
  std::string name;
  std::uint16_t type = 0;
  bool held = false;  // a lookup waits for it (else it was denied at once)
};

// The decisions waiting for a key, oldest first; one per (session, name).
// Bounded: past kMaxPending a name is shown but not queued.
class DecisionQueue {
 public:
  static constexpr std::size_t kMaxPending = 256;

  // One event of `session`'s stream: the line to print. held and denied
  // queue a decision (a held one upgrades a queued denied); allowed,
  // refused and timed_out mean someone or the clock decided: it leaves.
  std::string on_event(const std::string& session, const dnsguard::WatchEvent& event);
  // The oldest waiting one, taken off the queue.
  std::optional<PendingDecision> take();
  // Puts one back in front (its decision failed: the user may pick another key).
  void put_back(PendingDecision decision);
  const PendingDecision* front() const { return queue_.empty() ? nullptr : &queue_.front(); }
  std::size_t size() const { return queue_.size(); }
  // A session's stream ended: its decisions can no longer be made.
  void drop_session(const std::string& session);

 private:
  std::deque<PendingDecision> queue_;
};

// The line that asks for a key about `d` (and says how many wait behind it).
std::string prompt_line(const PendingDecision& d, std::size_t waiting);

// Where keys come from: a descriptor read byte by byte; a terminal is put
// in raw mode (no line buffering, no echo; Ctrl-C still signals) for as
// long as cagent watch runs.
struct WatchKeys {
  int fd = 0;
  bool tty = false;
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
