#pragma once
// ProcessRunner: the one door through which the host side starts programs
// (docker, git). Always an argv vector, never a shell string. Tests replace
// it with a fake that records argv and returns canned results.

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "dnsguard/posix.hpp"

namespace cagent::launcher::host {

struct RunOptions {
  enum class Output { inherit, capture, file, discard };
  Output output = Output::inherit;  // where stdout goes
  bool merge_stderr = false;        // stderr follows stdout (file/discard/capture)
  bool discard_stderr = false;      // stderr to /dev/null (probes whose failure is an answer)
  std::filesystem::path file;       // Output::file: appended to
  bool null_stdin = true;           // helpers never read the user's stdin
  std::chrono::milliseconds timeout{0};  // 0: none; on expiry the child is killed
  std::vector<std::string> extra_env;    // "NAME=value" added to the environment
};

struct RunResult {
  int status = 0;  // exit code, 128+N when killed by signal N, 127 when it cannot start
  std::string output;
  bool timed_out = false;
};

// A descriptor whose far end the foreground child depends on (the Docker
// engine's event stream, engine.hpp). What arrives on it is read and
// dropped; once it closes, the child has `grace` to end on its own (the
// docker CLI notices a lost engine by itself within a fraction of a second),
// then it is killed with SIGKILL — on SIGTERM the docker CLI only forwards
// the signal to a container it can no longer reach — and the terminal's
// modes, which the killed CLI had set raw, are restored.
struct Hangup {
  int fd = -1;  // -1: nothing to watch
  std::chrono::milliseconds grace{0};
  // Watched too, for the caller: whenever `event_fd` turns readable,
  // `on_event()` runs in the loop while the child still runs; it returns
  // whether to go on watching (false once it has what it waited for).
  int event_fd = -1;
  std::function<bool()> on_event;
};

struct ForegroundResult {
  int status = 0;        // as in RunResult
  bool hung_up = false;  // the Hangup descriptor closed while the child ran
  bool killed = false;   // ... and the child did not end within the grace
};

class ProcessRunner {
 public:
  virtual ~ProcessRunner() = default;
  virtual RunResult run(const std::vector<std::string>& argv, const RunOptions& options) = 0;
  // The session itself: stdin/stdout/stderr pass straight through. While it
  // runs, SIGINT/SIGTERM/SIGHUP sent to cagent call `on_signal(signo)`
  // (e.g. to stop the container by name); the child keeps its default
  // dispositions. `hangup`: see Hangup.
  virtual ForegroundResult run_foreground(const std::vector<std::string>& argv,
                                          const std::function<void(int)>& on_signal, const Hangup& hangup) = 0;
};

class PosixProcessRunner final : public ProcessRunner {
 public:
  RunResult run(const std::vector<std::string>& argv, const RunOptions& options) override;
  ForegroundResult run_foreground(const std::vector<std::string>& argv, const std::function<void(int)>& on_signal,
                                  const Hangup& hangup) override;
};

// A child that runs beside cagent with its stdin and its output (stdout and
// stderr) on pipes cagent holds: `cagent watch`'s docker exec streams.
// Closing `in` is the child's end of input; `out` reads what it prints. It
// runs in a process group of its own, so a Ctrl-C on the terminal reaches
// cagent only, which then ends the children in order (closes `in`).
struct PipedChild {
  pid_t pid = -1;  // -1: it could not start (`error` says why)
  UniqueFd in;     // write end: the child's stdin
  UniqueFd out;    // read end: the child's stdout and stderr
  std::string error;
};
PipedChild start_piped(const std::vector<std::string>& argv);
// Waits for a child of start_piped: its status as in RunResult.
int wait_piped(pid_t pid);

}  // namespace cagent::launcher::host
