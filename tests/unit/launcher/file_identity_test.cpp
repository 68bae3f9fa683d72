// A directory's identity: what it is composed of (a table), and what it
// does on real directories — the same directory twice, a rename, cp -a, and
// a directory removed and made again at the same path, also when the
// filesystem hands it the same inode number again.
#include <doctest/doctest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>

#include "launcher/host/file_identity.hpp"
#include "launcher/host/paths.hpp"
#include "tests/unit/launcher/test_util.hpp"

using namespace cagent::launcher::host;
namespace fs = std::filesystem;

TEST_CASE("identity: composed of the file handle, else inode and generation: birth time alone is not enough") {
  const auto parts = [](std::optional<std::string> handle, std::optional<std::uint32_t> generation, bool born) {
    IdentityParts p;
    p.inode = 42;
    p.handle = std::move(handle);
    p.generation = generation;
    if (born) p.birth = std::pair<std::int64_t, std::uint32_t>{1700000000, 123456789};
    return p;
  };
  CHECK(compose_identity(parts("1:a422a700", std::nullopt, false)) == "fh1:a422a700");
  CHECK(compose_identity(parts("1:a422a700", 7u, true)) == "fh1:a422a700.born1700000000.123456789");
  CHECK(compose_identity(parts(std::nullopt, 7u, false)) == "ino42.gen7");
  CHECK(compose_identity(parts(std::nullopt, 7u, true)) == "ino42.gen7.born1700000000.123456789");
  // A coarse birth time and a reusable inode number: a directory made again
  // within the same clock tick would look the same. No identity.
  CHECK(compose_identity(parts(std::nullopt, std::nullopt, true)) == std::nullopt);
  CHECK(compose_identity(parts(std::nullopt, std::nullopt, false)) == std::nullopt);
}

namespace {

// The checks on real directories below `base` (one filesystem).
void check_directories_on(const fs::path& base) {
  CAPTURE(base);
  std::string tmpl = (base / "cagent-identity-XXXXXX").string();
  REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
  const fs::path root = tmpl;
  const fs::path ws = root / "proj";
  fs::create_directory(ws);
  write_file(ws / ".cagent.yaml", "domains: [a.example]\n", 0644);

  const auto id = file_identity(ws);
  REQUIRE(id);  // ext4 and tmpfs give file handles
  CHECK(file_identity(ws) == id);  // the same directory, asked again
  CHECK_FALSE(file_identity(root / "missing"));

  // Renamed: the same directory.
  fs::rename(ws, root / "renamed");
  CHECK(file_identity(root / "renamed") == id);

  // cp -a copies content, times and modes, never the inode: another directory.
  const std::string cp = "cp -a '" + (root / "renamed").string() + "' '" + (root / "copy").string() + "'";
  REQUIRE(std::system(cp.c_str()) == 0);
  CHECK(file_identity(root / "copy") != id);

  // Removed and made again at the same path, many times in a row: ext4
  // hands out the freed inode number again, often within the same tick of
  // the birth-time clock. The identity must differ every time.
  fs::rename(root / "renamed", ws);
  struct stat st {};
  REQUIRE(::stat(ws.c_str(), &st) == 0);
  ino_t last_inode = st.st_ino;
  std::optional<std::string> last = id;
  int reused = 0;
  for (int i = 0; i < 200; ++i) {
    fs::remove_all(ws);
    fs::create_directory(ws);
    REQUIRE(::stat(ws.c_str(), &st) == 0);
    const auto now = file_identity(ws);
    REQUIRE(now);
    if (st.st_ino == last_inode) ++reused;
    CHECK(now != last);
    last_inode = st.st_ino;
    last = now;
  }
  MESSAGE(base.string() << ": the inode number came back in " << reused << " of 200 rm+mkdir");

  // Files and symlinks have one too (.git entries), each its own.
  write_file(root / "f", "x", 0644);
  fs::create_symlink("f", root / "l");
  REQUIRE(file_identity(root / "f"));
  REQUIRE(file_identity(root / "l"));
  CHECK(file_identity(root / "f") != file_identity(root / "l"));
  fs::remove_all(root);
}

}  // namespace

TEST_CASE("identity: real directories on the temporary directory's filesystem") {
  check_directories_on(fs::temp_directory_path());
}

TEST_CASE("identity: real directories on tmpfs (/dev/shm), where there is one") {
  std::error_code ec;
  if (!fs::is_directory("/dev/shm", ec) || ::access("/dev/shm", W_OK) != 0) {
    MESSAGE("no writable /dev/shm here");
    return;
  }
  check_directories_on("/dev/shm");
}
