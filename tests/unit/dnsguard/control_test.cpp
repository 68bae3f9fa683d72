#include <doctest/doctest.h>

#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include "control.hpp"

using namespace cagent::dnsguard;

TEST_CASE("live policy: allow adds names for the next lookup, deny takes only run-time additions back") {
  LivePolicy live({"github.com", "*.githubusercontent.com"});
  auto out = live.execute("allow PyPI.org. *.pythonhosted.org github.com\n");
  REQUIRE(out.ok);
  CHECK(out.reply == "ok allowed pypi.org *.pythonhosted.org github.com");
  CHECK(out.allowed == std::vector<std::string>{"pypi.org", "*.pythonhosted.org"});  // github.com: already
  REQUIRE(out.next);
  CHECK(out.next->allows("pypi.org"));
  CHECK(out.next->allows("files.pythonhosted.org"));
  CHECK(out.next->allows("github.com"));
  CHECK(out.next->allows("raw.githubusercontent.com"));
  CHECK(!out.next->allows("example.com"));
  CHECK(out.next->exact_names() == std::vector<std::string>{"github.com", "pypi.org"});

  out = live.execute("allow pypi.org");  // idempotent: no new list
  CHECK(out.ok);
  CHECK(!out.next);
  CHECK(out.allowed.empty());

  out = live.execute("deny pypi.org");
  REQUIRE(out.ok);
  CHECK(out.denied == std::vector<std::string>{"pypi.org"});
  REQUIRE(out.next);
  CHECK(!out.next->allows("pypi.org"));
  CHECK(out.next->allows("a.pythonhosted.org"));
  CHECK(live.execute("list").reply == "ok *.pythonhosted.org");
}

TEST_CASE("live policy: errors change nothing") {
  LivePolicy live({"github.com"});
  REQUIRE(live.execute("allow a.example").ok);
  for (const char* bad : {"allow good.example bad..name", "allow *", "allow a.*.example", "deny github.com",
                          "deny never.example", "deny a.example never.example", "allow", "frobnicate x", ""}) {
    CAPTURE(bad);
    auto out = live.execute(bad);
    CHECK(!out.ok);
    CHECK(!out.next);
    CHECK(out.reply.rfind("error ", 0) == 0);
    CHECK(out.reply.find('\n') == std::string::npos);
  }
  CHECK(live.added() == std::vector<std::string>{"a.example"});
  CHECK(live.execute("deny github.com").reply.find("policy file") != std::string::npos);
  CHECK(control_socket_for("/var/log/cagent/dnsguard.log") == "/var/log/cagent/control/dnsguard.sock");
  CHECK(control_socket_for("").empty());
}

// peer_network_namespace(): a connection from this namespace is "same"; one
// from a process that moved into a new network namespace (as root in the
// nested engine's sandbox is) is "other". The second half needs a network
// namespace of its own: as root (CI, this machine) or through an
// unprivileged user namespace.
TEST_CASE("control peers: only connections from dnsguard's own network namespace count as same") {
  char dir_template[] = "/tmp/cagent-control-netns.XXXXXX";
  REQUIRE(::mkdtemp(dir_template) != nullptr);
  const std::string path = std::string(dir_template) + "/s";
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  const int listener = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE(listener >= 0);
  REQUIRE(::bind(listener, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0);
  REQUIRE(::listen(listener, 4) == 0);

  const int client = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE(::connect(client, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0);
  const int same = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
  REQUIRE(same >= 0);
  const PeerNamespace here = peer_network_namespace(same);
  if (here == PeerNamespace::unknown) {
    MESSAGE("kernel without SO_NETNS_COOKIE (< 5.14): the check cannot tell, and says so");
  } else {
    CHECK(here == PeerNamespace::same);
    // A child in a network namespace of its own connects to the same path.
    int ready[2];
    REQUIRE(::pipe(ready) == 0);
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      char status = 'n';
      if (::unshare(CLONE_NEWNET) == 0 || ::unshare(CLONE_NEWUSER | CLONE_NEWNET) == 0) {
        const int c = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        status = (c >= 0 && ::connect(c, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0) ? 'c' : 'f';
        [[maybe_unused]] auto n = ::write(ready[1], &status, 1);
        ::pause();  // keeps the connection until killed
      }
      [[maybe_unused]] auto n = ::write(ready[1], &status, 1);
      ::_exit(0);
    }
    char status = 0;
    REQUIRE(::read(ready[0], &status, 1) == 1);
    if (status == 'n') {
      MESSAGE("no network namespace could be made here (not root, no user namespaces): other-namespace half not run");
    } else {
      CHECK(status == 'c');
      const int other = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
      REQUIRE(other >= 0);
      CHECK(peer_network_namespace(other) == PeerNamespace::other);
      ::close(other);
    }
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    ::close(ready[0]);
    ::close(ready[1]);
  }
  ::close(same);
  ::close(client);
  ::close(listener);
  ::unlink(path.c_str());
  ::rmdir(dir_template);
}
