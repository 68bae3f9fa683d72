// PosixProcessRunner::run_foreground and its Hangup descriptor: a real
// child (/bin/sh), the far end of a socket pair played by the test.
#include <doctest/doctest.h>

#include <sys/socket.h>
#include <unistd.h>

#include <csignal>
#include <string_view>

#include "dnsguard/posix.hpp"
#include "launcher/host/process.hpp"

using namespace cagent::launcher::host;
using cagent::UniqueFd;
using std::chrono::milliseconds;

namespace {

struct Pair {
  UniqueFd watched;  // what run_foreground polls
  UniqueFd far;      // the engine's end
  Pair() {
    int fds[2];
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) == 0);
    watched.reset(fds[0]);
    far.reset(fds[1]);
  }
};

const auto no_signal = [](int) {};

Hangup hangup_on(int fd, milliseconds grace) {
  Hangup h;
  h.fd = fd;
  h.grace = grace;
  return h;
}

}  // namespace

TEST_CASE("run_foreground: the child's status when the hangup descriptor stays open") {
  PosixProcessRunner runner;
  Pair pair;
  // What arrives on it is read and dropped: data is no hangup.
  REQUIRE(::write(pair.far.get(), "{}\n", 3) == 3);
  const ForegroundResult r = runner.run_foreground({"sh", "-c", "exit 3"}, no_signal, hangup_on(pair.watched.get(), milliseconds(0)));
  CHECK(r.status == 3);
  CHECK_FALSE(r.hung_up);
  CHECK_FALSE(r.killed);
}

TEST_CASE("run_foreground: a child that outlives the hangup by the grace is killed") {
  PosixProcessRunner runner;
  Pair pair;
  pair.far.reset();  // the engine is gone
  const ForegroundResult r =
      runner.run_foreground({"sleep", "300"}, no_signal, hangup_on(pair.watched.get(), milliseconds(0)));
  CHECK(r.hung_up);
  CHECK(r.killed);
  CHECK(r.status == 128 + SIGKILL);
}

TEST_CASE("run_foreground: a child that ends within the grace keeps its own status") {
  PosixProcessRunner runner;
  Pair pair;
  pair.far.reset();
  // The grace is far longer than the child needs (as the docker CLI, which
  // notices a lost engine by itself).
  const ForegroundResult r = runner.run_foreground({"sh", "-c", "sleep 0.2; exit 125"}, no_signal,
                                                   hangup_on(pair.watched.get(), milliseconds(60000)));
  CHECK(r.hung_up);
  CHECK_FALSE(r.killed);
  CHECK(r.status == 125);
}

TEST_CASE("run_foreground: without a hangup descriptor only the child counts") {
  PosixProcessRunner runner;
  const ForegroundResult r = runner.run_foreground({"sh", "-c", "exit 7"}, no_signal, Hangup{});
  CHECK(r.status == 7);
  CHECK_FALSE(r.hung_up);
}

TEST_CASE("run_foreground: the event descriptor's callback runs while the child does, until it says enough") {
  PosixProcessRunner runner;
  Pair pair;
  int calls = 0;
  Hangup h;
  h.event_fd = pair.watched.get();
  // Reads what came; enough once it saw "end".
  h.on_event = [&] {
    ++calls;
    char buf[16] = {};
    const ssize_t n = ::read(pair.watched.get(), buf, sizeof buf - 1);
    return !(n > 0 && std::string_view(buf, static_cast<std::size_t>(n)).find("end") != std::string_view::npos);
  };
  REQUIRE(::write(pair.far.get(), "end", 3) == 3);
  // Still readable afterwards: a callback that said enough is not called again.
  REQUIRE(::write(pair.far.get(), "more", 4) == 4);
  const ForegroundResult r = runner.run_foreground({"sh", "-c", "sleep 0.3; exit 4"}, no_signal, h);
  CHECK(r.status == 4);
  CHECK(calls == 1);
  CHECK_FALSE(r.hung_up);
}

TEST_CASE("run_foreground: an event descriptor with nothing on it calls nothing") {
  PosixProcessRunner runner;
  Pair pair;
  int calls = 0;
  Hangup h;
  h.event_fd = pair.watched.get();
  h.on_event = [&] { return ++calls, true; };
  const ForegroundResult r = runner.run_foreground({"sh", "-c", "sleep 0.1; exit 5"}, no_signal, h);
  CHECK(r.status == 5);
  CHECK(calls == 0);
}
