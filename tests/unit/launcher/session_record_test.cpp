// A session's record belongs to the cagent that holds it; the owner socket
// tells cage-init when that cagent is gone (session_record.hpp).
#include "launcher/host/session_record.hpp"

#include <doctest/doctest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <optional>

#include "launcher/host/mount_plan.hpp"
#include "tests/unit/launcher/test_util.hpp"

using namespace cagent::launcher::host;
using cagent::UniqueFd;
using cagent::launcher::host::test::TempDir;
namespace fs = std::filesystem;

namespace {

UniqueFd connect_to(const fs::path& socket) {
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  REQUIRE(socket.native().size() < sizeof address.sun_path);
  std::memcpy(address.sun_path, socket.c_str(), socket.native().size() + 1);
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  REQUIRE(fd.valid());
  REQUIRE(::connect(fd.get(), reinterpret_cast<const sockaddr*>(&address), sizeof address) == 0);
  return fd;
}

// What cage-init's watcher would see now, without waiting.
short ready(const UniqueFd& fd) {
  pollfd p{fd.get(), POLLIN, 0};
  REQUIRE(::poll(&p, 1, 0) >= 0);
  return p.revents;
}

}  // namespace

TEST_CASE("owner socket: a connection nobody accepts ends when the owner's socket is closed") {
  TempDir t;
  std::optional<OwnerSocket> owner(std::in_place, t.path());
  struct stat st {};
  REQUIRE(::stat((t / kOwnerSocketName).c_str(), &st) == 0);
  CHECK(S_ISSOCK(st.st_mode));
  CHECK((st.st_mode & 0777) == 0666);
  const UniqueFd watcher = connect_to(t / kOwnerSocketName);
  // Control: while the owner lives, there is nothing to read.
  CHECK(ready(watcher) == 0);
  owner.reset();  // what the kernel does when cagent's process is gone
  CHECK((ready(watcher) & (POLLIN | POLLHUP)) != 0);
  char byte = 0;
  CHECK(::read(watcher.get(), &byte, 1) <= 0);  // EOF or ECONNRESET: the watcher's read returns
}

TEST_CASE("owner socket: a path longer than a socket address holds is still bound") {
  TempDir t;
  fs::path deep = t.path();
  while (deep.native().size() < 150) deep /= "a-long-directory-name";
  fs::create_directories(deep);
  const OwnerSocket owner(deep);
  CHECK(fs::is_socket(deep / kOwnerSocketName));
}

TEST_CASE("session records: one whose cagent is gone is removed: a held one, or one being made, is not") {
  TempDir t;
  const fs::path sessions = t / "sessions";
  std::optional<SessionRecord> live(std::in_place, sessions / "live000000aa");
  fs::create_directory(live->path() / kEmptyDirName);
  fs::permissions(live->path() / kEmptyDirName, fs::perms::owner_read | fs::perms::owner_exec);
  // A cagent killed with its session open: the child makes a record and
  // dies without its destructors, as under SIGKILL.
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    try {
      new SessionRecord(sessions / "dead000000bb");  // never destroyed
      fs::create_directory(sessions / "dead000000bb" / kEmptyDirName);
      fs::permissions(sessions / "dead000000bb" / kEmptyDirName, fs::perms::owner_read | fs::perms::owner_exec);
    } catch (...) {
      ::_exit(1);
    }
    ::_exit(0);
  }
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  REQUIRE(WIFEXITED(status));
  REQUIRE(WEXITSTATUS(status) == 0);
  REQUIRE(fs::exists(sessions / "dead000000bb"));
  // A record another cagent is making right now (its dot-name, not yet locked).
  fs::create_directory(sessions / ".new000000cc.new");

  CHECK(remove_stale_sessions(sessions) == std::vector<std::string>{"dead000000bb"});
  CHECK_FALSE(fs::exists(sessions / "dead000000bb"));
  CHECK(fs::exists(live->path()));  // the control: its cagent holds it
  CHECK(fs::exists(sessions / ".new000000cc.new"));
  CHECK(remove_stale_sessions(sessions).empty());

  // Its own cagent removes it at the end, placeholders and all.
  const fs::path dir = live->path();
  live.reset();
  CHECK_FALSE(fs::exists(dir));
}
