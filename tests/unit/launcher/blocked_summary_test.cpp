#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "launcher/host/blocked_summary.hpp"
#include "launcher/host/paths.hpp"
#include "tests/unit/launcher/test_util.hpp"

using namespace cagent::launcher::host;
using cagent::dnsguard::Decisions;
using cagent::dnsguard::parse_decisions;

namespace {
using Lines = std::vector<std::string>;
}  // namespace

TEST_CASE("exact summary from the decision record: types merged, unlisted counted, every name said") {
  const Decisions d = parse_decisions(
      "{\"version\":1,\"updated\":1800000010,\"denied_total\":311,\"denied_unlisted\":5,\"denied\":["
      "{\"name\":\"pypi.org\",\"type\":1,\"count\":200,\"first\":1,\"last\":2},"
      "{\"name\":\"example.net\",\"type\":1,\"count\":3,\"first\":1,\"last\":2},"
      "{\"name\":\"pypi.org\",\"type\":28,\"count\":100,\"first\":1,\"last\":2},"
      "{\"name\":\"x.invalid\",\"type\":1,\"count\":1,\"first\":1,\"last\":1},"
      "{\"name\":\"a\\\"b\",\"type\":1,\"count\":2,\"first\":1,\"last\":2}],"
      "\"gate_refused_total\":3,\"gate_refused_unlisted\":0,\"gate_refused\":["
      "{\"name\":\"b.example\",\"dst\":\"\",\"reason\":\"not bound\",\"count\":2,\"first\":1,\"last\":1},"
      "{\"name\":\"\",\"dst\":\"192.0.2.1:443\",\"reason\":\"no SNI\",\"count\":1,\"first\":1,\"last\":1}]}\n");
  // A name under .invalid is a lookup the agent made like any other: it
  // is counted (cage-init's readiness probe is no lookup of class IN, and
  // never reaches the record).
  CHECK(summary_lines(d) ==
        Lines{"blocked 311 lookups: pypi.org \xC3\x97" "300, example.net \xC3\x97" "3, a\"b \xC3\x97" "2, x.invalid, "
              "+5 more not listed \xE2\x80\x94 add to domains in .cagent.yaml to allow",
              "the connection gate refused 3 connections: b.example \xC3\x97" "2, 192.0.2.1:443 \xE2\x80\x94 TLS/HTTP to a "
              "name that did not resolve to that address (details: dnsguard.log)"});
  // A record from before the firewall part: nothing to say about it.
  CHECK(d.firewall_refused_total == 0);
}

TEST_CASE("exact summary: the firewall's own refusals, itemized ones and the rest") {
  const Decisions d = parse_decisions(
      "{\"version\":1,\"updated\":1800000010,\"denied_total\":0,\"denied_unlisted\":0,\"denied\":[],"
      "\"gate_refused_total\":0,\"gate_refused_unlisted\":0,\"gate_refused\":[],"
      "\"firewall_refused_total\":12,\"firewall_refused_unlisted\":2,\"firewall_refused\":["
      "{\"dst\":\"198.51.100.19:80\",\"proto\":\"tcp\",\"count\":9,\"first\":1,\"last\":2},"
      "{\"dst\":\"[2001:db8::7]:53\",\"proto\":\"udp\",\"count\":1,\"first\":1,\"last\":1}],"
      "\"changes_dropped\":0,\"changes\":[]}\n");
  CHECK(summary_lines(d) ==
        Lines{"the firewall refused 12 packets: 198.51.100.19:80/tcp \xC3\x97" "9, [2001:db8::7]:53/udp, +2 more not listed "
              "\xE2\x80\x94 connections to addresses no allowed name resolved to"});
}

TEST_CASE("exact summary: refusals of which none is itemized read as a count, not an empty list") {
  Decisions d;
  d.firewall_refused_total = 3;
  d.firewall_refused_unlisted = 3;
  CHECK(summary_lines(d) ==
        Lines{"the firewall refused 3 packets: 3 not itemized \xE2\x80\x94 connections to addresses no allowed name resolved to"});
  d.firewall_refused_total = 1;
  CHECK(summary_lines(d).at(0).rfind("the firewall refused 1 packet: 1 not itemized", 0) == 0);
}

TEST_CASE("exact summary: hundreds of distinct names are all counted, nothing when nothing was refused") {
  Decisions d;
  d.denied_total = 300;
  for (int i = 0; i < 300; ++i) d.denied.push_back({"n" + std::to_string(i) + ".example", 1, 1, 1, 1});
  const Lines lines = summary_lines(d, 2);
  REQUIRE(lines.size() == 1);
  CHECK(lines[0].rfind("blocked 300 lookups: n0.example, n1.example, +298 more \xE2\x80\x94", 0) == 0);
  CHECK(summary_lines(Decisions{}).empty());
  d = Decisions{};
  d.denied_total = 1;
  d.denied.push_back({"a.example", 1, 1, 1, 1});
  CHECK(summary_lines(d) == Lines{"blocked 1 lookup: a.example \xE2\x80\x94 add to domains in .cagent.yaml to allow"});
}

TEST_CASE("the record of a session's log directory: none, read, or unreadable with the file named") {
  test::TempDir tmp;
  const auto dir = tmp.dir("session-ab12");
  CHECK(!read_decision_record(dir));  // the cage ended before dnsguard wrote one
  CHECK(!read_decision_record(tmp / "no-such-session"));
  // dnsguard's human log is no substitute: it is not read at all.
  write_file(dir / "dnsguard.log", "denied name=pypi.org type=1 client=127.0.0.1\n", 0644);
  CHECK(!read_decision_record(dir));
  write_file(dir / "decisions.json",
             "{\"version\":1,\"updated\":1,\"denied_total\":1,\"denied_unlisted\":0,\"denied\":["
             "{\"name\":\"pypi.org\",\"type\":1,\"count\":1,\"first\":1,\"last\":1}],"
             "\"gate_refused_total\":0,\"gate_refused_unlisted\":0,\"gate_refused\":[]}\n",
             0644);
  const auto record = read_decision_record(dir);
  REQUIRE(record);
  CHECK(record->denied_total == 1);
  for (const std::string& bad : {std::string("{\"version\":1,"), std::string("{\"version\":2}"),
                                 std::string("{\"version\":1,\"denied_total\":\"x\"}"), std::string("")}) {
    CAPTURE(bad);
    write_file(dir / "decisions.json", bad, 0644);
    const std::string names_file = (dir / "decisions.json").string() + ": ";
    CHECK_THROWS_WITH(read_decision_record(dir), doctest::Contains(names_file.c_str()));
  }
}

namespace {
// A record of today's dnsguard: it promises a rewrite every 10 s.
Decisions fresh_record(std::int64_t updated, bool final) {
  Decisions d;
  d.updated = updated;
  d.rewritten_every = 10;
  d.final = final;
  d.denied_total = 2;
  d.denied = {{"pypi.org", 1, 2, 1800000000, 1800000001}};
  return d;
}
const std::int64_t kT = 1800000000;  // 2027-01-15T08:00:00Z
}  // namespace

TEST_CASE("incomplete record: dnsguard's own mark, said with the directory, the time and what was lost") {
  const RecordCheck stopped{"/home/u/.cagent/logs/session-ab12", kT + 100, true, std::nullopt};
  Decisions d = fresh_record(kT + 99, true);
  // The positive control: a final record that lost nothing is whole.
  CHECK(!incomplete_line(d, stopped));
  d.incomplete = cagent::dnsguard::Incomplete{kT, "the log: No space left on device", 3, 12, 0, false};
  CHECK(incomplete_line(d, stopped) ==
        "the decision record is incomplete: writing to the log directory /home/u/.cagent/logs/session-ab12 failed "
        "from 2027-01-15T08:00:00Z on (the log: No space left on device); its counts are exact, but its log lost 12 "
        "lines and the record lagged behind for 3 rewrites");
  d.incomplete->bindings_lost = 4;
  CHECK(incomplete_line(d, stopped).value_or("").ends_with(
      "its log lost 12 lines, 4 gate bindings were not journalled (a restart of dnsguard would not restore them) and "
      "the record lagged behind for 3 rewrites"));
  // A restart took up a record that lagged: the totals are short.
  d.incomplete->totals_short = true;
  CHECK(incomplete_line(d, stopped).value_or("").ends_with(
      "; dnsguard restarted meanwhile, so its counts miss what it had not written"));
}

TEST_CASE("incomplete record: one that stopped being written is told by its freshness") {
  const std::string dir = "/home/u/.cagent/logs/session-ab12";
  // The session is over and the record lacks dnsguard's last write (the
  // disk stayed full, or dnsguard was killed): its counts stop there.
  const Decisions stale = fresh_record(kT, false);
  CHECK(incomplete_line(stale, RecordCheck{dir, kT + 3, true, std::nullopt}) ==
        "the decision record is incomplete: dnsguard last wrote it at 2027-01-15T08:00:00Z and not as it stopped; its "
        "counts stop there");
  // …and a full directory is named as the likely cause.
  CHECK(incomplete_line(stale, RecordCheck{dir, kT + 3, true, 0}) ==
        "the decision record is incomplete: dnsguard last wrote it at 2027-01-15T08:00:00Z and not as it stopped, and "
        "the log directory /home/u/.cagent/logs/session-ab12 is full (0 bytes free); its counts stop there");
  CHECK(incomplete_line(stale, RecordCheck{dir, kT + 3, true, 64 << 20}).value_or("").find("is full") == std::string::npos);
  // While the session may run: older than the promise (10 s) and the slack.
  CHECK(!incomplete_line(stale, RecordCheck{dir, kT + 10 + kStaleSlack, false, 0}));
  CHECK(incomplete_line(stale, RecordCheck{dir, kT + 11 + kStaleSlack, false, 0}) ==
        "the decision record is incomplete: dnsguard last wrote it at 2027-01-15T08:00:00Z and not since (it rewrites "
        "it every 10 s), and the log directory /home/u/.cagent/logs/session-ab12 is full (0 bytes free); its counts "
        "stop there");
  // dnsguard's own mark and staleness together: both said.
  Decisions both = stale;
  both.incomplete = cagent::dnsguard::Incomplete{kT - 5, "the decision record: No space left on device", 1, 0, 0, false};
  CHECK(incomplete_line(both, RecordCheck{dir, kT + 3, true, std::nullopt}) ==
        "the decision record is incomplete: writing to the log directory /home/u/.cagent/logs/session-ab12 failed from "
        "2027-01-15T07:59:55Z on (the decision record: No space left on device); dnsguard last wrote it at "
        "2027-01-15T08:00:00Z and not as it stopped; its counts stop there");
  // Positive controls: a final record however old, a fresh one of a
  // running session, and one of a dnsguard that promised nothing (older
  // records: rewritten_every absent) are not called incomplete.
  CHECK(!incomplete_line(fresh_record(kT, true), RecordCheck{dir, kT + 100000, false, 0}));
  CHECK(!incomplete_line(fresh_record(kT, false), RecordCheck{dir, kT + 2, false, 0}));
  Decisions old = stale;
  old.rewritten_every = 0;
  CHECK(!incomplete_line(old, RecordCheck{dir, kT + 100000, true, 0}));
}

TEST_CASE("no record after a session: said only when the log directory is full") {
  const std::string dir = "/home/u/.cagent/logs/session-ab12";
  CHECK(missing_record_line(RecordCheck{dir, kT, true, 4096}) ==
        "no decision record: the log directory /home/u/.cagent/logs/session-ab12 is full (4096 bytes free), so "
        "dnsguard could not write it; what the cage blocked is unknown");
  // The session ended before dnsguard served: what stopped it said why.
  CHECK(!missing_record_line(RecordCheck{dir, kT, true, 64 << 20}));
  CHECK(!missing_record_line(RecordCheck{dir, kT, true, std::nullopt}));
  test::TempDir tmp;
  const auto free = free_bytes(tmp.dir("logs"));
  REQUIRE(free);
  CHECK(*free > 0);
  CHECK(!free_bytes(tmp / "no-such-dir"));
}

TEST_CASE("relay record: refusals counted per reason, torn lines skipped, nothing when there is none") {
  cagent::launcher::host::test::TempDir dir;
  CHECK(cagent::launcher::host::read_relay_record(dir.path()).empty());
  CHECK_FALSE(cagent::launcher::host::relay_line({}));
  {
    std::ofstream out(dir.path() / "relay.jsonl");
    for (int i = 0; i < 2; ++i) {
      out << cagent::dnsguard::write_relay_refusal({"api.github.com", "secret github sent to echo.test", "github",
                                                    "echo.test", 1});
    }
    out << cagent::dnsguard::write_relay_refusal({"api.github.com", "a request without Host", "", "", 2});
    out << "{\"version\":1,\"host\":";  // torn by a full disk
  }
  const auto refusals = cagent::launcher::host::read_relay_record(dir.path());
  REQUIRE(refusals.size() == 3);
  CHECK(refusals[0].sent_to == "echo.test");
  CHECK(cagent::launcher::host::relay_line(refusals) ==
        "the secret relay refused 3 requests: secret github sent to echo.test \xC3\x97" "2, a request without Host "
        "\xE2\x80\x94 a placeholder is worth something only at its secret's own hosts");
}
