#pragma once
// The impure edges of cage-init: reading what the plan is made from, and the
// file operations the steps perform. Everything here throws StepError, whose
// message starts with the step's name so cage-init's one-line failure report
// says where it stopped.

#include <signal.h>
#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "dnsguard/posix.hpp"
#include "launcher/cage/plan.hpp"

namespace cagent::cage {

class StepError : public std::runtime_error {
 public:
  StepError(std::string_view step, const std::string& why)
      : std::runtime_error("step " + std::string(step) + ": " + why) {}
};

// read-policy, read-resolv-conf, lookup-users, stat-workspace.
Facts gather_facts(const Options& options);

Account lookup_account(const std::string& name);

// The IPv6 prefixes of this namespace's interfaces (not loopback or
// link-local): where neighbour discovery may go besides fe80::/10 and ff02::/16.
std::vector<nft::Cidr> onlink_ipv6_prefixes();

// Makes sure ports below 1024 need CAP_NET_BIND_SERVICE in this network
// namespace (raises net.ipv4.ip_unprivileged_port_start to 1024 if it can);
// throws when they do not and cannot be made to.
void restrict_unprivileged_ports();

// An init's loop (cage-init supervising the command, the nested engine's
// sandbox pid 1): takes the signals of `set` (already blocked) one at a
// time; SIGCHLD reaps every child that ended and hands each to `ended(pid,
// status)`, which returns a value to end the loop with it; SIGTTOU and
// SIGTTIN are swallowed (a log line written while the command owns the
// terminal must not stop us); every other signal goes to `forward_to`, or,
// when `forward_to` <= 0, SIGTERM/INT/HUP/QUIT end the loop with 0 and the
// rest are ignored.
int reap_until(const sigset_t& set, pid_t forward_to, const std::function<std::optional<int>(pid_t, int)>& ended);
// The same, with a timer the loop keeps: while `due()` names a time, the
// wait for the next signal ends then, and `fire()` runs (a delayed restart
// that must not hold up the signals meanwhile).
struct ReapTimer {
  std::function<std::optional<std::chrono::steady_clock::time_point>()> due;
  std::function<void()> fire;
};
int reap_until(const sigset_t& set, pid_t forward_to, const std::function<std::optional<int>(pid_t, int)>& ended,
               const ReapTimer& timer);

// Whole-file helpers (throw std::system_error naming the path).
std::string read_file(const std::filesystem::path& path);

// A forked child with a close-on-exec pipe from it to the parent: the
// child reports on `writer` (its output, or why its exec failed), the parent
// reads `reader` to end of file. pid 0 in the child; each side closes the
// end it does not use. Throws when pipe2 or fork fails.
struct ForkedChild {
  pid_t pid = -1;
  UniqueFd reader;
  UniqueFd writer;
};
ForkedChild fork_with_pipe();

// argv for exec*(): pointers into `strings`, then nullptr.
std::vector<char*> c_strings(const std::vector<std::string>& strings);

// Everything readable from `fd` until end of file (a child's report pipe),
// keeping at most `max_bytes` of it; read errors other than EINTR end it.
std::string read_to_eof(int fd, std::size_t max_bytes);

// Replaces `path` atomically (temporary file + rename) with `content`, owned
// by root with `mode`.
void replace_file(const std::filesystem::path& path, std::string_view content, mode_t mode);

// Rewrites `path` in place (truncate + write): the right way for a file that
// may be a bind mount, like Docker's /etc/resolv.conf, where rename() fails
// with EBUSY. A symlink is replaced by a regular file instead of followed, so
// a link pointing elsewhere (e.g. systemd-resolved's stub file) is never
// written through. Root-owned, `mode`.
void overwrite_file(const std::filesystem::path& path, std::string_view content, mode_t mode);

// lchown every entry below and including `root` (not following symlinks, not
// crossing mounts) whose uid is `from.uid` / gid is `from.gid`.
void chown_tree(const std::filesystem::path& root, Owner from, Owner to);

}  // namespace cagent::cage
