// The nested engine's sandbox id map (launcher/cage/nested.hpp): pure text
// in, text out. The sandbox itself is tested in netns/cage/whole_cage.
#include <doctest/doctest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>

#include "launcher/cage/nested.hpp"

using namespace cagent::cage;

TEST_CASE("sandbox id map, sysbox-like cage (0-65535): root is the agent, every other id on the shifted block") {
  // cage-init's own map under sysbox: 65536 ids from some host offset.
  const std::string map = sandbox_id_map("         0     165536      65536\n", 1000);
  CHECK(map ==
        "0 1000 1\n"          // the sandbox's root is the agent outside
        "1 60001 4999\n"      // its system ids and users: 60001..64999, owning nothing
        "65534 60000 1\n");   // its nobody
  // Not mapped: the cage's root, the agent's own number, `disk` (6),
  // `shadow` (42), dnsguard's, any host user's.
  for (const char* id : {"\n1000 ", " 0 ", " 6 ", " 42 ", " 1001 "}) CHECK(map.find(id) == std::string::npos);
}

TEST_CASE("sandbox id map, the initial namespace (this machine's tests)") {
  CHECK(sandbox_id_map("0 0 4294967295\n", 4242) == "0 4242 1\n1 60001 4999\n65534 60000 1\n");
}

TEST_CASE("sandbox id map: without the whole block (or with the agent or a kept-out id in it) only root is mapped") {
  CHECK(sandbox_id_map("0 100000 1000\n2000 200000 1000\n", 2500) == "0 2500 1\n");
  CHECK(sandbox_id_map("0 0 64999\n", 1000) == "0 1000 1\n");  // 64999 itself missing
  CHECK(sandbox_id_map("0 0 65000\n", 1000) == "0 1000 1\n1 60001 4999\n65534 60000 1\n");
  CHECK(sandbox_id_map("0 0 65536\n", 60500) == "0 60500 1\n");
  const std::uint64_t kept = 62000;
  CHECK(sandbox_id_map("0 0 65536\n", 1000, {&kept, 1}) == "0 1000 1\n");
}

TEST_CASE("sandbox id map: dnsguard's id (owner of the log directory) is never mapped") {
  const std::uint64_t dnsguard = 999;
  const std::string map = sandbox_id_map("0 165536 65536\n", 1000, {&dnsguard, 1});
  CHECK(map == "0 1000 1\n1 60001 4999\n65534 60000 1\n");
  CHECK(map.find(" 999 ") == std::string::npos);
}

TEST_CASE("sandbox id map: the agent must be an unprivileged id the cage has") {
  CHECK_THROWS_AS(sandbox_id_map("0 0 65536\n", 0), std::runtime_error);
  CHECK_THROWS_AS(sandbox_id_map("0 0 65536\n", 70000), std::runtime_error);
  CHECK_THROWS_AS(sandbox_id_map("", 1000), std::runtime_error);
  CHECK_THROWS_AS(sandbox_id_map("5 5 100\n", 50), std::runtime_error);  // no root to leave out
}

namespace {

struct TempTree {
  std::filesystem::path path;
  TempTree() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "cagent-cgroup-XXXXXX").string();
    REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
    path = tmpl;
  }
  ~TempTree() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};

void touch(const std::filesystem::path& p) { std::ofstream(p) << ""; }

}  // namespace

// A directory stands in for /sys/fs/cgroup: what is created and handed over
// (the kernel's own rules for moving processes are not exercised here).
TEST_CASE("engine cgroup: delegated only for cgroup v2 at a cgroup namespace's root") {
  const Owner me{::getuid(), ::getgid()};
  {
    TempTree t;
    touch(t.path / "cgroup.controllers");
    const CgroupDelegation d = delegate_cgroup(t.path, "0::/\n", me);
    CHECK(d.parent == "/cagent-nested");
    CHECK(d.engine == t.path / "cagent-nested" / "engine");
    CHECK(std::filesystem::is_directory(d.engine));
    struct stat st {};
    REQUIRE(::stat((t.path / "cagent-nested").c_str(), &st) == 0);
    CHECK(st.st_uid == me.uid);
    CHECK(st.st_gid == me.gid);
  }
  {
    TempTree t;  // a cgroup below the namespace's root (a test on the host): nothing
    touch(t.path / "cgroup.controllers");
    CHECK(delegate_cgroup(t.path, "0::/user.slice/session-1.scope\n", me).parent.empty());
    CHECK_FALSE(std::filesystem::exists(t.path / "cagent-nested"));
  }
  {
    TempTree t;  // cgroup v1 (no cgroup.controllers at the root): nothing
    CHECK(delegate_cgroup(t.path, "0::/\n", me).parent.empty());
    CHECK(delegate_cgroup(t.path, "4:memory:/\n0::/\n", me).parent.empty());
    CHECK_FALSE(std::filesystem::exists(t.path / "cagent-nested"));
  }
}
