// cage-init's supervising loop (launcher/cage/system.hpp, reap_until) with
// a timer: a delayed dnsguard restart waits there, so the command's end is
// never held up behind it.
#include <doctest/doctest.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <optional>

#include "launcher/cage/system.hpp"

using cagent::cage::ReapTimer;
using cagent::cage::reap_until;
using Clock = std::chrono::steady_clock;

namespace {

// SIGCHLD blocked for the test's life (reap_until takes it with
// sigwaitinfo), restored after.
struct BlockedChld {
  sigset_t set{}, old{};
  BlockedChld() {
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    pthread_sigmask(SIG_BLOCK, &set, &old);
  }
  ~BlockedChld() { pthread_sigmask(SIG_SETMASK, &old, nullptr); }
};

std::optional<int> end_of(pid_t child, pid_t pid, int status) {
  if (pid != child) return std::nullopt;
  return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status);
}

}  // namespace

TEST_CASE("reap_until: a due timer fires while the loop waits for signals") {
  BlockedChld blocked;
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    ::pause();  // until the timer's SIGKILL
    ::_exit(0);
  }
  int fired = 0;
  std::optional<Clock::time_point> due = Clock::now() + std::chrono::milliseconds(50);
  const ReapTimer timer{[&] { return due; },
                        [&] {
                          ++fired;
                          due.reset();
                          ::kill(child, SIGKILL);
                        }};
  const int result = reap_until(blocked.set, child, [&](pid_t pid, int status) { return end_of(child, pid, status); },
                                timer);
  CHECK(fired == 1);
  CHECK(result == 128 + SIGKILL);
}

TEST_CASE("reap_until: a child's end is handled at once, not after a timer still pending (the control)") {
  BlockedChld blocked;
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) ::_exit(7);
  int fired = 0;
  const std::optional<Clock::time_point> due = Clock::now() + std::chrono::seconds(30);
  const ReapTimer timer{[&] { return due; }, [&] { ++fired; }};
  const int result = reap_until(blocked.set, child, [&](pid_t pid, int status) { return end_of(child, pid, status); },
                                timer);
  // Had the loop slept out the timer (the old backoff did), it would have
  // fired before the child's end was taken.
  CHECK(result == 7);
  CHECK(fired == 0);
}

TEST_CASE("reap_until with nobody to forward to (the Pod's dnsguard sidecar): a stop request ends it, others do not") {
  sigset_t set{}, old{};
  sigemptyset(&set);
  for (int sig : {SIGCHLD, SIGTERM, SIGUSR1}) sigaddset(&set, sig);
  pthread_sigmask(SIG_BLOCK, &set, &old);
  // SIGUSR1 first: ignored (never kill(0, …), which would signal this whole
  // process group); then SIGTERM ends the loop with 0. Both are pending
  // before the loop starts, taken in signal-number order (USR1 is 10, TERM 15).
  ::raise(SIGUSR1);
  ::raise(SIGTERM);
  int children_seen = 0;
  const int result = reap_until(set, 0, [&](pid_t, int) -> std::optional<int> {
    ++children_seen;
    return std::nullopt;
  });
  CHECK(result == 0);
  CHECK(children_seen == 0);
  sigset_t pending{};
  sigpending(&pending);
  CHECK_FALSE(sigismember(&pending, SIGUSR1));  // taken, and ignored: we are still here
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
}
