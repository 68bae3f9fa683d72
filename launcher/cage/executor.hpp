#pragma once
// Performs a Plan. Every step before run-command either completes or throws
// StepError ("step <name>: <why>"); cage-init then exits non-zero and the
// command never starts. Once the command runs, cage-init stays as its root
// parent: it forwards signals to it, supervises dnsguard (a dnsguard exit is
// logged; the ruleset and resolv.conf stay, so the cage stops resolving
// instead of opening), and returns the command's exit status (128+N when it
// died of signal N). On the way out it stops dnsguard and hands the log
// directory to the workspace owner.

#include <string>

#include "launcher/cage/plan.hpp"
#include "launcher/cage/system.hpp"

namespace cagent::cage {

struct ExecutorOptions {
  // CAGENT_TRACE_STEPS=1 (read by main): one line per step with its
  // duration, to see where a cage's start-up time goes.
  bool trace_steps = false;
  // Tests only (CAGENT_TEST_NESTED_FAIL=<stage>, read by main): the nested
  // engine's sandbox fails at that stage (unshare, mounts, userns, network,
  // engine), to show the session goes on without it.
  std::string nested_fail_at;
};

int run_plan(const Plan& plan, const ExecutorOptions& options = {});

}  // namespace cagent::cage
