// The gate's bindings journal (binding_journal.hpp).
#include "dnsguard/binding_journal.hpp"

#include <doctest/doctest.h>
#include <unistd.h>

#include <filesystem>
#include <cerrno>
#include <fstream>

#include "file_size_limit.hpp"

using namespace cagent::dnsguard;
namespace fs = std::filesystem;

namespace {
struct TempDir {
  fs::path path;
  TempDir() {
    std::string t = (fs::temp_directory_path() / "cagent-journal-XXXXXX").string();
    REQUIRE(::mkdtemp(t.data()) != nullptr);
    path = t;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};
using Clock = std::chrono::steady_clock;
using Entries = std::vector<JournalEntry>;
}  // namespace

TEST_CASE("binding journal: entries read back in order with their expiry: a line cut short by a crash is skipped") {
  TempDir t;
  const fs::path file = binding_journal_path(t.path);
  const IpAddress a = *parse_ip("198.51.100.10"), b = *parse_ip("2001:db8::10");
  const Clock::time_point t1{std::chrono::milliseconds(123456789)}, t2 = t1 + std::chrono::seconds(300);
  {
    BindingJournal j(file, true);
    CHECK(j.append("allowed.test", a, t1));
    CHECK(j.append("peer.allowed.test", b, t2));
    CHECK(j.append("allowed.test", a, t2));  // extended: a later line
    CHECK_FALSE(j.append("", a, t1));        // nothing to bind
  }
  std::ofstream(file, std::ios::app) << "198.51.100.12 nodigits x.test\n198.51.100.12 x.test\n";  // malformed
  std::ofstream(file, std::ios::app) << "198.51.100.11 5 cut.test";  // no newline: the crash
  CHECK(read_binding_journal(file) ==
        Entries{{"allowed.test", a, t1}, {"peer.allowed.test", b, t2}, {"allowed.test", a, t2}});
  // A restart keeps what it bound again, and appends after it.
  BindingJournal again(file, false);
  again.rewrite({{"peer.allowed.test", b, t2}});
  CHECK(again.append("allowed.test", a, t1));
  CHECK(read_binding_journal(file) == Entries{{"peer.allowed.test", b, t2}, {"allowed.test", a, t1}});
  // The session's first dnsguard starts it empty.
  BindingJournal fresh(file, true);
  CHECK(read_binding_journal(file).empty());
  CHECK(read_binding_journal(t.path / "absent").empty());
}

TEST_CASE("binding journal: a pair the disk cuts short is counted and cut off, so the next cannot run into it") {
  TempDir t;
  const fs::path file = binding_journal_path(t.path);
  const IpAddress a = *parse_ip("2001:db8:1::7"), b = *parse_ip("2001:db8::5"), c = *parse_ip("198.51.100.10");
  BindingJournal j(file, true);
  const Clock::time_point t1{std::chrono::milliseconds(123456789)};
  REQUIRE(j.append("first.test", c, t1));
  {
    // Room for "2001:db8:1:" of the next line only. Left there, the next
    // pair would read as "2001:db8:1:2001:db8::5 123456789 b.test": an address no
    // lookup returned, bound to b.test by a restart.
    cagent::test::FileSizeLimit limit(fs::file_size(file) + 11);
    CHECK_FALSE(j.append("a.test", a, t1));
    CHECK(j.lost().count == 1);
    CHECK(j.lost().first_error != 0);
    limit.lift();  // space comes back
    CHECK(j.append("b.test", b, t1));
  }
  CHECK(read_binding_journal(file) == Entries{{"first.test", c, t1}, {"b.test", b, t1}});
  CHECK(j.lost().count == 1);
}

TEST_CASE("binding journal: a disk that takes nothing costs counted pairs, not dnsguard") {
  REQUIRE(fs::exists("/dev/full"));
  BindingJournal j("/dev/full", false);
  const Clock::time_point t1{std::chrono::milliseconds(123456789)};
  const IpAddress a = *parse_ip("198.51.100.10");
  CHECK_FALSE(j.append("a.test", a, t1));
  CHECK_FALSE(j.append("b.test", a, t1));
  CHECK(j.lost().count == 2);
  CHECK(j.lost().first_error == ENOSPC);
  CHECK_FALSE(j.full());  // lost, not at its cap: the next pair is tried as usual
}
