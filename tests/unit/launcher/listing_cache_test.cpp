// The listing cache on its own (launcher/host/listing_cache.hpp): what it
// records, what it gives back, and which files it refuses to read. That a
// scan with it finds what a plain walk finds, before and after changes, is
// scan_equivalence_test.cpp's.

#include <doctest/doctest.h>

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>

#include "dnsguard/posix.hpp"
#include "launcher/host/listing_cache.hpp"
#include "launcher/host/paths.hpp"
#include "tests/unit/launcher/test_util.hpp"

using namespace cagent::launcher::host;
using cagent::launcher::host::test::TempDir;
namespace fs = std::filesystem;

namespace {

timespec now() {
  timespec t{};
  ::clock_gettime(CLOCK_REALTIME, &t);
  return t;
}

timespec later(int seconds) {
  timespec t = now();
  t.tv_sec += seconds;
  return t;
}

// Lists `dir` and records it in `cache`, as a walk does.
void list_into(ListingCache& cache, const std::string& rel, const fs::path& dir) {
  const cagent::UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  REQUIRE(fd.valid());
  const std::optional<DirStamp> stamp = directory_stamp(fd.get(), "", AT_EMPTY_PATH);
  REQUIRE(stamp);
  DirLister lister;
  std::vector<ListedEntry> entries;
  REQUIRE_FALSE(lister.list(fd.get(), entries));
  cache.record(rel, *stamp, fd.get(), entries);
}

DirStamp stamp_now(const fs::path& dir) {
  const std::optional<DirStamp> stamp = directory_stamp(AT_FDCWD, dir.c_str(), AT_SYMLINK_NOFOLLOW);
  REQUIRE(stamp);
  return *stamp;
}

}  // namespace

TEST_CASE("listing cache: a listing comes back while the directory's stamp is the same, and not after a change") {
  TempDir t;
  t.file("ws/a.txt", "a");
  t.file("ws/sub/b.txt", "b");
  const fs::path ws = t / "ws";
  ListingCache cache(later(3600));  // everything made so far is old enough
  list_into(cache, "", ws);
  CHECK(cache.counts().recorded == 1);
  cache.settle();
  CHECK(cache.knows(""));
  CHECK_FALSE(cache.knows("sub"));
  std::vector<ListedEntry> out;
  REQUIRE(cache.reuse("", stamp_now(ws), out));
  std::vector<std::string> names;
  for (const ListedEntry& e : out) names.push_back(e.name + (e.type == fs::file_type::directory ? "/" : ""));
  std::sort(names.begin(), names.end());
  CHECK(names == std::vector<std::string>{"a.txt", "sub/"});
  // Any other stamp: nothing (and `out` as it was).
  DirStamp other = stamp_now(ws);
  other.ctime_nsec += 1;
  CHECK_FALSE(cache.reuse("", other, out));
  CHECK(out.size() == 2);
  // A change to the directory moves its ctime, whatever its mtime says.
  ::poll(nullptr, 0, 20);
  t.file("ws/.env", "SECRET=1");
  const timespec old[2] = {{946684800, 0}, {946684800, 0}};
  REQUIRE(::utimensat(AT_FDCWD, ws.c_str(), old, 0) == 0);
  CHECK_FALSE(cache.reuse("", stamp_now(ws), out));
}

TEST_CASE("listing cache: a directory changed too recently is not kept") {
  TempDir t;
  t.file("ws/a.txt", "a");
  ListingCache fresh(ListingCache::horizon_now());  // the ws was made just now
  list_into(fresh, "", t / "ws");
  CHECK(fresh.counts().recorded == 0);
  CHECK(fresh.counts().too_new == 1);
  CHECK_FALSE(fresh.settle());
  CHECK(fresh.size() == 0);
  // Control: the same directory, with a horizon after it was made.
  ListingCache old_enough(later(3600));
  list_into(old_enough, "", t / "ws");
  CHECK(old_enough.counts().recorded == 1);
}

TEST_CASE("listing cache: a stamp is a directory's, and names its mount") {
  TempDir t;
  t.file("ws/a.txt", "a");
  const std::optional<DirStamp> dir = directory_stamp(AT_FDCWD, (t / "ws").c_str(), AT_SYMLINK_NOFOLLOW);
  REQUIRE(dir);
  CHECK(dir->ino != 0);
  CHECK(dir->mount != 0);  // (every kernel this runs on has statx's mount id)
  CHECK_FALSE(directory_stamp(AT_FDCWD, (t / "ws/a.txt").c_str(), AT_SYMLINK_NOFOLLOW));  // a file
  fs::create_directory_symlink(t / "ws", t / "link");
  CHECK_FALSE(directory_stamp(AT_FDCWD, (t / "link").c_str(), AT_SYMLINK_NOFOLLOW));  // not through a symlink
  CHECK_FALSE(directory_stamp(AT_FDCWD, (t / "missing").c_str(), AT_SYMLINK_NOFOLLOW));
}

TEST_CASE("listing cache: only filesystems whose ctime the kernel keeps") {
  CHECK(keeps_ctime(0xEF53));      // ext4
  CHECK(keeps_ctime(0x58465342));  // xfs
  CHECK(keeps_ctime(0x9123683E));  // btrfs
  CHECK(keeps_ctime(0x01021994));  // tmpfs
  CHECK_FALSE(keeps_ctime(0x794c7630));  // overlayfs
  CHECK_FALSE(keeps_ctime(0x6969));      // nfs
  CHECK_FALSE(keeps_ctime(0x65735546));  // fuse
  CHECK_FALSE(keeps_ctime(0x01021997));  // 9p (v9fs)
}

TEST_CASE("listing cache: the file is read back only as save() wrote it, for that workspace") {
  TempDir t;
  t.file("ws/a.txt", "a");
  const fs::path ws = t / "ws";
  const fs::path file = listing_cache_file(t / "home", ws);
  {
    ListingCache cache(later(3600));
    list_into(cache, "", ws);
    REQUIRE(cache.settle());
    cache.save(file, ws);
  }
  CHECK((fs::status(file).permissions() & fs::perms::all) == (fs::perms::owner_read | fs::perms::owner_write));
  CHECK((fs::status(file.parent_path()).permissions() & fs::perms::all) == fs::perms::owner_all);
  const auto loads = [&](const fs::path& f, const fs::path& root) {
    ListingCache cache(ListingCache::horizon_now());
    return cache.load(f, root) && cache.size() == 1;
  };
  CHECK(loads(file, ws));  // control
  CHECK_FALSE(loads(file, t / "other"));  // another workspace's
  const std::string text = cagent::launcher::host::read_file(file);
  SUBCASE("cut short") {
    write_file(file, text.substr(0, text.size() - 5), 0600);
    CHECK_FALSE(loads(file, ws));
  }
  SUBCASE("with more after its end") {
    write_file(file, text + "x", 0600);
    CHECK_FALSE(loads(file, ws));
  }
  SUBCASE("made by other credentials") {
    const std::size_t uid = text.find("uid ");
    REQUIRE(uid != std::string::npos);
    const std::string other = text.substr(0, uid + 4) + "9" + text.substr(uid + 4);
    write_file(file, other, 0600);
    CHECK_FALSE(loads(file, ws));
  }
  SUBCASE("writable by others") {
    fs::permissions(file, fs::perms::owner_read | fs::perms::owner_write | fs::perms::others_write);
    CHECK_FALSE(loads(file, ws));
  }
  SUBCASE("a symlink to it") {
    fs::create_symlink(file, t / "link");
    CHECK_FALSE(loads(t / "link", ws));
  }
  SUBCASE("missing") {
    fs::remove(file);
    CHECK_FALSE(loads(file, ws));
  }
  SUBCASE("a count of directories no file that size can hold") {
    const std::size_t dirs = text.find("dirs ");
    REQUIRE(dirs != std::string::npos);
    write_file(file, text.substr(0, dirs) + "dirs 10000000000\n" + text.substr(text.find('\n', dirs) + 1), 0600);
    CHECK_FALSE(loads(file, ws));
  }
}

TEST_CASE("listing cache: settle keeps what the walk used, and only that") {
  TempDir t;
  t.file("ws/a/x", "x");
  t.file("ws/b/y", "y");
  const fs::path ws = t / "ws";
  const fs::path file = t / "cache";
  {
    ListingCache cache(later(3600));
    list_into(cache, "a", ws / "a");
    list_into(cache, "b", ws / "b");
    REQUIRE(cache.settle());
    cache.save(file, ws);
  }
  ListingCache cache(later(3600));
  REQUIRE(cache.load(file, ws));
  std::vector<ListedEntry> out;
  REQUIRE(cache.reuse("a", stamp_now(ws / "a"), out));
  // "b" was not walked this time (gone, or hidden now): dropped.
  CHECK(cache.settle());
  CHECK(cache.knows("a"));
  CHECK_FALSE(cache.knows("b"));
  // A walk that reused everything it knew changes nothing: nothing to save.
  REQUIRE(cache.reuse("a", stamp_now(ws / "a"), out));
  CHECK_FALSE(cache.settle());
}
