#include "launcher/host/process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <optional>
#include <stdexcept>
#include <system_error>

#include "dnsguard/posix.hpp"

extern char** environ;

namespace cagent::launcher::host {
namespace {

struct FileActionsDeleter {
  void operator()(posix_spawn_file_actions_t* fa) const { posix_spawn_file_actions_destroy(fa); }
};
struct SpawnAttrDeleter {
  void operator()(posix_spawnattr_t* a) const { posix_spawnattr_destroy(a); }
};

int decode_status(int wstatus) {
  if (WIFEXITED(wstatus)) return WEXITSTATUS(wstatus);
  if (WIFSIGNALED(wstatus)) return 128 + WTERMSIG(wstatus);
  return 1;
}

std::vector<char*> c_argv(const std::vector<std::string>& argv) {
  std::vector<char*> out;
  for (const std::string& a : argv) out.push_back(const_cast<char*>(a.c_str()));
  out.push_back(nullptr);
  return out;
}

// The posix_spawn functions return the error number instead of setting errno.
void check(int error, const char* what) {
  if (error != 0) throw std::system_error(error, std::generic_category(), what);
}

class Spawn {
 public:
  Spawn() {
    check(posix_spawn_file_actions_init(&fa_storage_), "posix_spawn_file_actions_init");
    fa_.reset(&fa_storage_);
    check(posix_spawnattr_init(&attr_storage_), "posix_spawnattr_init");
    attr_.reset(&attr_storage_);
    // The child starts with an empty signal mask and default dispositions,
    // whatever cagent blocked for its own signal handling.
    sigset_t empty;
    sigemptyset(&empty);
    sigset_t defaults;
    sigemptyset(&defaults);
    for (int s : {SIGINT, SIGTERM, SIGHUP, SIGCHLD, SIGPIPE, SIGQUIT}) sigaddset(&defaults, s);
    check(posix_spawnattr_setsigmask(attr_.get(), &empty), "posix_spawnattr_setsigmask");
    check(posix_spawnattr_setsigdefault(attr_.get(), &defaults), "posix_spawnattr_setsigdefault");
    check(posix_spawnattr_setflags(attr_.get(), POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF),
          "posix_spawnattr_setflags");
  }

  // File actions for the child. A failure to record one is cagent's error
  // (ENOMEM), not the command's: it throws instead of starting the child
  // with the wrong descriptors.
  void open(int fd, const char* path, int flags, mode_t mode) {
    check(posix_spawn_file_actions_addopen(fa_.get(), fd, path, flags, mode), "posix_spawn_file_actions_addopen");
  }
  void dup2(int from, int to) {
    check(posix_spawn_file_actions_adddup2(fa_.get(), from, to), "posix_spawn_file_actions_adddup2");
  }

  // The child leads a process group of its own: signals from the terminal
  // (Ctrl-C) reach cagent only.
  void own_process_group() {
    check(posix_spawnattr_setpgroup(attr_.get(), 0), "posix_spawnattr_setpgroup");
    check(posix_spawnattr_setflags(attr_.get(), POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP),
          "posix_spawnattr_setflags");
  }

  // Returns the pid, or -1 with errno-like code in `err`.
  pid_t start(const std::vector<std::string>& argv, const std::vector<std::string>& extra_env,
              int& err) {
    std::vector<std::string> env_strings;
    for (char** e = environ; e != nullptr && *e != nullptr; ++e) env_strings.emplace_back(*e);
    for (const std::string& add : extra_env) {
      const std::string name = add.substr(0, add.find('=') + 1);
      std::erase_if(env_strings, [&](const std::string& s) { return s.rfind(name, 0) == 0; });
      env_strings.push_back(add);
    }
    std::vector<char*> envp = c_argv(env_strings);
    std::vector<char*> args = c_argv(argv);
    pid_t pid = -1;
    err = posix_spawnp(&pid, args[0], fa_.get(), attr_.get(), args.data(), envp.data());
    return err == 0 ? pid : -1;
  }

 private:
  posix_spawn_file_actions_t fa_storage_{};
  posix_spawnattr_t attr_storage_{};
  std::unique_ptr<posix_spawn_file_actions_t, FileActionsDeleter> fa_;
  std::unique_ptr<posix_spawnattr_t, SpawnAttrDeleter> attr_;
};

int pidfd_open(pid_t pid) {
  return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
}

int wait_child(pid_t pid) {
  int wstatus = 0;
  while (::waitpid(pid, &wstatus, 0) < 0) {
    if (errno != EINTR) return 1;
  }
  return decode_status(wstatus);
}

}  // namespace

RunResult PosixProcessRunner::run(const std::vector<std::string>& argv, const RunOptions& options) {
  if (argv.empty()) throw std::invalid_argument("run: empty argv");
  Spawn spawn;
  UniqueFd read_end;
  if (options.null_stdin) spawn.open(0, "/dev/null", O_RDONLY, 0);
  if (options.discard_stderr && !options.merge_stderr) spawn.open(2, "/dev/null", O_WRONLY, 0);
  using Output = RunOptions::Output;
  switch (options.output) {
    case Output::inherit: break;
    case Output::discard:
      spawn.open(1, "/dev/null", O_WRONLY, 0);
      break;
    case Output::file:
      spawn.open(1, options.file.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
      break;
    case Output::capture: {
      int fds[2];
      if (::pipe2(fds, O_CLOEXEC) != 0) {
        const int saved = errno;
        throw std::system_error(saved, std::generic_category(), "pipe2");
      }
      read_end.reset(fds[0]);
      UniqueFd write_end(fds[1]);
      spawn.dup2(write_end.get(), 1);
      RunResult r;
      int err = 0;
      if (options.merge_stderr) spawn.dup2(1, 2);
      const pid_t pid = spawn.start(argv, options.extra_env, err);
      write_end.reset();  // only the child holds the write end now
      if (pid < 0) {
        r.status = 127;
        r.output = argv[0] + ": " + std::strerror(err);
        return r;
      }
      const auto deadline = std::chrono::steady_clock::now() + options.timeout;
      char buf[4096];
      bool open = true;
      while (open) {
        int wait_ms = -1;
        if (options.timeout.count() > 0) {
          const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
              deadline - std::chrono::steady_clock::now());
          if (left.count() <= 0) {
            ::kill(pid, SIGKILL);
            r.timed_out = true;
            break;
          }
          wait_ms = static_cast<int>(left.count());
        }
        pollfd p{read_end.get(), POLLIN, 0};
        const int n = ::poll(&p, 1, wait_ms);
        if (n <= 0) continue;  // EINTR or the deadline: the loop decides
        const ssize_t got = ::read(read_end.get(), buf, sizeof buf);
        const int read_error = errno;
        if (got > 0) {
          r.output.append(buf, static_cast<std::size_t>(got));
        } else if (got == 0 || read_error != EINTR) {
          open = false;
        }
      }
      r.status = wait_child(pid);
      return r;
    }
  }
  if (options.merge_stderr && options.output != Output::inherit) {
    spawn.dup2(1, 2);
  }
  RunResult r;
  int err = 0;
  const pid_t pid = spawn.start(argv, options.extra_env, err);
  if (pid < 0) {
    r.status = 127;
    r.output = argv[0] + ": " + std::strerror(err);
    return r;
  }
  if (options.timeout.count() > 0) {
    UniqueFd pidfd(pidfd_open(pid));
    pollfd p{pidfd.get(), POLLIN, 0};
    int n = 0;
    const auto deadline = std::chrono::steady_clock::now() + options.timeout;
    do {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      n = left.count() > 0 ? ::poll(&p, 1, static_cast<int>(left.count())) : 0;
    } while (n < 0 && errno == EINTR);
    if (n == 0) {
      ::kill(pid, SIGKILL);
      r.timed_out = true;
    }
  }
  r.status = wait_child(pid);
  return r;
}

ForegroundResult PosixProcessRunner::run_foreground(const std::vector<std::string>& argv,
                                                    const std::function<void(int)>& on_signal, const Hangup& hangup) {
  if (argv.empty()) throw std::invalid_argument("run_foreground: empty argv");
  // Block the stop signals and read them from a signalfd, so a Ctrl-C or a
  // SIGTERM is handled in this loop (stop the container, then keep waiting
  // for docker to return) rather than killing cagent mid-session and leaving
  // the container running.
  sigset_t mask;
  sigemptyset(&mask);
  for (int s : {SIGINT, SIGTERM, SIGHUP}) sigaddset(&mask, s);
  sigset_t old;
  if (::sigprocmask(SIG_BLOCK, &mask, &old) != 0) {
    const int saved = errno;
    throw std::system_error(saved, std::generic_category(), "sigprocmask");
  }
  struct Restore {
    sigset_t old;
    ~Restore() { ::sigprocmask(SIG_SETMASK, &old, nullptr); }
  } restore{old};
  UniqueFd sigfd(::signalfd(-1, &mask, SFD_CLOEXEC));
  if (!sigfd.valid()) {
    const int saved = errno;
    throw std::system_error(saved, std::generic_category(), "signalfd");
  }
  // The terminal as it is before the child sets it raw: put back if the
  // child has to be killed (it cannot restore it then).
  termios terminal{};
  const bool on_terminal = ::isatty(STDIN_FILENO) == 1 && ::tcgetattr(STDIN_FILENO, &terminal) == 0;

  Spawn spawn;
  int err = 0;
  const pid_t pid = spawn.start(argv, {}, err);
  if (pid < 0) throw std::runtime_error("cannot start " + argv[0] + ": " + std::strerror(err));
  ForegroundResult result;
  UniqueFd pidfd(pidfd_open(pid));
  if (!pidfd.valid()) {
    result.status = wait_child(pid);  // very old kernel: no signal handling, still correct status
    return result;
  }
  using Clock = std::chrono::steady_clock;
  std::optional<Clock::time_point> kill_at;  // set once the hangup descriptor closed
  int watched = hangup.fd;
  int event_fd = hangup.on_event ? hangup.event_fd : -1;
  while (true) {
    // poll() skips an entry whose fd is -1: the hangup, once it closed.
    pollfd fds[4] = {{pidfd.get(), POLLIN, 0}, {sigfd.get(), POLLIN, 0}, {watched, POLLIN, 0}, {event_fd, POLLIN, 0}};
    int wait_ms = -1;
    if (kill_at) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(*kill_at - Clock::now()).count();
      wait_ms = left > 0 ? static_cast<int>(left) : 0;
    }
    const int n = ::poll(fds, 4, wait_ms);
    if (n < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (n == 0 && kill_at) {
      ::kill(pid, SIGKILL);
      result.killed = true;
      if (on_terminal) ::tcsetattr(STDIN_FILENO, TCSANOW, &terminal);
      break;
    }
    if (fds[1].revents & POLLIN) {
      signalfd_siginfo info{};
      if (::read(sigfd.get(), &info, sizeof info) == static_cast<ssize_t>(sizeof info)) {
        on_signal(static_cast<int>(info.ssi_signo));
      }
    }
    if (fds[2].revents != 0) {
      char buf[4096];
      const ssize_t got = ::read(watched, buf, sizeof buf);
      if (got == 0 || (got < 0 && errno != EINTR && errno != EAGAIN)) {
        result.hung_up = true;
        watched = -1;
        kill_at = Clock::now() + hangup.grace;
      }
    }
    if (fds[3].revents != 0 && !hangup.on_event()) event_fd = -1;
    if (fds[0].revents & POLLIN) break;
  }
  result.status = wait_child(pid);
  return result;
}

PipedChild start_piped(const std::vector<std::string>& argv) {
  if (argv.empty()) throw std::invalid_argument("start_piped: empty argv");
  const auto make_pipe = [](UniqueFd& read_end, UniqueFd& write_end) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) throw_errno("pipe2");
    read_end.reset(fds[0]);
    write_end.reset(fds[1]);
  };
  PipedChild child;
  UniqueFd child_in, child_out;  // the child's ends, closed here once it holds them
  make_pipe(child_in, child.in);
  make_pipe(child.out, child_out);
  Spawn spawn;
  spawn.own_process_group();
  spawn.dup2(child_in.get(), 0);
  spawn.dup2(child_out.get(), 1);
  spawn.dup2(child_out.get(), 2);
  int err = 0;
  child.pid = spawn.start(argv, {}, err);
  if (child.pid < 0) {
    child.error = argv[0] + ": " + std::strerror(err);
    child.in.reset();
    child.out.reset();
  }
  return child;
}

int wait_piped(pid_t pid) { return wait_child(pid); }

}  // namespace cagent::launcher::host
