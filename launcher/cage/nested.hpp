#pragma once
// Nested Docker: the two optional steps of cage-init's plan that
// give the agent a Docker engine without giving it anything of the cage.
//
//   create-nested-link   veth pair, the cage's end addressed, forwarding on
//   start-nested-docker  P = cage-init
//                        └─ C1: setsid, unshare(mount, pid), mounts private
//                             └─ C2 = pid 1 of the new PID namespace:
//                                 stage A (cage's user namespace, mounts still
//                                 unlocked): fresh /run and /proc, hidden
//                                 paths detached and covered, writable paths
//                                 bound onto themselves, everything else
//                                 remounted read-only;
//                                 stage B: unshare(user, mount, net) — the
//                                 copy locks every mount of stage A; P writes
//                                 the uid/gid maps (sandbox_id_map) and moves the
//                                 link's peer in; C2 addresses it, starts the
//                                 engine (C3) and stays its reaping init.
//
// Why root in the sandbox (the agent, through the engine's socket) cannot
// reach the cage: it is the agent's uid outside (the cage's root is not
// mapped in the sandbox), with capabilities only in its own user namespace, so not
// over the cage's network namespace (firewall), mounts or processes; the
// cage's processes are not in its PID namespace and the cage's /proc is
// gone from its mounts; the log directory (dnsguard's control socket, the
// decision record) and cage-init's runtime dir are detached from its mount
// tree; the cage's files are read-only to it and it cannot remount them
// (locked); C2 is not dumpable, so its /proc entries (fds, root) stay closed.
// Its packets leave only through the link: the cage's forward chain and,
// for DNS, dnsguard.

#include <sys/types.h>

#include <signal.h>

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>

#include "launcher/cage/plan.hpp"

namespace cagent::cage {

// The sandbox's uid_map (or gid_map) from cage-init's own map (its
// /proc/self/uid_map: "inside outside count" lines; only the inside column,
// the cage's ids, matters). Every id the engine's root can give a file is
// one that owns nothing of the cage's and means no one on the host:
//  - the sandbox's root is `agent` outside: what the engine's root writes in
//    the workspace is the agent's (never root's, never setuid root);
//  - the sandbox's ids 1..kSandboxShiftedIds (its images' system users and
//    groups, their users up to 4999) are the cage's kSandboxShiftBase + id,
//    and its nobody (65534) is kSandboxShiftBase: ids no account of the cage
//    and (Debian's policy: 60000-64999 are allocated only on demand) almost
//    surely no account of the host has. Mapped as themselves, a nested
//    container could leave a setgid-`disk` (6) or setuid-<another user>
//    program in your workspace, or act as the cage's `shadow` group;
//  - nothing else is mapped: not the cage's root, not dnsguard's ids (they
//    own the log directory, and the agent can hand the sandbox an fd of it
//    through a unix socket in the workspace), not the agent's own number.
// When the cage lacks that block (a small id map) only root is mapped:
// images that own files by other ids then fail to unpack — never a wider map.
// Throws when `agent` is 0 or not mapped.
inline constexpr std::uint64_t kSandboxShiftBase = 60000;
inline constexpr std::uint64_t kSandboxShiftedIds = 4999;
inline constexpr std::uint64_t kNobodyId = 65534;
std::string sandbox_id_map(std::string_view own_map, std::uint64_t agent,
                           std::span<const std::uint64_t> unmapped = {});

// Throws on any failure (after removing what it created).
void create_nested_link(const step::CreateNestedLink& step);

// The engine's cgroups (cgroup v2 only, and only when cage-init is at the
// root of its cgroup namespace, as in a sysbox container — `own_cgroup` is
// its /proc/self/cgroup): <root>/cagent-nested, delegated to the agent's
// ids (the sandbox's root outside), with the sandbox in its leaf `engine`;
// dockerd gets --cgroup-parent /cagent-nested. Empty otherwise. The agent
// owns that subtree too: it holds only the engine's processes, and moving
// anything into it from elsewhere needs the cage root's cgroup.procs.
struct CgroupDelegation {
  std::string parent;              // for dockerd --cgroup-parent
  std::filesystem::path engine;    // the leaf the sandbox joins
};
CgroupDelegation delegate_cgroup(const std::filesystem::path& root, std::string_view own_cgroup, Owner agent);

struct NestedEngine {
  pid_t outer = -1;    // C1, cage-init's child (reaped by cage-init)
  pid_t init = -1;     // C2, the sandbox's pid 1 (as seen from the cage)
};

// Starts the sandbox and the engine in it; returns once the engine was
// exec'd (not once it answers). Throws on any failure, after ending what it
// started: then nothing of it runs. `child_mask`: the signal mask the
// engine gets. `fail_at` (tests only, CAGENT_TEST_NESTED_FAIL): a stage
// name at which the sandbox fails as if that stage had.
NestedEngine start_nested_engine(const step::StartNestedDocker& step, const sigset_t& child_mask,
                                 const std::string& fail_at);

// SIGTERM to the sandbox's init (which passes it to the engine), then
// SIGKILL after `grace` — the kernel ends every process of its PID namespace
// with it. Reaps `outer`. Never throws.
void stop_nested_engine(NestedEngine& engine, int grace_ms) noexcept;

}  // namespace cagent::cage
