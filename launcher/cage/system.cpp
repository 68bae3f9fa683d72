#include "launcher/cage/system.hpp"

#include "dnsguard/atomic_file.hpp"
#include "dnsguard/posix.hpp"

#include <fcntl.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <pwd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <memory>
#include <fstream>
#include <sstream>
#include <system_error>
#include <vector>

extern char** environ;

namespace cagent::cage {
namespace {

void write_all(int fd, std::string_view content, const std::string& what) {
  while (!content.empty()) {
    const ssize_t n = ::write(fd, content.data(), content.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      throw_errno("write ", what);
    }
    content.remove_prefix(static_cast<std::size_t>(n));
  }
}

void own_by_root(int fd, mode_t mode, const std::string& what) {
  if (::fchown(fd, 0, 0) != 0) throw_errno("fchown ", what);
  if (::fchmod(fd, mode) != 0) throw_errno("fchmod ", what);
}

bool lchown_if(const std::filesystem::path& path, const struct stat& st, Owner from, Owner to) {
  const uid_t uid = st.st_uid == from.uid ? to.uid : static_cast<uid_t>(-1);
  const gid_t gid = st.st_gid == from.gid ? to.gid : static_cast<gid_t>(-1);
  if (uid == static_cast<uid_t>(-1) && gid == static_cast<gid_t>(-1)) return true;
  return ::lchown(path.c_str(), uid, gid) == 0;
}

// Docker's default bridge sets disable_ipv6: ::1 is gone and binding it fails.
bool ipv6_loopback_usable() {
  const UniqueFd fd(::socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return false;
  sockaddr_in6 address{};
  address.sin6_family = AF_INET6;
  address.sin6_addr = in6addr_loopback;
  return ::bind(fd.get(), reinterpret_cast<const sockaddr*>(&address), sizeof address) == 0;
}

}  // namespace

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw_errno("open ", path.native());
  std::ostringstream content;
  content << in.rdbuf();
  if (in.bad()) throw_errno("read ", path.native());
  return content.str();
}

ForkedChild fork_with_pipe() {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) throw_errno("pipe2");
  ForkedChild child{-1, UniqueFd(fds[0]), UniqueFd(fds[1])};
  child.pid = ::fork();
  if (child.pid < 0) throw_errno("fork");
  return child;
}

std::vector<char*> c_strings(const std::vector<std::string>& strings) {
  std::vector<char*> out;
  for (const auto& s : strings) out.push_back(const_cast<char*>(s.c_str()));
  out.push_back(nullptr);
  return out;
}

std::string read_to_eof(int fd, std::size_t max_bytes) {
  std::string out;
  char buffer[512];
  while (true) {
    const ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n > 0) {
      if (out.size() < max_bytes) out.append(buffer, std::min(static_cast<std::size_t>(n), max_bytes - out.size()));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    return out;
  }
}

void replace_file(const std::filesystem::path& path, std::string_view content, mode_t mode) {
  dnsguard::ReplaceOptions options;
  options.mode = mode;
  options.uid = 0;
  options.gid = 0;
  dnsguard::write_file_atomically(path, content, options);
}

void overwrite_file(const std::filesystem::path& path, std::string_view content, mode_t mode) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0 && S_ISLNK(st.st_mode)) {
    if (::unlink(path.c_str()) != 0) throw_errno("unlink symlink ", path.native());
  }
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (fd.get() < 0) throw_errno("open ", path.native());
  own_by_root(fd.get(), mode, path.string());
  write_all(fd.get(), content, path.string());
  if (fd.close() != 0) throw_errno("close ", path.native());
}

void chown_tree(const std::filesystem::path& root, Owner from, Owner to) {
  struct stat root_st {};
  if (::lstat(root.c_str(), &root_st) != 0) throw_errno("lstat ", root.native());
  if (!lchown_if(root, root_st, from, to)) throw_errno("lchown ", root.native());
  if (!S_ISDIR(root_st.st_mode)) return;
  // The iterator does not follow directory symlinks; lchown never follows
  // the link itself. Other filesystems mounted below (e.g. a cache volume)
  // are left alone.
  std::error_code ec;
  std::filesystem::recursive_directory_iterator it(root, ec), end;
  if (ec) throw std::system_error(ec, "walk " + root.string());
  for (; it != end; it.increment(ec)) {
    if (ec) throw std::system_error(ec, "walk " + root.string());
    struct stat st {};
    if (::lstat(it->path().c_str(), &st) != 0) throw_errno("lstat ", it->path().native());
    if (st.st_dev != root_st.st_dev) {
      it.disable_recursion_pending();
      continue;
    }
    if (!lchown_if(it->path(), st, from, to)) throw_errno("lchown ", it->path().native());
  }
}

Account lookup_account(const std::string& name) {
  long size_hint = ::sysconf(_SC_GETPW_R_SIZE_MAX);
  std::vector<char> buffer(size_hint > 0 ? static_cast<std::size_t>(size_hint) : 16384);
  struct passwd entry {};
  struct passwd* found = nullptr;
  int error = 0;
  while ((error = ::getpwnam_r(name.c_str(), &entry, buffer.data(), buffer.size(), &found)) == ERANGE &&
         buffer.size() < (1u << 20)) {
    buffer.resize(buffer.size() * 2);
  }
  if (error != 0) {
    errno = error;
    throw_errno("getpwnam ", name);
  }
  if (found == nullptr) throw std::runtime_error("no user \"" + name + "\" in the password database");
  return Account{name, entry.pw_uid, entry.pw_gid, entry.pw_dir, entry.pw_shell};
}

std::vector<nft::Cidr> onlink_ipv6_prefixes() {
  ifaddrs* list = nullptr;
  if (::getifaddrs(&list) != 0) throw_errno("getifaddrs");
  const std::unique_ptr<ifaddrs, decltype(&::freeifaddrs)> owned(list, &::freeifaddrs);
  std::vector<nft::Cidr> out;
  for (const ifaddrs* ifa = list; ifa != nullptr; ifa = ifa->ifa_next) {
    if (ifa->ifa_addr == nullptr || ifa->ifa_netmask == nullptr || ifa->ifa_addr->sa_family != AF_INET6) continue;
    const auto* addr = reinterpret_cast<const sockaddr_in6*>(ifa->ifa_addr);
    const auto* mask = reinterpret_cast<const sockaddr_in6*>(ifa->ifa_netmask);
    nft::Cidr c;
    c.base.family = nft::Family::v6;
    std::uint8_t len = 0;
    for (std::size_t i = 0; i < 16; ++i) {
      c.base.bytes[i] = static_cast<std::uint8_t>(addr->sin6_addr.s6_addr[i] & mask->sin6_addr.s6_addr[i]);
      len = static_cast<std::uint8_t>(len + __builtin_popcount(mask->sin6_addr.s6_addr[i]));
    }
    c.prefix_len = len;
    // Loopback (::1/128) and link-local (fe80::/10, always allowed) add nothing.
    const bool loopback = len == 128 && c.base.bytes[15] == 1 &&
                          std::all_of(c.base.bytes.begin(), c.base.bytes.begin() + 15, [](std::uint8_t b) { return b == 0; });
    const bool link_local = c.base.bytes[0] == 0xfe && (c.base.bytes[1] & 0xc0) == 0x80;
    if (loopback || link_local || len == 0) continue;
    out.push_back(c);
  }
  return out;
}

void restrict_unprivileged_ports() {
  // Docker sets net.ipv4.ip_unprivileged_port_start=0 in every container, so
  // any uid could bind port 53 (or 443) on a local address — e.g. Docker's
  // embedded resolver address 127.0.0.11:53 — and pose as a service the
  // cage trusts. cagent asks Docker for 1024 (`--sysctl`); here we make
  // sure, and refuse to go on when it cannot be had (/proc/sys read-only
  // and still low).
  const char* path = "/proc/sys/net/ipv4/ip_unprivileged_port_start";
  auto current = [&] {
    std::ifstream in(path);
    long value = -1;
    if (!(in >> value)) throw std::runtime_error(std::string("cannot read ") + path);
    return value;
  };
  if (current() >= 1024) return;
  {
    std::ofstream out(path);
    out << "1024\n";
  }
  const long now = current();
  if (now < 1024) {
    throw std::runtime_error(std::string(path) + " is " + std::to_string(now) +
                             " and cannot be raised to 1024 (any uid could bind a low port and pose as a "
                             "resolver); run the container with --sysctl net.ipv4.ip_unprivileged_port_start=1024");
  }
}

int reap_until(const sigset_t& set, pid_t forward_to, const std::function<std::optional<int>(pid_t, int)>& ended) {
  return reap_until(set, forward_to, ended, ReapTimer{});
}

int reap_until(const sigset_t& set, pid_t forward_to, const std::function<std::optional<int>(pid_t, int)>& ended,
               const ReapTimer& timer) {
  while (true) {
    siginfo_t info{};
    const std::optional<std::chrono::steady_clock::time_point> due = timer.due ? timer.due() : std::nullopt;
    int sig = 0;
    if (due) {
      const auto left = std::max(std::chrono::steady_clock::duration::zero(), *due - std::chrono::steady_clock::now());
      const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(left).count();
      const timespec wait{static_cast<time_t>(ns / 1'000'000'000), static_cast<long>(ns % 1'000'000'000)};
      sig = ::sigtimedwait(&set, &info, &wait);
      if (sig < 0 && errno == EAGAIN) {
        timer.fire();
        continue;
      }
    } else {
      sig = ::sigwaitinfo(&set, &info);
    }
    if (sig < 0) {
      if (errno == EINTR) continue;
      throw_errno("sigwaitinfo");
    }
    if (sig == SIGTTOU || sig == SIGTTIN) continue;
    if (sig != SIGCHLD) {
      // Nobody to forward to (never kill(0) or kill(-1)): a stop request
      // ends the loop, anything else is ignored.
      if (forward_to <= 0) {
        if (sig == SIGTERM || sig == SIGINT || sig == SIGHUP || sig == SIGQUIT) return 0;
        continue;
      }
      ::kill(forward_to, sig);
      continue;
    }
    int status = 0;
    pid_t pid = 0;
    while ((pid = ::waitpid(-1, &status, WNOHANG)) > 0) {
      if (const std::optional<int> result = ended(pid, status)) return *result;
    }
  }
}

Facts gather_facts(const Options& options) {
  Facts facts;
  try {
    facts.policy = read_policy(options.policy);
  } catch (const PolicyError& error) {
    // A file that is TOML but breaks the schema fails the policy check
    // (the same check `dnsguard --check` makes); one that cannot be read
    // as TOML fails reading it.
    throw StepError(error.kind() == PolicyError::Kind::invalid ? "check-policy" : "read-policy", error.what());
  } catch (const std::exception& error) {
    throw StepError("read-policy", error.what());
  }
  try {
    if (std::filesystem::exists(options.resolv_conf)) {
      facts.resolv_conf_upstreams = parse_resolv_conf(read_file(options.resolv_conf));
    }
  } catch (const std::exception& error) {
    throw StepError("read-resolv-conf", error.what());
  }
  try {
    facts.agent = lookup_account(options.agent_user);
    facts.dnsguard = lookup_account(options.dnsguard_user);
  } catch (const std::exception& error) {
    throw StepError("lookup-users", error.what());
  }
  struct stat st {};
  if (::stat(options.workspace.c_str(), &st) == 0) {
    facts.workspace_owner = Owner{st.st_uid, st.st_gid};
  } else if (errno != ENOENT) {
    throw StepError("stat-workspace", std::system_error(errno, std::generic_category(), options.workspace.string()).what());
  }
  try {
    // Read before anything of the agent runs: whoever holds a socket on a
    // local upstream's address now is the resolver dockerd started.
    for (const auto& [table, family] : {std::pair{"/proc/net/udp", nft::Family::v4}, std::pair{"/proc/net/tcp", nft::Family::v4},
                                        std::pair{"/proc/net/udp6", nft::Family::v6}, std::pair{"/proc/net/tcp6", nft::Family::v6}}) {
      if (!std::filesystem::exists(table)) continue;  // e.g. no IPv6 in this kernel
      for (const LocalSocket& s : parse_socket_table(read_file(table), family)) facts.local_sockets.push_back(s);
    }
  } catch (const std::exception& error) {
    throw StepError("list-sockets", error.what());
  }
  facts.ipv6_loopback = ipv6_loopback_usable();
  try {
    facts.onlink6 = onlink_ipv6_prefixes();
  } catch (const std::exception& error) {
    throw StepError("list-addresses", error.what());
  }
  for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) facts.environment.emplace_back(*entry);
  if (!options.nested_dockerd.empty()) {
    // Fixed places, never PATH: cage-init runs it as root.
    for (const char* ip : {"/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"}) {
      if (::access(ip, X_OK) == 0) {
        facts.ip_binary = ip;
        break;
      }
    }
  }
  return facts;
}

}  // namespace cagent::cage
