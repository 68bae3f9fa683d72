#include "launcher/cage/privileges.hpp"

#include "dnsguard/posix.hpp"

#include <grp.h>
#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <fstream>
#include <system_error>

namespace cagent::cage {
namespace {

void check(int result, const char* what) {
  if (result != 0) throw_errno(what);
}

struct CapSets {
  std::uint64_t effective = 0, permitted = 0, inheritable = 0;
};

void set_caps(const CapSets& sets) {
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2] = {};
  for (int i = 0; i < 2; ++i) {
    data[i].effective = static_cast<std::uint32_t>(sets.effective >> (32 * i));
    data[i].permitted = static_cast<std::uint32_t>(sets.permitted >> (32 * i));
    data[i].inheritable = static_cast<std::uint32_t>(sets.inheritable >> (32 * i));
  }
  check(static_cast<int>(syscall(SYS_capset, &header, data)), "capset");
}

CapSets get_caps() {
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2] = {};
  check(static_cast<int>(syscall(SYS_capget, &header, data)), "capget");
  CapSets sets;
  for (int i = 0; i < 2; ++i) {
    sets.effective |= std::uint64_t{data[i].effective} << (32 * i);
    sets.permitted |= std::uint64_t{data[i].permitted} << (32 * i);
    sets.inheritable |= std::uint64_t{data[i].inheritable} << (32 * i);
  }
  return sets;
}

std::uint64_t mask_of(std::span<const int> caps) {
  std::uint64_t mask = 0;
  for (int cap : caps) mask |= std::uint64_t{1} << cap;
  return mask;
}

// Bounding set: needs CAP_SETPCAP in the effective set, so this runs while
// still root. Everything not in `keep` goes, including caps this build's
// headers do not know (the kernel's own cap_last_cap is the bound).
void reduce_bounding_set(std::uint64_t keep) {
  for (int cap = 0; cap <= last_capability(); ++cap) {
    if ((keep >> cap) & 1) continue;
    check(prctl(PR_CAPBSET_DROP, cap, 0, 0, 0), "prctl(PR_CAPBSET_DROP)");
  }
}

void verify(std::uint64_t expected, uid_t uid, gid_t gid, std::uint64_t expected_ambient) {
  const CapSets sets = get_caps();
  if (sets.effective != expected || sets.permitted != expected || sets.inheritable != expected) {
    errno = EPERM;
    throw_errno("capability sets not as planned");
  }
  for (int cap = 0; cap <= last_capability(); ++cap) {
    const bool want = (expected >> cap) & 1;
    if ((prctl(PR_CAPBSET_READ, cap, 0, 0, 0) == 1) != want) {
      errno = EPERM;
      throw_errno("bounding set not as planned");
    }
    if ((prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, cap, 0, 0) == 1) != (((expected_ambient >> cap) & 1) != 0)) {
      errno = EPERM;
      throw_errno("ambient set not as planned");
    }
  }
  uid_t r = 0, e = 0, s = 0;
  gid_t rg = 0, eg = 0, sg = 0;
  check(getresuid(&r, &e, &s), "getresuid");
  check(getresgid(&rg, &eg, &sg), "getresgid");
  if (r != uid || e != uid || s != uid || rg != gid || eg != gid || sg != gid) {
    errno = EPERM;
    throw_errno("uid/gid not as planned");
  }
  if (prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1) {
    errno = EPERM;
    throw_errno("no_new_privs not set");
  }
  // Paranoia: if anything above silently left a way back, this succeeds.
  if (setuid(0) == 0) {
    errno = EPERM;
    throw_errno("setuid(0) still possible after the drop");
  }
}

void switch_ids(const Account& user) {
  // setgroups first: it needs CAP_SETGID, which the uid change takes away.
  // Only the primary group: supplementary groups of the image are not ours
  // to hand out.
  const gid_t groups[] = {user.gid};
  check(setgroups(1, groups), "setgroups");
  check(setresgid(user.gid, user.gid, user.gid), "setresgid");
  check(setresuid(user.uid, user.uid, user.uid), "setresuid");
}

}  // namespace

int last_capability() {
  static const int last = [] {
    std::ifstream file("/proc/sys/kernel/cap_last_cap");
    int value = CAP_LAST_CAP;
    if (!(file >> value) || value < 0 || value > 63) value = CAP_LAST_CAP;
    return value;
  }();
  return last;
}

void become_dnsguard(const Account& user, std::span<const int> ambient) {
  const std::uint64_t keep = mask_of(ambient);
  reduce_bounding_set(keep);
  // Keep permitted caps across the root -> dnsguard uid change; cleared again
  // below so a later setuid in dnsguard (there is none) would drop them.
  check(prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0), "prctl(PR_SET_KEEPCAPS)");
  check(prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0), "prctl(PR_CAP_AMBIENT_CLEAR_ALL)");
  switch_ids(user);
  check(prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0), "prctl(PR_SET_KEEPCAPS)");
  // Ambient capabilities must be both permitted and inheritable.
  set_caps(CapSets{keep, keep, keep});
  for (int cap : ambient) {
    check(prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0), "prctl(PR_CAP_AMBIENT_RAISE)");
  }
  // Ambient capabilities survive no_new_privs; setuid binaries don't gain.
  check(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl(PR_SET_NO_NEW_PRIVS)");
  verify(keep, user.uid, user.gid, keep);
}

void become_agent(const Account& user) {
  reduce_bounding_set(0);
  check(prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0), "prctl(PR_CAP_AMBIENT_CLEAR_ALL)");
  // no_new_privs: nothing the agent execs (setuid binary, file caps) can
  // gain privileges, even if the image still had such a binary.
  check(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl(PR_SET_NO_NEW_PRIVS)");
  check(prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0), "prctl(PR_SET_KEEPCAPS)");
  switch_ids(user);
  // The uid change clears permitted/effective but not inheritable.
  set_caps(CapSets{});
  verify(0, user.uid, user.gid, 0);
}

void stay_agent(const Account& user) {
  check(prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0), "prctl(PR_CAP_AMBIENT_CLEAR_ALL)");
  check(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl(PR_SET_NO_NEW_PRIVS)");
  // Lowering permitted/inheritable needs no privilege; the bounding set
  // cannot be lowered without CAP_SETPCAP, so verify() refuses a non-empty one.
  set_caps(CapSets{});
  verify(0, user.uid, user.gid, 0);
}

}  // namespace cagent::cage
