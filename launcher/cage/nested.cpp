#include "launcher/cage/nested.hpp"

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <utility>
#include <vector>

#include "launcher/cage/system.hpp"
#include "dnsguard/posix.hpp"

extern char** environ;

namespace cagent::cage {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// How long the sandbox may take from fork to the engine's exec.
constexpr auto kStartDeadline = std::chrono::seconds(15);

std::string cidr_text(const nft::Cidr& c) { return nft::to_string(c.base) + "/" + std::to_string(c.prefix_len); }

// Runs a tool (argv[0] an absolute path) to completion; throws with its
// first line of output when it fails. For `ip`, on both sides of the link.
void run_tool(const std::vector<std::string>& argv, const sigset_t* mask = nullptr) {
  auto [pid, reader, writer] = fork_with_pipe();
  if (pid == 0) {
    ::dup2(writer.get(), STDOUT_FILENO);
    ::dup2(writer.get(), STDERR_FILENO);
    const int null = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (null >= 0) ::dup2(null, STDIN_FILENO);
    if (mask != nullptr) ::sigprocmask(SIG_SETMASK, mask, nullptr);
    auto args = c_strings(argv);
    ::execv(argv.front().c_str(), args.data());
    const std::string error = "exec " + argv.front() + ": " + std::strerror(errno) + "\n";
    [[maybe_unused]] const ssize_t n = ::write(STDERR_FILENO, error.data(), error.size());
    ::_exit(127);
  }
  writer.reset();
  const std::string output = read_to_eof(reader.get(), 4096);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::string command;
    for (const auto& a : argv) command += (command.empty() ? "" : " ") + a;
    const std::string line = output.substr(0, output.find('\n'));
    throw std::runtime_error(command + " failed" + (line.empty() ? std::string() : ": " + line));
  }
}

void write_text(const fs::path& path, const std::string& text) {
  const UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd.valid()) throw_errno("open ", path.native());
  if (::write(fd.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size())) throw_errno("write ", path.native());
}

std::string read_text(const fs::path& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot read " + path.string());
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

bool under(const fs::path& path, const fs::path& root) {
  const std::string p = path.lexically_normal().string();
  std::string r = root.lexically_normal().string();
  if (p == r) return true;
  if (r.empty() || r.back() != '/') r += '/';
  return p.compare(0, r.size(), r) == 0;
}

// mountinfo escapes space, tab, newline and backslash as \ooo.
std::string unescape_mount_path(const std::string& text) {
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\\' && i + 3 < text.size() && std::isdigit(static_cast<unsigned char>(text[i + 1]))) {
      out.push_back(static_cast<char>(std::stoi(text.substr(i + 1, 3), nullptr, 8)));
      i += 3;
    } else {
      out.push_back(text[i]);
    }
  }
  return out;
}

struct MountPoint {
  unsigned long long id = 0;
  fs::path point;
};

std::vector<MountPoint> mount_points() {
  std::istringstream lines(read_text("/proc/self/mountinfo"));
  std::vector<MountPoint> out;
  std::string line;
  while (std::getline(lines, line)) {
    std::istringstream fields(line);
    unsigned long long id = 0;
    std::string parent, devno, root, point;
    if (fields >> id >> parent >> devno >> root >> point) out.push_back({id, unescape_mount_path(point)});
  }
  return out;
}

// Whether `point` reaches the mount `id` (not one stacked over it or over
// a parent): a shadowed mount cannot be reached by any path, and stays so
// once the copy into the sandbox's user namespace locks what covers it.
bool reachable(const MountPoint& m) {
  struct statx st {};
  if (::statx(AT_FDCWD, m.point.c_str(), AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT, STATX_MNT_ID, &st) != 0) {
    if (errno == ENOENT || errno == ENOTDIR) return false;
    throw_errno("statx ", m.point.native());
  }
  if ((st.stx_mask & STATX_MNT_ID) == 0) return true;  // kernel < 5.8: assume so (a remount error still stops us)
  return st.stx_mnt_id == m.id;
}

// A read-only bind remount must repeat the per-mount flags it keeps: a
// remount that would clear nosuid/nodev/noexec on a mount that has them is
// refused (and must never happen anyway).
unsigned long kept_flags(const fs::path& point) {
  struct statvfs st {};
  if (::statvfs(point.c_str(), &st) != 0) throw_errno("statvfs ", point.native());
  unsigned long flags = 0;
  if (st.f_flag & ST_NOSUID) flags |= MS_NOSUID;
  if (st.f_flag & ST_NODEV) flags |= MS_NODEV;
  if (st.f_flag & ST_NOEXEC) flags |= MS_NOEXEC;
  if (st.f_flag & ST_NOATIME) flags |= MS_NOATIME;
  if (st.f_flag & ST_NODIRATIME) flags |= MS_NODIRATIME;
  if (st.f_flag & ST_RELATIME) flags |= MS_RELATIME;
  return flags;
}

// One line to cage-init on the report pipe ("ns", "started", "error …").
void report(int fd, const std::string& line) {
  const std::string text = line + "\n";
  [[maybe_unused]] const ssize_t n = ::write(fd, text.data(), text.size());
}

void wait_for_go(int fd) {
  char c = 0;
  while (true) {
    const ssize_t n = ::read(fd, &c, 1);
    if (n == 1 && c == 'g') return;
    if (n < 0 && errno == EINTR) continue;
    throw std::runtime_error("cage-init did not finish the sandbox's user namespace");
  }
}

void check_hook(const std::string& fail_at, const char* stage) {
  if (fail_at == stage) throw std::runtime_error(std::string(stage) + ": failing as CAGENT_TEST_NESTED_FAIL asked");
}

// Fds in C1 and below: 0-2 /dev/null or the engine's log, 3 report, 4 go.
constexpr int kReportFd = 3;
constexpr int kGoFd = 4;
constexpr int kLogFd = 5;

// Stage A, in C2 (pid 1 of the new PID namespace, still in the cage's user
// namespace, in the mount namespace C1 made private).
void prepare_mounts(const step::StartNestedDocker& s, const std::string& fail_at) {
  check_hook(fail_at, "mounts");
  // Writable places, held by fd before /run is replaced (one of them, the
  // socket directory, is below it).
  std::vector<std::pair<fs::path, UniqueFd>> writable;
  for (const fs::path& w : s.writable) {
    UniqueFd fd(::open(w.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!fd.valid()) {
      if (errno == ENOENT) continue;
      throw_errno("open ", w.native());
    }
    writable.emplace_back(w, std::move(fd));
  }
  // Fresh and the sandbox root's (the agent's ids outside: the cage's root
  // is nobody in there): /run, the engine's runtime state, and nothing of
  // the cage's (cage-init's runtime dir with the policy copy is there);
  // /etc/docker, where dockerd keeps its key.
  const std::string owner = "mode=0755,uid=" + std::to_string(s.agent.uid) + ",gid=" + std::to_string(s.agent.gid);
  for (const char* fresh : {"/run", "/etc/docker"}) {
    ::mkdir(fresh, 0755);  // /etc/docker: still the cage's (writable) root here
    if (::mount("tmpfs", fresh, "tmpfs", MS_NOSUID | MS_NODEV, owner.c_str()) != 0) throw_errno("mount tmpfs on ", fresh);
  }
  // The engine's own lookups (image pulls, ADD of a URL) read
  // /etc/resolv.conf: in here it names the cage's end of the link, where
  // dnsguard answers (the cage's own file names 127.0.0.1, which in the
  // sandbox's namespace is nobody).
  const std::string resolv = "/run/.cagent-resolv.conf";
  {
    const UniqueFd fd(::open(resolv.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
    const std::string text = "nameserver " + nft::to_string(s.gateway) + "\n";
    if (!fd.valid() || ::write(fd.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size())) {
      throw_errno("write ", resolv);
    }
  }
  if (::access("/etc/resolv.conf", F_OK) == 0 &&
      ::mount(resolv.c_str(), "/etc/resolv.conf", nullptr, MS_BIND, nullptr) != 0) {
    throw_errno("bind the sandbox's resolv.conf");
  }
  // A fresh /proc for the new PID namespace, then the cage's one detached:
  // through it the cage's processes (their roots, fds, namespaces) would
  // be one path away. (Mounted aside first: the kernel lets a namespace
  // mount procfs only while a full one is visible.) Where the detach is
  // refused — sysbox keeps a container's initial /proc, and its submounts,
  // immutable — the fresh one is stacked over it instead: the copy into
  // the sandbox's user namespace locks both, so the cover cannot be lifted.
  const bool may_detach = fail_at != "detach";  // tests: behave as under sysbox
  if (::mkdir("/run/.proc", 0555) != 0) throw_errno("mkdir /run/.proc");
  if (::mount("proc", "/run/.proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) != 0) throw_errno("mount proc");
  if (may_detach && ::umount2("/proc", MNT_DETACH) != 0 && errno != EPERM && errno != EINVAL) {
    throw_errno("detach the cage's /proc");
  }
  if (::mount("/run/.proc", "/proc", nullptr, MS_MOVE, nullptr) != 0) throw_errno("move proc to /proc");
  ::rmdir("/run/.proc");
  // Hidden: detached where they are mount points (the log directory is a
  // bind from the host) and the detach is allowed, then covered, so not
  // even the image's directory below shows; empty and read-only. (Covered
  // only: locked like /proc above.)
  for (const fs::path& h : s.hidden) {
    struct stat st {};
    if (::stat(h.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) continue;
    if (may_detach && ::umount2(h.c_str(), MNT_DETACH) != 0 && errno != EINVAL && errno != EPERM) {
      throw_errno("detach ", h.native());
    }
    if (::mount("tmpfs", h.c_str(), "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=4k,mode=0555") != 0) {
      throw_errno("cover ", h.native());
    }
  }
  // Writable: each bound onto itself (recursively: read-only mounts below,
  // such as the workspace's ignore placeholders and .git, stay as they are).
  for (auto& [path, fd] : writable) {
    std::error_code ec;
    fs::create_directories(path, ec);  // below the new /run
    const std::string source = "/proc/self/fd/" + std::to_string(fd.get());
    if (::mount(source.c_str(), path.c_str(), nullptr, MS_BIND | MS_REC, nullptr) != 0) throw_errno("bind ", path.native());
  }
  // Everything else read-only: the cage's programs and configuration must
  // not change under the agent's nested root (the host's `cagent allow`
  // runs the cage's dnsguard binary as root in the cage).
  for (const MountPoint& m : mount_points()) {
    const fs::path& point = m.point;
    if (!reachable(m)) continue;
    const bool keep = under(point, "/proc") || under(point, "/run") || under(point, "/etc/docker") ||
                      under(point, "/sys/fs/cgroup") ||
                      std::any_of(writable.begin(), writable.end(), [&](const auto& w) { return under(point, w.first); }) ||
                      std::any_of(s.hidden.begin(), s.hidden.end(), [&](const fs::path& h) { return point == h; });
    if (keep) continue;
    const unsigned long flags = kept_flags(point);
    if (::mount(nullptr, point.c_str(), nullptr, MS_REMOUNT | MS_BIND | MS_RDONLY | flags, nullptr) != 0) {
      throw_errno("remount read-only ", point.native());
    }
  }
}

// Stage B and the engine, in C2. Never returns.
[[noreturn]] void sandbox_init(const step::StartNestedDocker& s, const sigset_t& child_mask, const std::string& fail_at) {
  pid_t engine = -1;
  try {
    // Not dumpable: root in the sandbox shares this process's uid, and
    // /proc/1 must not hand it this process's fds or memory.
    if (::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) throw_errno("prctl(PR_SET_DUMPABLE)");
    prepare_mounts(s, fail_at);
    check_hook(fail_at, "userns");
    if (::unshare(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWNET) != 0) throw_errno("unshare(user, mount, net)");
    report(kReportFd, "ns");
    wait_for_go(kGoFd);
    ::close(kGoFd);
    // Become the sandbox's root (the agent's ids outside): cage-init's own
    // ids (the cage's root) are not mapped in here. Capabilities stay
    // (those of the sandbox's namespace).
    if (::setgroups(0, nullptr) != 0) throw_errno("setgroups");
    if (::setresgid(0, 0, 0) != 0) throw_errno("setresgid");
    if (::setresuid(0, 0, 0) != 0) throw_errno("setresuid");
    check_hook(fail_at, "network");
    const std::string ip = s.ip.string();
    run_tool({ip, "link", "set", "lo", "up"}, &child_mask);
    run_tool({ip, "addr", "add", cidr_text(s.sandbox_address), "dev", s.peer}, &child_mask);
    run_tool({ip, "link", "set", s.peer, "up"}, &child_mask);
    run_tool({ip, "route", "add", "default", "via", nft::to_string(s.gateway)}, &child_mask);
    check_hook(fail_at, "engine");
    // The engine, with an exec-status pipe: EOF means it runs.
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) throw_errno("pipe2");
    UniqueFd status_r(fds[0]), status_w(fds[1]);
    engine = ::fork();
    if (engine < 0) throw_errno("fork");
    if (engine == 0) {
      status_r.reset();
      ::dup2(kLogFd, STDOUT_FILENO);
      ::dup2(kLogFd, STDERR_FILENO);
      ::close(kLogFd);
      ::close(kReportFd);
      ::sigprocmask(SIG_SETMASK, &child_mask, nullptr);
      std::vector<std::string> argv = {s.dockerd.string()};
      argv.insert(argv.end(), s.dockerd_args.begin(), s.dockerd_args.end());
      auto args = c_strings(argv);
      ::execve(argv.front().c_str(), args.data(), environ);
      const std::string error = "exec " + argv.front() + ": " + std::strerror(errno);
      [[maybe_unused]] const ssize_t n = ::write(status_w.get(), error.data(), error.size());
      ::_exit(127);
    }
    status_w.reset();
    std::string error;
    char buffer[256];
    ssize_t n = 0;
    while ((n = ::read(status_r.get(), buffer, sizeof buffer)) != 0) {
      if (n > 0) error.append(buffer, static_cast<std::size_t>(n));
      else if (errno != EINTR) break;
    }
    if (!error.empty()) throw std::runtime_error(error);
    report(kReportFd, "started");
    ::close(kReportFd);
    ::close(kLogFd);
  } catch (const std::exception& e) {
    report(kReportFd, std::string("error ") + e.what());
    ::_exit(1);
  }
  // pid 1 of the sandbox: reap whatever ends up here, pass SIGTERM/SIGINT
  // on to the engine, leave with it. (These signals are blocked since
  // cage-init's start; sigwaitinfo takes them.)
  sigset_t set;
  sigemptyset(&set);
  for (int sig : {SIGCHLD, SIGTERM, SIGINT, SIGHUP}) sigaddset(&set, sig);
  ::sigprocmask(SIG_BLOCK, &set, nullptr);
  try {
    ::_exit(reap_until(set, engine, [&](pid_t pid, int status) -> std::optional<int> {
      if (pid != engine) return std::nullopt;
      return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }));
  } catch (const std::exception&) {
    ::_exit(1);
  }
}

// Moves `fd` to `target` (which must not be one of the other fds still to move).
void move_fd(int fd, int target) {
  if (fd == target) {
    const int flags = ::fcntl(fd, F_GETFD);
    ::fcntl(fd, F_SETFD, flags & ~FD_CLOEXEC);
    return;
  }
  if (::dup2(fd, target) < 0) throw_errno("dup2");
}

// C1: the outer process. Never returns.
[[noreturn]] void sandbox_outer(const step::StartNestedDocker& s, const sigset_t& child_mask, const std::string& fail_at,
                                int report_fd, int go_fd, int log_fd, const fs::path& engine_cgroup) {
  int report_target = report_fd;  // until it is moved to kReportFd
  try {
    // Own session: the user's ^C never reaches the engine; no terminal fds.
    if (::setsid() < 0) throw_errno("setsid");
    // Only what the sandbox needs stays open: 0-2 /dev/null, 3 report,
    // 4 go, 5 the engine's log. Move them above the targets first so no
    // dup2 overwrites one still to be moved.
    const int high_report = ::fcntl(report_fd, F_DUPFD, 100);
    const int high_go = ::fcntl(go_fd, F_DUPFD, 100);
    const int high_log = ::fcntl(log_fd, F_DUPFD, 100);
    if (high_report < 0 || high_go < 0 || high_log < 0) throw_errno("fcntl(F_DUPFD)");
    const int null = ::open("/dev/null", O_RDWR);
    if (null < 0) throw_errno("open /dev/null");
    for (int std_fd : {STDIN_FILENO, STDOUT_FILENO, STDERR_FILENO}) ::dup2(null, std_fd);
    move_fd(high_report, kReportFd);
    move_fd(high_go, kGoFd);
    move_fd(high_log, kLogFd);
    if (::syscall(SYS_close_range, kLogFd + 1, ~0U, 0) != 0) {
      for (int fd = kLogFd + 1; fd < 65536; ++fd) ::close(fd);
    }
    report_target = kReportFd;
    // Into the engine's delegated cgroup (when there is one): the sandbox
    // and everything the engine starts live below it.
    if (!engine_cgroup.empty()) write_text(engine_cgroup / "cgroup.procs", "0\n");
    check_hook(fail_at, "unshare");
    if (::unshare(CLONE_NEWNS | CLONE_NEWPID) != 0) throw_errno("unshare(mount, pid)");
    // Nothing mounted from here on propagates back into the cage.
    if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) throw_errno("make mounts private");
    const pid_t init = ::fork();
    if (init < 0) throw_errno("fork");
    if (init == 0) sandbox_init(s, child_mask, fail_at);
    report(kReportFd, "pid " + std::to_string(init));
    ::close(kReportFd);
    ::close(kGoFd);
    ::close(kLogFd);
    int status = 0;
    while (::waitpid(init, &status, 0) < 0) {
      if (errno != EINTR) ::_exit(1);
    }
    ::_exit(WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
  } catch (const std::exception& e) {
    report(report_target, std::string("error ") + e.what());
    ::_exit(1);
  }
}

}  // namespace

CgroupDelegation delegate_cgroup(const fs::path& root, std::string_view own_cgroup, Owner agent) {
  // Only cgroup v2, and only at the root of a cgroup namespace (a sysbox
  // container's own): elsewhere — a cgroup v1 host, a test's namespace on
  // the host's hierarchy — nothing is created or moved.
  if (own_cgroup != "0::/\n" && own_cgroup != "0::/") return {};
  std::error_code ec;
  if (!fs::exists(root / "cgroup.controllers", ec)) return {};
  const fs::path parent = root / "cagent-nested";
  const fs::path engine = parent / "engine";
  fs::create_directories(engine, ec);
  if (ec) throw std::system_error(ec, "create " + engine.string());
  // What cgroup v2 delegation hands over: the directory and its
  // cgroup.procs, cgroup.threads and cgroup.subtree_control (so the engine
  // makes and fills its containers' cgroups below, and nothing above).
  for (const fs::path& dir : {parent, engine}) {
    for (const fs::path& p : {dir, dir / "cgroup.procs", dir / "cgroup.threads", dir / "cgroup.subtree_control"}) {
      if (!fs::exists(p, ec)) continue;
      if (::lchown(p.c_str(), agent.uid, agent.gid) != 0) throw_errno("chown ", p.native());
    }
  }
  return {"/cagent-nested", engine};
}

std::string sandbox_id_map(std::string_view own_map, std::uint64_t agent, std::span<const std::uint64_t> unmapped) {
  struct Range {
    std::uint64_t first, count;
  };
  std::vector<Range> ranges;
  std::istringstream lines{std::string(own_map)};
  std::uint64_t inside = 0, outside = 0, count = 0;
  while (lines >> inside >> outside >> count) {
    if (count > 0) ranges.push_back({inside, count});
  }
  if (ranges.empty()) throw std::runtime_error("cage-init's own id map is empty");
  const auto mapped = [&](std::uint64_t id) {
    return std::any_of(ranges.begin(), ranges.end(), [&](const Range& r) { return id >= r.first && id - r.first < r.count; });
  };
  if (agent == 0 || !mapped(agent) || !mapped(0)) throw std::runtime_error("the agent's id cannot be the sandbox's root");
  const auto extent = [](std::uint64_t sandbox, std::uint64_t cage, std::uint64_t n) {
    return std::to_string(sandbox) + " " + std::to_string(cage) + " " + std::to_string(n) + "\n";
  };
  std::string out = extent(0, agent, 1);
  // The engine's other ids (its images' system users and groups, their
  // files) land on the shifted block, if the cage has all of it and none of
  // it is an id that matters: the cage's root, the agent, an id kept out.
  const std::uint64_t block_last = kSandboxShiftBase + kSandboxShiftedIds;  // the shifted nobody is base
  bool usable = true;
  for (std::uint64_t id = kSandboxShiftBase; id <= block_last && usable; ++id) usable = mapped(id);
  const auto in_block = [&](std::uint64_t id) { return id >= kSandboxShiftBase && id <= block_last; };
  usable = usable && !in_block(agent) &&
           std::none_of(unmapped.begin(), unmapped.end(), [&](std::uint64_t id) { return in_block(id); });
  if (usable) {
    out += extent(1, kSandboxShiftBase + 1, kSandboxShiftedIds);  // 1..N -> base+1..base+N
    out += extent(kNobodyId, kSandboxShiftBase, 1);
  }
  return out;
}

void create_nested_link(const step::CreateNestedLink& s) {
  const std::string ip = s.ip.string();
  run_tool({ip, "link", "add", s.link, "type", "veth", "peer", "name", s.peer});
  try {
    run_tool({ip, "addr", "add", cidr_text(s.cage_address), "dev", s.link});
    run_tool({ip, "link", "set", s.link, "up"});
    // The sandbox's packets are forwarded by the cage (through its forward
    // chain). cagent asks Docker for it (--sysctl); a test namespace gets it here.
    const fs::path forward = "/proc/sys/net/ipv4/ip_forward";
    if (read_text(forward).substr(0, 1) != "1") {
      try {
        write_text(forward, "1\n");
      } catch (const std::exception&) {
      }
      if (read_text(forward).substr(0, 1) != "1") {
        throw std::runtime_error("net.ipv4.ip_forward is 0 and cannot be set (run the container with --sysctl net.ipv4.ip_forward=1)");
      }
    }
  } catch (...) {
    try {
      run_tool({ip, "link", "del", s.link});
    } catch (const std::exception&) {
    }
    throw;
  }
}

NestedEngine start_nested_engine(const step::StartNestedDocker& s, const sigset_t& child_mask, const std::string& fail_at) {
  if (::access(s.dockerd.c_str(), X_OK) != 0) throw_errno("engine ", s.dockerd.native());
  // The socket's directory and the engine's data root belong to the
  // sandbox's root, which is the agent's uid outside: the agent reaches the
  // socket, and the engine (and every file it makes in the workspace) is
  // never the cage's root.
  std::error_code ec;
  for (const fs::path& dir : {s.socket_dir, s.data_root}) {
    fs::create_directories(dir, ec);
    if (ec) throw std::system_error(ec, "create " + dir.string());
    if (::lchown(dir.c_str(), s.agent.uid, s.agent.gid) != 0) throw_errno("chown ", dir.native());
    if (::chmod(dir.c_str(), 0750) != 0) throw_errno("chmod ", dir.native());
  }
  // The engine's log, the agent's too.
  const fs::path log_path = s.socket_dir / "dockerd.log";
  UniqueFd log(::open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0640));
  if (!log.valid()) throw_errno("open ", log_path.native());
  if (::fchown(log.get(), s.agent.uid, s.agent.gid) != 0) throw_errno("chown ", log_path.native());

  // cgroups: the sandbox's root (the agent outside) cannot write the
  // cage's cgroup files; a subtree of its own is delegated to it.
  CgroupDelegation delegated;
  try {
    delegated = delegate_cgroup("/sys/fs/cgroup", read_text("/proc/self/cgroup"), s.agent);
  } catch (const std::exception& error) {
    delegated = {};  // the engine may still start; its containers' cgroups will say why they fail
    const std::string line = "cage-init: warning: nested Docker: no cgroup for the engine: " + std::string(error.what()) + "\n";
    [[maybe_unused]] const ssize_t n = ::write(STDERR_FILENO, line.data(), line.size());
  }
  std::vector<std::string> dockerd_args = s.dockerd_args;
  if (!delegated.parent.empty()) {
    dockerd_args.push_back("--cgroup-parent");
    dockerd_args.push_back(delegated.parent);
  }
  step::StartNestedDocker with_cgroup = s;
  with_cgroup.dockerd_args = dockerd_args;

  int report_fds[2], go_fds[2];
  if (::pipe2(report_fds, O_CLOEXEC) != 0) throw_errno("pipe2");
  UniqueFd report_r(report_fds[0]), report_w(report_fds[1]);
  if (::pipe2(go_fds, O_CLOEXEC) != 0) throw_errno("pipe2");
  UniqueFd go_r(go_fds[0]), go_w(go_fds[1]);

  NestedEngine engine;
  engine.outer = ::fork();
  if (engine.outer < 0) throw_errno("fork");
  if (engine.outer == 0) {
    report_r.reset();
    go_w.reset();
    sandbox_outer(with_cgroup, child_mask, fail_at, report_w.get(), go_r.get(), log.get(), delegated.engine);
  }
  report_w.reset();
  go_r.reset();
  log.reset();

  try {
    const auto deadline = Clock::now() + kStartDeadline;
    std::string pending;
    bool started = false;
    while (!started) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
      if (left <= 0) throw std::runtime_error("the sandbox did not start within 15 s");
      pollfd pfd{report_r.get(), POLLIN, 0};
      const int ready = ::poll(&pfd, 1, static_cast<int>(left));
      if (ready < 0 && errno == EINTR) continue;
      if (ready <= 0) continue;
      char buffer[512];
      const ssize_t n = ::read(report_r.get(), buffer, sizeof buffer);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) throw std::runtime_error("the sandbox ended before starting the engine");
      pending.append(buffer, static_cast<std::size_t>(n));
      std::size_t eol = 0;
      while ((eol = pending.find('\n')) != std::string::npos) {
        const std::string line = pending.substr(0, eol);
        pending.erase(0, eol + 1);
        if (line.rfind("pid ", 0) == 0) {
          engine.init = static_cast<pid_t>(std::stol(line.substr(4)));
        } else if (line == "ns") {
          if (engine.init <= 0) throw std::runtime_error("the sandbox reported no pid");
          const fs::path proc = "/proc/" + std::to_string(engine.init);
          // setgroups stays allowed (the engine needs it); cage-init, in
          // the parent namespace with CAP_SETGID, may write the map anyway.
          const std::uint64_t dnsguard_uid = s.dnsguard.uid, dnsguard_gid = s.dnsguard.gid;
          write_text(proc / "uid_map", sandbox_id_map(read_text("/proc/self/uid_map"), s.agent.uid, {&dnsguard_uid, 1}));
          write_text(proc / "gid_map", sandbox_id_map(read_text("/proc/self/gid_map"), s.agent.gid, {&dnsguard_gid, 1}));
          run_tool({s.ip.string(), "link", "set", s.peer, "netns", std::to_string(engine.init)});
          if (::write(go_w.get(), "g", 1) != 1) throw_errno("write to the sandbox");
        } else if (line == "started") {
          started = true;
        } else if (line.rfind("error ", 0) == 0) {
          throw std::runtime_error(line.substr(6));
        }
      }
    }
  } catch (...) {
    stop_nested_engine(engine, 0);
    throw;
  }
  return engine;
}

void stop_nested_engine(NestedEngine& engine, int grace_ms) noexcept {
  if (engine.outer <= 0) return;
  if (engine.init > 0 && grace_ms > 0) {
    ::kill(engine.init, SIGTERM);
    const auto deadline = Clock::now() + std::chrono::milliseconds(grace_ms);
    while (Clock::now() < deadline) {
      if (::waitpid(engine.outer, nullptr, WNOHANG) == engine.outer) {
        engine = {};
        return;
      }
      ::poll(nullptr, 0, 10);
    }
  }
  // SIGKILL to the PID namespace's init ends every process in it.
  if (engine.init > 0) ::kill(engine.init, SIGKILL);
  ::kill(engine.outer, SIGKILL);
  ::waitpid(engine.outer, nullptr, 0);
  engine = {};
}

}  // namespace cagent::cage
