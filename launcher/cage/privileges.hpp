#pragma once
// Credential changes for cage-init's two children. Both run in a freshly
// forked child, as root, right before execve; both verify the result and throw
// std::system_error naming the failed call, so a half-dropped child never
// execs.

#include <span>

#include "launcher/cage/plan.hpp"

namespace cagent::cage {

// dnsguard: its own uid/gid, no supplementary groups, exactly `ambient` in the
// permitted/effective/inheritable/ambient sets and the bounding set (so the
// capabilities survive execve of a plain binary and nothing else can come
// back), no_new_privs.
void become_dnsguard(const Account& user, std::span<const int> ambient);

// The agent: every capability gone from all five sets, no_new_privs, then
// setgroups/setgid/setuid; finally checks that uid 0 cannot be regained.
void become_agent(const Account& user);

// The Pod's agent container (Mode::agent): the process already runs as
// `user` and must hold nothing. Clears what an unprivileged process may
// clear (ambient, permitted, inheritable), sets no_new_privs, then verifies
// as become_agent does — an empty bounding set included, so a container
// that kept any capability refuses to run the command.
void stay_agent(const Account& user);

// Highest capability number this kernel knows (/proc/sys/kernel/cap_last_cap).
int last_capability();

}  // namespace cagent::cage
