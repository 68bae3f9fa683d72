#include "launcher/cage/executor.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <dirent.h>

#include <cerrno>
#include <cstdio>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <optional>
#include <vector>
#include <sstream>
#include <system_error>
#include <type_traits>

#include "launcher/cage/dns_probe.hpp"
#include "launcher/cage/local_sockets.hpp"
#include "dnsguard/posix.hpp"
#include "launcher/cage/system.hpp"
#include "launcher/cage/accounts.hpp"
#include "launcher/cage/nested.hpp"
#include "launcher/cage/privileges.hpp"

namespace cagent::cage {
namespace {

using Clock = std::chrono::steady_clock;

void log_line(const std::string& line) {
  const std::string text = "cage-init: " + line + "\n";
  // One write so lines from cage-init and the command don't interleave.
  [[maybe_unused]] const ssize_t n = ::write(STDERR_FILENO, text.data(), text.size());
}

// Signals cage-init handles synchronously (sigwaitinfo) instead of dying of
// them. Everything except SIGCHLD is forwarded to the command. SIGTTOU/SIGTTIN
// stay blocked so writing a log line while the command owns the terminal
// never stops cage-init.
sigset_t handled_signals() {
  sigset_t set;
  sigemptyset(&set);
  for (int sig : {SIGCHLD, SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH, SIGCONT, SIGTTOU, SIGTTIN}) {
    sigaddset(&set, sig);
  }
  return set;
}

std::string describe_status(int status) {
  if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return std::string("killed by signal ") + strsignal(WTERMSIG(status));
  return "stopped";
}

int exit_code_of(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 1;
}

// fork + `prepare` (in the child, may throw) + exec. A CLOEXEC pipe carries a
// failure message from the child back; EOF without a message means the exec
// happened. So the parent knows, synchronously, whether the program started.
pid_t spawn(const sigset_t& child_mask, const std::function<void()>& prepare, const std::string& file,
            const std::vector<std::string>& argv, const std::vector<std::string>* environment) {
  auto [pid, reader, writer] = fork_with_pipe();
  if (pid == 0) {
    std::string error;
    try {
      reader.reset();
      prepare();
      if (::sigprocmask(SIG_SETMASK, &child_mask, nullptr) != 0) throw_errno("sigprocmask");
      auto args = c_strings(argv);
      if (environment != nullptr) {
        auto env = c_strings(*environment);
        ::execvpe(file.c_str(), args.data(), env.data());
      } else {
        ::execv(file.c_str(), args.data());
      }
      throw_errno("exec ", file);
    } catch (const std::exception& e) {
      error = e.what();
    }
    [[maybe_unused]] const ssize_t n = ::write(writer.get(), error.data(), error.size());
    ::_exit(127);
  }
  writer.reset();
  const std::string message = read_to_eof(reader.get(), 64 * 1024);
  if (!message.empty()) {
    ::waitpid(pid, nullptr, 0);
    throw std::runtime_error(message);
  }
  return pid;
}

int wait_status(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) throw_errno("waitpid");
  }
  return status;
}

template <typename Sockaddr>
sockaddr_storage as_storage(const Sockaddr& address, socklen_t& length) {
  sockaddr_storage storage{};
  std::memcpy(&storage, &address, sizeof address);
  length = sizeof address;
  return storage;
}

sockaddr_storage to_sockaddr(const nft::Endpoint& endpoint, socklen_t& length) {
  if (endpoint.addr.family == nft::Family::v4) {
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_port = htons(endpoint.port);
    std::memcpy(&sin.sin_addr, endpoint.addr.bytes.data(), 4);
    return as_storage(sin, length);
  }
  sockaddr_in6 sin6{};
  sin6.sin6_family = AF_INET6;
  sin6.sin6_port = htons(endpoint.port);
  std::memcpy(&sin6.sin6_addr, endpoint.addr.bytes.data(), 16);
  return as_storage(sin6, length);
}

// The walk of step::ClaimHome. Every entry is opened O_PATH|O_NOFOLLOW
// relative to its parent's fd, then stat'ed and chowned through that same fd
// (AT_EMPTY_PATH): the decision and the change concern one inode, whatever
// the agent of a concurrent session of this workspace renames or swaps in
// meanwhile, and no path is ever resolved through a symlink. A symlink is
// claimed itself (like lchown), never its target.
struct ClaimWalk {
  static constexpr int kMaxDepth = 256;
  const step::ClaimHome& step;
  dev_t device;
  int skipped_deep;

  bool keep(const struct stat& st) const {
    for (const uid_t uid : step.keep_uids) {
      if (st.st_uid == uid) return true;
    }
    return st.st_uid == step.owner.uid && st.st_gid == step.owner.gid;
  }

  void claim(int fd, const struct stat& st, const std::string& where) const {
    if (keep(st)) return;
    if (::fchownat(fd, "", step.owner.uid, step.owner.gid, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) != 0) {
      throw_errno("chown ", where);
    }
  }

  void claim_children(int dir, const std::string& where, int depth) {
    // fdopendir takes the fd it is given; hand it a duplicate so `dir`
    // stays ours (the caller chowns through it afterwards).
    UniqueFd listing_fd(::fcntl(dir, F_DUPFD_CLOEXEC, 0));
    if (!listing_fd.valid()) throw_errno("dup ", where);
    std::unique_ptr<DIR, int (*)(DIR*)> listing(::fdopendir(listing_fd.get()), &::closedir);
    if (!listing) throw_errno("opendir ", where);
    listing_fd.release();  // the DIR owns it now: closedir() closes it
    while (true) {
      errno = 0;
      const dirent* entry = ::readdir(listing.get());
      if (entry == nullptr) {
        if (errno != 0) throw_errno("readdir ", where);
        break;
      }
      const std::string_view name = entry->d_name;
      if (name == "." || name == "..") continue;
      const std::string path = where + "/" + std::string(name);
      UniqueFd node(::openat(dir, entry->d_name, O_PATH | O_NOFOLLOW | O_CLOEXEC));
      if (node.get() < 0) {
        if (errno == ENOENT) continue;  // removed meanwhile
        throw_errno("open ", path);
      }
      struct stat st {};
      if (::fstat(node.get(), &st) != 0) throw_errno("fstat ", path);
      if (st.st_dev != device) continue;  // another filesystem mounted here: not ours to walk
      if (S_ISDIR(st.st_mode)) {
        if (depth + 1 >= kMaxDepth) {
          ++skipped_deep;
          continue;
        }
        UniqueFd sub(::openat(node.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
        if (sub.get() < 0) throw_errno("open ", path);
        claim_children(sub.get(), path, depth + 1);
      }
      claim(node.get(), st, path);
    }
  }
};

class Runner {
 public:
  Runner(const Plan& plan, const ExecutorOptions& options) : plan_(plan), options_(options) {
    const sigset_t set = handled_signals();
    if (::sigprocmask(SIG_BLOCK, &set, &original_mask_) != 0) throw_errno("sigprocmask");
    // Subreaper: whatever the agent leaves running in the background (nohup,
    // setsid, daemons) becomes our child when its parent exits, so it can be
    // ended before the log directory is handed back (see ~Runner).
    if (::prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0) throw_errno("prctl(PR_SET_CHILD_SUBREAPER)");
  }

  Runner(const Runner&) = delete;
  Runner& operator=(const Runner&) = delete;

  // Cleanup that must happen however we leave: dnsguard must not outlive us
  // (it would hold port 53 of a dead cage), the log dir goes back to its
  // owner. The ruleset is deliberately left installed: fail closed.
  //
  // The order is what makes the final record exact. What the command left
  // running ends first, while dnsguard still runs: until its last moment
  // every connection it makes is still judged (the gate) or counted (the
  // firewall's counters, which dnsguard reads at exit). Then the gate's
  // connections — the leftovers' relays, and hellos still waiting to be
  // judged — get a moment to close, and only then is dnsguard told to stop
  // and write its final decisions.json. (Stopping dnsguard first, as
  // before, lost whatever the leftovers were refused after its last write.)
  ~Runner() {
    stop_nested_engine(nested_engine_, 5000);
    if (end_leftover_children()) wait_for_gate_connections();
    stop_dnsguard();
    // Only once nothing of the agent's is left: a background process could
    // otherwise rewrite the record of what was blocked in the moment between
    // the hand-back and the container's end (the directory is the host's).
    if (end_leftover_children()) {
      hand_back_log_dir();
    } else {
      log_line("warning: processes the command left behind would not end; the log directory stays dnsguard's");
    }
    ::sigprocmask(SIG_SETMASK, &original_mask_, nullptr);
  }

  int run() {
    const bool trace = options_.trace_steps;
    for (const Step& step : plan_.steps) {
      try {
        if (const auto* command = std::get_if<step::RunCommand>(&step)) return run_command(*command);
        const auto started = Clock::now();
        std::visit(
            [this](const auto& s) {
              if constexpr (!std::is_same_v<std::decay_t<decltype(s)>, step::RunCommand>) perform(s);
            },
            step);
        if (trace) {
          const auto us = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - started);
          log_line("step " + std::string(step_name(step)) + ": " + std::to_string(us.count()) + " us");
        }
      } catch (const StepError&) {
        throw;
      } catch (const std::exception& error) {
        throw StepError(step_name(step), error.what());
      }
    }
    switch (plan_.ending) {
      case Plan::Ending::exit: return 0;
      case Plan::Ending::serve_dnsguard: return serve_dnsguard();
      case Plan::Ending::command: break;
    }
    throw StepError("run-command", "the plan has no command step");
  }

 private:
  void perform(const step::WatchOwner& s) {
    UniqueFd link;
    try {
      link = connect_unix(s.socket.native());
    } catch (const std::exception& error) {
      throw std::runtime_error(std::string(error.what()) + " (cagent on the host is gone, or did not start this cage)");
    }
    const pid_t pid = ::fork();
    if (pid < 0) throw_errno("fork");
    if (pid == 0) {
      // Blocks until the owner's listening socket is closed (EOF or
      // ECONNRESET); cagent never writes, but bytes would not end it.
      char byte = 0;
      ssize_t n = 0;
      while ((n = ::read(link.get(), &byte, 1)) > 0 || (n < 0 && errno == EINTR)) {
      }
      ::_exit(0);
    }
    owner_watch_ = pid;
  }

  void perform(const step::CheckPolicy& s) {
    // Its "ok" on stdout must end up nowhere: not in the command's output
    // stream (pipelines) and not on the user's terminal (a silent start).
    // A rejection still reaches stderr with the bad key named.
    const pid_t pid = spawn(
        original_mask_,
        [] {
          const int null = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
          if (null < 0 || ::dup2(null, STDOUT_FILENO) < 0) throw_errno("stdout to /dev/null");
        },
        s.dnsguard.string(),
                            {s.dnsguard.string(), "--config", s.policy.string(), "--check"}, nullptr);
    const int status = wait_status(pid);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      throw std::runtime_error(s.dnsguard.string() + " --check rejected " + s.policy.string() + " (" +
                               describe_status(status) + ")");
    }
  }

  void perform(const step::WritePolicyCopy& s) {
    dnsguard::Policy policy = s.policy;
    if (s.nested_listen && nested_ok_) policy.listen.push_back(*s.nested_listen);
    const std::string text = dnsguard::write_policy(
        policy, "written by cage-init from " + s.source.string() + " (upstreams/listen adapted to this cage)");
    std::error_code ec;
    std::filesystem::create_directories(s.destination.parent_path(), ec);
    if (ec) throw std::system_error(ec, "create " + s.destination.parent_path().string());
    // Readable by dnsguard; a policy holds no secrets, only names.
    replace_file(s.destination, text, 0644);
  }

  void perform(const step::InstallRuleset& s) {
    nft::install_ruleset(s.spec);
    // Part of the same lockdown: the ruleset keeps other uids off the
    // upstream flows, and no uid but dnsguard's may bind a low port.
    restrict_unprivileged_ports();
  }

  void perform(const step::PrepareLogDir& s) {
    if (s.dir.empty()) return;
    std::error_code ec;
    std::filesystem::create_directories(s.dir, ec);
    if (ec) throw std::system_error(ec, "create " + s.dir.string());
    struct stat st {};
    if (::lstat(s.dir.c_str(), &st) != 0) throw_errno("lstat ", s.dir.native());
    if (!S_ISDIR(st.st_mode)) throw std::runtime_error(s.dir.string() + " is not a directory");
    // Writable only by dnsguard during the session: the agent can read what
    // was blocked, not forge or erase it.
    chown_tree(s.dir, Owner{st.st_uid, st.st_gid}, s.during);
    if (::chmod(s.dir.c_str(), 0755) != 0) throw_errno("chmod ", s.dir.native());
    log_dir_ = s;
  }

  void perform(const step::StartDnsguard& s) {
    dnsguard_step_ = s;  // for restarts (see restart_dnsguard)
    const sigset_t mask = original_mask_;
    dnsguard_pid_ = spawn(
        mask,
        [&s] {
          // Its own session: no controlling terminal, so the agent's ^C
          // (sent to the foreground process group) never reaches it.
          if (::setsid() < 0) throw_errno("setsid");
          const int null = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
          if (null < 0 || ::dup2(null, STDIN_FILENO) < 0) throw_errno("stdin from /dev/null");
          // Its stdout must not mix into the command's output (pipelines).
          if (::dup2(STDERR_FILENO, STDOUT_FILENO) < 0) throw_errno("stdout to stderr");
          become_dnsguard(s.user, s.ambient_capabilities);
        },
        s.binary.string(), {s.binary.string(), "--config", s.config.string()}, nullptr);
  }

  void perform(const step::WaitForDnsguard& s) {
    const auto deadline = Clock::now() + s.timeout;
    std::uint16_t id = static_cast<std::uint16_t>(::getpid());
    while (Clock::now() < deadline) {
      int status = 0;
      if (dnsguard_pid_ > 0 && ::waitpid(dnsguard_pid_, &status, WNOHANG) == dnsguard_pid_) {
        dnsguard_pid_ = -1;
        throw std::runtime_error("dnsguard " + describe_status(status) + " before answering");
      }
      // probe_once itself waits: up to 200 ms for an answer, or 1 ms after
      // a refusal (dnsguard not bound yet), so this loop never spins.
      if (probe_once(s.probe, ++id, std::chrono::milliseconds(200))) return;
    }
    throw std::runtime_error("dnsguard did not answer on " + format_endpoint(s.probe) + " within " +
                             std::to_string(s.timeout.count()) + " ms");
  }

  // Sends one query; true on an answer within `wait`. Errors such as
  // ECONNREFUSED (not listening yet) count as "no answer".
  static bool probe_once(const nft::Endpoint& endpoint, std::uint16_t id, std::chrono::milliseconds wait) {
    const int family = endpoint.addr.family == nft::Family::v4 ? AF_INET : AF_INET6;
    UniqueFd sock(::socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (sock.get() < 0) throw_errno("socket");
    socklen_t length = 0;
    const sockaddr_storage address = to_sockaddr(endpoint, length);
    if (::connect(sock.get(), reinterpret_cast<const sockaddr*>(&address), length) != 0) throw_errno("connect");
    const auto query = build_probe_query(id);
    const auto until = Clock::now() + wait;
    // Not listening yet shows up as ECONNREFUSED here or on recv: retry
    // soon, not after the full wait. dnsguard binds within 1-2 ms of its
    // start, so a 1 ms retry costs a few cheap probes and saves most of a
    // 10 ms step on every cage start (measured: wait-for-dnsguard 10.3 ms).
    constexpr int kRetryMs = 1;
    if (::send(sock.get(), query.data(), query.size(), 0) < 0) {
      ::poll(nullptr, 0, kRetryMs);
      return false;
    }
    while (true) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now()).count();
      if (left <= 0) return false;
      pollfd pfd{sock.get(), POLLIN, 0};
      const int ready = ::poll(&pfd, 1, static_cast<int>(left));
      if (ready < 0 && errno == EINTR) continue;
      if (ready <= 0) return false;
      std::uint8_t buffer[512];
      const ssize_t n = ::recv(sock.get(), buffer, sizeof buffer, 0);
      if (n < 0) {
        ::poll(nullptr, 0, kRetryMs);
        return false;
      }
      if (is_probe_answer(std::span(buffer, static_cast<std::size_t>(n)), id)) return true;
    }
  }

  void perform(const step::WriteResolvConf& s) { overwrite_file(s.path, s.content, 0644); }

  // The nested engine is a convenience, not part of the firewall: a failure
  // of either nested step is one warning, and the session goes on without
  // it (nothing of the sandbox is left running).
  void perform(const step::CreateNestedLink& s) {
    try {
      create_nested_link(s);
    } catch (const std::exception& error) {
      nested_ok_ = false;
      log_line("warning: nested Docker is off: step create-nested-link: " + std::string(error.what()));
    }
  }

  void perform(const step::StartNestedDocker& s) {
    if (!nested_ok_) return;
    try {
      nested_engine_ = start_nested_engine(s, original_mask_, options_.nested_fail_at);
    } catch (const std::exception& error) {
      nested_ok_ = false;
      log_line("warning: nested Docker is off: step start-nested-docker: " + std::string(error.what()));
    }
  }

  void perform(const step::InstallCaBundle& s) {
    const std::string extra = read_file(s.source);
    if (extra.find("-----BEGIN CERTIFICATE-----") == std::string::npos) {
      throw std::runtime_error("no PEM certificate in " + s.source.string());
    }
    std::string bundle = std::filesystem::exists(s.system_bundle) ? read_file(s.system_bundle) : std::string{};
    if (bundle.find(extra) != std::string::npos) return;   // already trusted (restarted cage)
    if (!bundle.empty() && bundle.back() != '\n') bundle += '\n';
    bundle += extra;
    if (bundle.back() != '\n') bundle += '\n';
    // Root-owned 0644: the agent reads the merged bundle, cannot add to it.
    replace_file(s.system_bundle, bundle, 0644);
  }

  void perform(const step::StartRelay& s) {
    // As root, before the relay exists: its port, cagent's connection, its record.
    UniqueFd listener(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (listener.get() < 0) throw_errno("socket");
    const int on = 1;
    ::setsockopt(listener.get(), SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(s.port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(listener.get(), reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) {
      throw_errno("bind 127.0.0.1:", std::to_string(s.port), " for the secret relay");
    }
    if (::listen(listener.get(), 512) != 0) throw_errno("listen");
    UniqueFd secrets;
    try {
      secrets = connect_unix(s.secrets_socket.native());
    } catch (const std::exception& error) {
      throw std::runtime_error(std::string(error.what()) + " (cagent's secrets socket)");
    }
    UniqueFd record(::open(s.record.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0644));
    if (record.get() < 0) throw_errno("open ", s.record.native());
    int pipe_fds[2];
    if (::pipe2(pipe_fds, O_CLOEXEC) != 0) throw_errno("pipe2");
    UniqueFd ca_read(pipe_fds[0]), ca_write(pipe_fds[1]);
    relay_pid_ = spawn(
        original_mask_,
        [&] {
          if (::setsid() < 0) throw_errno("setsid");
          // Above every target first, so no dup2 below overwrites a source
          // still to be copied; dup2 clears close-on-exec on the copies:
          // exactly these four are inherited.
          const int sources[] = {secrets.get(), ca_write.get(), listener.get(), record.get()};
          const int targets[] = {STDIN_FILENO, STDOUT_FILENO, 3, 4};
          int high[4];
          for (int i = 0; i < 4; ++i) {
            high[i] = ::fcntl(sources[i], F_DUPFD_CLOEXEC, 10);
            if (high[i] < 0) throw_errno("fcntl(F_DUPFD)");
          }
          for (int i = 0; i < 4; ++i) {
            if (::dup2(high[i], targets[i]) < 0) throw_errno("dup2");
          }
          become_agent(s.user);  // no capability, no_new_privs, its own uid
        },
        s.binary.string(),
        {s.binary.string(), "--trust", s.trust.string(), "--listen-fd", "3", "--record-fd", "4"}, nullptr);
    ca_write.reset();
    secrets.reset();
    // The relay's "ready": its certificate, then the pipe's end.
    std::string pem;
    const auto deadline = Clock::now() + s.timeout;
    char buffer[4096];
    for (;;) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
      pollfd pfd{ca_read.get(), POLLIN, 0};
      const int ready = left > 0 ? ::poll(&pfd, 1, static_cast<int>(left)) : 0;
      if (ready < 0 && errno == EINTR) continue;
      if (ready <= 0) throw std::runtime_error("the secret relay did not start within " + std::to_string(s.timeout.count()) + " ms");
      const ssize_t n = ::read(ca_read.get(), buffer, sizeof buffer);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) throw_errno("read the relay's certificate");
      if (n == 0) break;
      pem.append(buffer, static_cast<std::size_t>(n));
      if (pem.size() > 64 * 1024) throw std::runtime_error("the secret relay's certificate is over 64 KiB");
    }
    int status = 0;
    if (::waitpid(relay_pid_, &status, WNOHANG) == relay_pid_) {
      relay_pid_ = -1;
      throw std::runtime_error("the secret relay " + describe_status(status) + " (its message is above)");
    }
    if (pem.find("-----BEGIN CERTIFICATE-----") == std::string::npos) {
      throw std::runtime_error("the secret relay gave no certificate");
    }
    std::string bundle = std::filesystem::exists(s.trust) ? read_file(s.trust) : std::string{};
    if (!bundle.empty() && bundle.back() != '\n') bundle += '\n';
    replace_file(s.trust, bundle + pem, 0644);
  }

  void perform(const step::RemapAgent& s) {
    const std::string passwd = read_file("/etc/passwd");
    replace_file("/etc/passwd", rewrite_passwd(passwd, s.user, s.to.uid, s.to.gid), 0644);
    const std::string group = read_file("/etc/group");
    const std::string new_group = rewrite_group(group, s.user, s.from.gid, s.to.gid);
    if (new_group != group) replace_file("/etc/group", new_group, 0644);
  }

  void perform(const step::ClaimHome& s) {
    UniqueFd home(::open(s.home.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (home.get() < 0) {
      if (errno == ENOENT) return;  // an image without a home: nothing to claim
      throw_errno("open ", s.home.native(), " (it must be a directory, not a symlink)");
    }
    struct stat st {};
    if (::fstat(home.get(), &st) != 0) throw_errno("fstat ", s.home.native());
    // The walk ends with the home itself (post-order), so a home whose root
    // is already the agent's was claimed completely by an earlier session;
    // an interrupted walk leaves the root unclaimed and is redone next time.
    if (st.st_uid == s.owner.uid && st.st_gid == s.owner.gid) return;
    ClaimWalk walk{s, st.st_dev, 0};
    walk.claim_children(home.get(), s.home.string(), 0);
    walk.claim(home.get(), st, s.home.string());
    if (walk.skipped_deep > 0) {
      log_line("warning: " + std::to_string(walk.skipped_deep) + " entries nested deeper than " +
               std::to_string(ClaimWalk::kMaxDepth) + " levels in " + s.home.string() + " keep their owner");
    }
  }

  int run_command(const step::RunCommand& s) {
    const pid_t parent_pgrp = ::getpgrp();
    const pid_t pid = spawn(
        original_mask_,
        [&s, parent_pgrp] {
          // Own process group, and the terminal's foreground if cage-init had
          // it: ^C then reaches the command alone (not dnsguard, not us).
          if (::setpgid(0, 0) != 0) throw_errno("setpgid");
          if (::isatty(STDIN_FILENO) == 1 && ::tcgetpgrp(STDIN_FILENO) == parent_pgrp) {
            if (::tcsetpgrp(STDIN_FILENO, ::getpgrp()) != 0) throw_errno("tcsetpgrp");
          }
          if (s.switch_user) become_agent(s.user);
          else stay_agent(s.user);
        },
        s.file, s.argv, &s.environment);
    return supervise(pid);
  }

  int supervise(pid_t command) {
    // A restart that waits out its backoff is a timer of the loop, so the
    // command's exit, its signals and the owner's end are handled at once.
    const ReapTimer restart{[this] { return restart_at_; }, [this] { restart_due(); }};
    return reap_until(handled_signals(), command, [&](pid_t pid, int status) -> std::optional<int> {
      if (pid == nested_engine_.outer) {
        nested_engine_ = {};
        log_line("the nested Docker engine " + describe_status(status));
      } else if (pid == dnsguard_pid_) {
        dnsguard_pid_ = -1;
        restart_dnsguard(status);
      } else if (pid == owner_watch_) {
        owner_watch_ = -1;
        // Nobody is left to read the command's output or its status: end
        // it (its group at once; what escaped the group in ~Runner).
        log_line("cagent on the host is gone; ending the session");
        ::kill(-command, SIGKILL);
        ::kill(command, SIGKILL);
        return 128 + SIGHUP;
      } else if (pid == command) {
        return exit_code_of(status);
      }
      return std::nullopt;
    }, restart);
  }

  // The Pod's dnsguard sidecar: no command, only dnsguard to keep running
  // (restarted as in a session) until the container is told to stop; then
  // ~Runner stops it, which writes its final record.
  int serve_dnsguard() {
    const ReapTimer restart{[this] { return restart_at_; }, [this] { restart_due(); }};
    return reap_until(handled_signals(), 0, [this](pid_t pid, int status) -> std::optional<int> {
      if (pid == dnsguard_pid_) {
        dnsguard_pid_ = -1;
        restart_dnsguard(status);
      }
      return std::nullopt;
    }, restart);
  }

  // dnsguard died during the session (a crash, the OOM killer, a kill).
  // Until it is back everything stays closed: the ruleset is untouched, so
  // lookups fail and the gate's port refuses; nothing falls back to another
  // resolver. It comes back with what it needs (the kernel's sets, its
  // decision record and run-time allowlist in the log directory, which only
  // its uid writes). A crash loop — kCrashLoopExits exits within
  // kCrashLoopWindow — is not restarted: a dnsguard that cannot run stays
  // down, closed, and says so once.
  static constexpr std::size_t kCrashLoopExits = 5;
  static constexpr auto kCrashLoopWindow = std::chrono::seconds(60);

  void restart_dnsguard(int status) noexcept {
    const auto now = Clock::now();
    std::erase_if(dnsguard_exits_, [&](Clock::time_point t) { return now - t > kCrashLoopWindow; });
    dnsguard_exits_.push_back(now);
    if (!dnsguard_step_ || dnsguard_exits_.size() >= kCrashLoopExits) {
      log_line("dnsguard " + describe_status(status) + ", " + std::to_string(dnsguard_exits_.size()) +
               " times within " + std::to_string(kCrashLoopWindow.count()) + " s; not restarting it: DNS is unavailable for the rest of the session"
               " (the firewall stays closed)");
      return;
    }
    // The first restart at once (an allowed lookup works again well within a
    // second), then backing off: 250, 500, 1000 ms, waited out by the
    // supervising loop (restart_at_), not here.
    const int delay_ms = dnsguard_exits_.size() == 1 ? 0 : 125 << (dnsguard_exits_.size() - 1);
    restart_status_ = status;
    restart_at_ = Clock::now() + std::chrono::milliseconds(delay_ms);
    if (delay_ms == 0) restart_due();
  }

  void restart_due() noexcept {
    restart_at_.reset();
    const int status = restart_status_;
    try {
      perform(*dnsguard_step_);
      log_line("dnsguard " + describe_status(status) + "; restarted it (" + std::to_string(dnsguard_exits_.size()) +
               " of " + std::to_string(kCrashLoopExits - 1) + " restarts within " +
               std::to_string(kCrashLoopWindow.count()) + " s)");
    } catch (const std::exception& error) {
      log_line("dnsguard " + describe_status(status) + "; could not restart it (" + error.what() +
               "): DNS is unavailable for the rest of the session (the firewall stays closed)");
    }
  }

  void stop_dnsguard() noexcept {
    if (dnsguard_pid_ <= 0) return;
    ::kill(dnsguard_pid_, SIGTERM);
    // Wake the moment it exits (a pidfd turns readable), not on a polling
    // tick: this wait sits between the command's exit and the container's.
    UniqueFd exited(static_cast<int>(::syscall(SYS_pidfd_open, dnsguard_pid_, 0)));
    const auto deadline = Clock::now() + std::chrono::seconds(5);
    while (Clock::now() < deadline) {
      if (::waitpid(dnsguard_pid_, nullptr, WNOHANG) == dnsguard_pid_) {
        dnsguard_pid_ = -1;
        return;
      }
      if (exited.get() >= 0) {
        pollfd pfd{exited.get(), POLLIN, 0};
        ::poll(&pfd, 1, 100);
      } else {
        ::poll(nullptr, 0, 1);  // no pidfd (kernel < 5.3): short ticks
      }
    }
    ::kill(dnsguard_pid_, SIGKILL);
    ::waitpid(dnsguard_pid_, nullptr, 0);
    dnsguard_pid_ = -1;
  }

  // SIGKILL every remaining child but dnsguard (with the subreaper set:
  // every process the command left behind) and reap it, until none is
  // left. Bounded: a fork loop that outruns 200 rounds leaves the caller's
  // fallback to act.
  bool end_leftover_children() noexcept {
    const pid_t self = ::getpid();
    for (int round = 0; round < 200; ++round) {
      bool found = false;
      std::error_code ec;
      for (const auto& entry : std::filesystem::directory_iterator("/proc", ec)) {
        const std::string name = entry.path().filename().string();
        if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
        std::ifstream stat(entry.path() / "stat");
        std::string line;
        if (!std::getline(stat, line)) continue;
        // "pid (comm) state ppid …": comm may hold spaces and parentheses.
        const std::size_t close = line.rfind(')');
        if (close == std::string::npos) continue;
        std::istringstream rest(line.substr(close + 1));
        char state = 0;
        long ppid = 0;
        if (!(rest >> state >> ppid) || ppid != self) continue;
        const auto pid = static_cast<pid_t>(std::stol(name));
        if (pid == dnsguard_pid_) continue;  // stopped on its own, after these
        found = true;
        ::kill(pid, SIGKILL);
      }
      for (pid_t reaped = 0; (reaped = ::waitpid(-1, nullptr, WNOHANG)) > 0;) {
        if (reaped == dnsguard_pid_) dnsguard_pid_ = -1;  // it died meanwhile: nothing to stop
      }
      if (!found) return true;
      ::poll(nullptr, 0, 1);
    }
    return false;
  }

  // The gate's connections that dnsguard has not finished with (see
  // unfinished_connections): with the agent's processes gone their client
  // ends are closed, so each relay ends and each hello still waiting is
  // judged, and recorded, as soon as dnsguard gets to it. Bounded: a relay
  // half-closed towards a server that never answers stays until its idle
  // timeout, and the session's end must not wait for that.
  void wait_for_gate_connections() const noexcept {
    if (!dnsguard_step_ || dnsguard_step_->gate_port == 0 || dnsguard_pid_ <= 0) return;
    constexpr auto kMaxWait = std::chrono::seconds(1);
    const auto deadline = Clock::now() + kMaxWait;
    while (Clock::now() < deadline) {
      std::size_t open = 0;
      for (const char* table : {"/proc/net/tcp", "/proc/net/tcp6"}) {
        try {
          open += unfinished_connections(read_file(table), dnsguard_step_->gate_port);
        } catch (const std::exception&) {
          // No such table (no IPv6): nothing open there.
        }
      }
      if (open == 0) return;
      ::poll(nullptr, 0, 10);
    }
  }

  void hand_back_log_dir() noexcept {
    if (!log_dir_) return;
    try {
      chown_tree(log_dir_->dir, log_dir_->during, log_dir_->after);
    } catch (const std::exception& error) {
      log_line(std::string("warning: could not hand the log directory back: ") + error.what());
    }
  }

  const Plan& plan_;
  ExecutorOptions options_;
  sigset_t original_mask_{};
  pid_t dnsguard_pid_ = -1;
  pid_t relay_pid_ = -1;  // see step::StartRelay; not restarted (a new CA would not be trusted)
  std::optional<step::StartDnsguard> dnsguard_step_;
  std::vector<Clock::time_point> dnsguard_exits_;  // within the crash-loop window
  // A restart waiting out its backoff (supervise()'s timer), and the exit it answers.
  std::optional<Clock::time_point> restart_at_;
  int restart_status_ = 0;
  pid_t owner_watch_ = -1;  // see step::WatchOwner
  std::optional<step::PrepareLogDir> log_dir_;
  bool nested_ok_ = true;        // no nested step failed (yet)
  NestedEngine nested_engine_;
};

}  // namespace

int run_plan(const Plan& plan, const ExecutorOptions& options) {
  for (const auto& warning : plan.warnings) log_line("warning: " + warning);
  Runner runner(plan, options);
  return runner.run();
}

}  // namespace cagent::cage
