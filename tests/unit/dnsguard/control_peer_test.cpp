// peer_network_namespace(): a control connection from dnsguard's own
// network namespace is "same"; one from a process that moved into a new
// network namespace (as root in the nested engine's sandbox is) is "other".
//
// Both need what not every machine has: SO_NETNS_COOKIE (Linux 5.14) and,
// for the second, a network namespace to connect from (root, or
// unprivileged user namespaces). Without them the test learns nothing, and
// says so the way every tier does: it prints "skipped: <reason>" and exits
// 77, which ctest reports as skipped — never as passed. Hence its own
// executable with its own main: one ctest entry per test case, each of
// which can end as skipped.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <string>

#include "dnsguard/control.hpp"

using namespace cagent::dnsguard;

namespace {

constexpr int kSkipped = 77;  // ctest's SKIP_RETURN_CODE for every tier
std::optional<std::string> skipped;

// A listening unix socket in a private directory, removed at the end.
class Listener {
 public:
  Listener() {
    char dir[] = "/tmp/cagent-control-netns.XXXXXX";
    if (::mkdtemp(dir) == nullptr) throw std::runtime_error("mkdtemp failed");
    dir_ = dir;
    path_ = dir_ + "/s";
    addr_.sun_family = AF_UNIX;
    std::memcpy(addr_.sun_path, path_.c_str(), path_.size() + 1);
    fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0 || ::bind(fd_, address(), sizeof addr_) != 0 || ::listen(fd_, 4) != 0)
      throw std::runtime_error(std::string("listen: ") + std::strerror(errno));
  }
  ~Listener() {
    if (fd_ >= 0) ::close(fd_);
    ::unlink(path_.c_str());
    ::rmdir(dir_.c_str());
  }
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;

  const sockaddr* address() const { return reinterpret_cast<const sockaddr*>(&addr_); }
  // A connection from this process; returns the accepted end.
  int connect_here(int& client) const {
    client = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(client >= 0);
    REQUIRE(::connect(client, address(), sizeof addr_) == 0);
    return accept();
  }
  int accept() const {
    const int fd = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
    REQUIRE(fd >= 0);
    return fd;
  }

 private:
  std::string dir_, path_;
  sockaddr_un addr_{};
  int fd_ = -1;
};

// Skips the test case unless the kernel tells namespaces apart.
bool kernel_has_cookies(const Listener& listener) {
  int client = -1;
  const int accepted = listener.connect_here(client);
  const bool known = peer_network_namespace(accepted) != PeerNamespace::unknown;
  ::close(accepted);
  ::close(client);
  if (!known) skipped = "kernel without SO_NETNS_COOKIE (Linux < 5.14): the check cannot tell, and says so";
  return known;
}

}  // namespace

TEST_CASE("control peers: a connection from dnsguard's own network namespace is the same") {
  Listener listener;
  if (!kernel_has_cookies(listener)) return;
  int client = -1;
  const int accepted = listener.connect_here(client);
  CHECK(peer_network_namespace(accepted) == PeerNamespace::same);
  ::close(accepted);
  ::close(client);
}

TEST_CASE("control peers: a connection from another network namespace is other") {
  Listener listener;
  if (!kernel_has_cookies(listener)) return;
  // A child in a network namespace of its own connects to the same path.
  int ready[2];
  REQUIRE(::pipe(ready) == 0);
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    char status = 'n';
    if (::unshare(CLONE_NEWNET) == 0 || ::unshare(CLONE_NEWUSER | CLONE_NEWNET) == 0) {
      const int c = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
      status = (c >= 0 && ::connect(c, listener.address(), sizeof(sockaddr_un)) == 0) ? 'c' : 'f';
      [[maybe_unused]] auto n = ::write(ready[1], &status, 1);
      ::pause();  // keeps the connection until killed
    }
    [[maybe_unused]] auto n = ::write(ready[1], &status, 1);
    ::_exit(0);
  }
  char status = 0;
  const bool read_status = ::read(ready[0], &status, 1) == 1;
  if (read_status && status == 'n') {
    skipped = "no network namespace could be made here (not root, no user namespaces)";
  } else {
    CHECK(read_status);
    CHECK(status == 'c');
    if (status == 'c') {
      const int other = listener.accept();
      CHECK(peer_network_namespace(other) == PeerNamespace::other);
      ::close(other);
    }
  }
  ::kill(pid, SIGKILL);
  ::waitpid(pid, nullptr, 0);
  ::close(ready[0]);
  ::close(ready[1]);
}

int main(int argc, char** argv) {
  doctest::Context context(argc, argv);
  const int status = context.run();
  if (context.shouldExit() || status != 0 || !skipped) return status;
  std::printf("skipped: %s\n", skipped->c_str());
  return kSkipped;
}
