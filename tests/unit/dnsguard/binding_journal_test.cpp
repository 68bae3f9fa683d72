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
using Pairs = std::vector<std::pair<std::string, IpAddress>>;
}  // namespace

TEST_CASE("binding journal: pairs read back in order; a line cut short by a crash is skipped") {
  TempDir t;
  const fs::path file = binding_journal_path(t.path);
  const IpAddress a = *parse_ip("198.51.100.10"), b = *parse_ip("2001:db8::10");
  {
    BindingJournal j(file, true);
    CHECK(j.append("allowed.test", a));
    CHECK(j.append("peer.allowed.test", b));
    CHECK_FALSE(j.append("", a));  // nothing to bind
  }
  std::ofstream(file, std::ios::app) << "198.51.100.11 cut.test";  // no newline: the crash
  CHECK(read_binding_journal(file) == Pairs{{"allowed.test", a}, {"peer.allowed.test", b}});
  // A restart keeps what it bound again, and appends after it.
  BindingJournal again(file, false);
  again.rewrite({{"peer.allowed.test", b}});
  CHECK(again.append("allowed.test", a));
  CHECK(read_binding_journal(file) == Pairs{{"peer.allowed.test", b}, {"allowed.test", a}});
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
  REQUIRE(j.append("first.test", c));
  {
    // Room for "2001:db8:1:" of the next line only. Left there, the next
    // pair would read as "2001:db8:1:2001:db8::5 b.test": an address no
    // lookup returned, bound to b.test by a restart.
    cagent::test::FileSizeLimit limit(fs::file_size(file) + 11);
    CHECK_FALSE(j.append("a.test", a));
    CHECK(j.lost().count == 1);
    CHECK(j.lost().first_error != 0);
    limit.lift();  // space comes back
    CHECK(j.append("b.test", b));
  }
  CHECK(read_binding_journal(file) == Pairs{{"first.test", c}, {"b.test", b}});
  CHECK(j.lost().count == 1);
}

TEST_CASE("binding journal: a disk that takes nothing costs counted pairs, not dnsguard") {
  REQUIRE(fs::exists("/dev/full"));
  BindingJournal j("/dev/full", false);
  const IpAddress a = *parse_ip("198.51.100.10");
  CHECK_FALSE(j.append("a.test", a));
  CHECK_FALSE(j.append("b.test", a));
  CHECK(j.lost().count == 2);
  CHECK(j.lost().first_error == ENOSPC);
  CHECK_FALSE(j.full());  // lost, not at its cap: the next pair is tried as usual
}
