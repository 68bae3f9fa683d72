#include <doctest/doctest.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <sys/stat.h>
#include <unistd.h>

#include "dnsguard/decisions.hpp"
#include "dnsguard/ip.hpp"
#include "dnsguard/write_loss.hpp"

using namespace cagent::dnsguard;
using namespace std::chrono_literals;

namespace {
const DecisionRecord::WallClock::time_point kT0{std::chrono::seconds(1'800'000'000)};
}

TEST_CASE("decision record: denied lookups are counted per name and type, case folded") {
  DecisionRecord r;
  r.denied("PyPI.org", 1, kT0);
  r.denied("pypi.org.", 1, kT0 + 5s);
  r.denied("pypi.org", 28, kT0 + 7s);
  CHECK(r.denied_total() == 3);
  CHECK(r.denied_entries() == 2);
  CHECK(r.denied_count("pypi.org", 1) == 2);
  CHECK(r.denied_count("pypi.org", 28) == 1);
  CHECK(write_decisions(r.snapshot(kT0 + 10s)) ==
        "{\"version\":1,\"updated\":1800000010,\"denied_total\":3,\"denied_unlisted\":0,\"denied\":["
        "{\"name\":\"pypi.org\",\"type\":1,\"count\":2,\"first\":1800000000,\"last\":1800000005},"
        "{\"name\":\"pypi.org\",\"type\":28,\"count\":1,\"first\":1800000007,\"last\":1800000007}],"
        "\"gate_refused_total\":0,\"gate_refused_unlisted\":0,\"gate_refused\":[],"
        "\"firewall_refused_total\":0,\"firewall_refused_unlisted\":0,\"firewall_refused\":[],"
        "\"changes_dropped\":0,\"changes\":[],\"rewritten_every\":10,\"final\":false,\"incomplete\":null,"
        "\"learned_total\":0,\"learned_unlisted\":0,\"learned\":[]}\n");
}

TEST_CASE("decision record: names learn mode resolved, per name whatever the type, bounded, exact totals") {
  DecisionRecord r(DecisionRecord::Limits{.max_denied = 100, .max_refused = 2, .max_learned = 2});
  r.learned("A.Wild.test", kT0);
  r.learned("a.wild.test.", kT0 + 3s);
  r.learned("b.wild.test", kT0 + 4s);
  r.learned("c.wild.test", kT0 + 5s);  // past the bound: in the totals only
  CHECK(r.learned_total() == 4);
  CHECK(r.learned_count("a.wild.test") == 2);
  CHECK(r.learned_count("c.wild.test") == 0);
  const Decisions d = parse_decisions(write_decisions(r.snapshot(kT0 + 6s)));
  CHECK(d.learned_total == 4);
  CHECK(d.learned_unlisted == 1);
  REQUIRE(d.learned.size() == 2);
  CHECK(d.learned[0] == LearnedName{"a.wild.test", 2, 1800000000, 1800000003});
  CHECK(d.learned[1] == LearnedName{"b.wild.test", 1, 1800000004, 1800000004});
  CHECK(d.denied_total == 0);
  // A record without the learn keys (older, or not in learn mode) reads as none learned.
  const Decisions old = parse_decisions(
      "{\"version\":1,\"updated\":1,\"denied_total\":0,\"denied_unlisted\":0,\"denied\":[],"
      "\"gate_refused_total\":0,\"gate_refused_unlisted\":0,\"gate_refused\":[]}");
  CHECK(old.learned.empty());
  CHECK(old.learned_total == 0);
}

TEST_CASE("decision record: exact totals past the bound, memory stays bounded") {
  DecisionRecord r(DecisionRecord::Limits{.max_denied = 100, .max_refused = 2});
  for (int i = 0; i < 300; ++i) r.denied("n" + std::to_string(i) + ".example", 1, kT0);
  for (int i = 0; i < 300; ++i) r.denied("n0.example", 1, kT0);  // listed: still counted there
  CHECK(r.denied_total() == 600);
  CHECK(r.denied_entries() == 100);
  CHECK(r.denied_unlisted() == 200);
  CHECK(r.denied_count("n0.example", 1) == 301);
  for (int i = 0; i < 5; ++i) r.gate_refused("", "192.0.2." + std::to_string(i) + ":443", "no name", kT0);
  CHECK(r.refused_total() == 5);
  CHECK(r.refused_entries() == 2);
  CHECK(r.refused_unlisted() == 3);
}

TEST_CASE("decision record: gate refusals keyed by name (or destination) and reason") {
  DecisionRecord r;
  r.gate_refused("b.example", "192.0.2.1:443", "name not bound to destination", kT0);
  r.gate_refused("b.example", "192.0.2.2:443", "name not bound to destination", kT0 + 1s);
  r.gate_refused("", "[2001:db8::1]:80", "no \"Host\"", kT0 + 2s);
  CHECK(r.refused_total() == 3);
  const Decisions d = r.snapshot(kT0);
  CHECK(d.gate_refused == std::vector<GateRefusal>{
                             {"b.example", "", "name not bound to destination", 2, 1800000000, 1800000001},
                             {"", "[2001:db8::1]:80", "no \"Host\"", 1, 1800000002, 1800000002}});
  CHECK(write_decisions(d).find("{\"name\":\"\",\"dst\":\"[2001:db8::1]:80\",\"reason\":\"no \\\"Host\\\"\",\"count\":1,") !=
        std::string::npos);
}

TEST_CASE("decision record: whatever bytes a name holds, the file stays JSON that reads back") {
  DecisionRecord r;
  r.denied(std::string_view("a\"b\\c\x01\xff", 7), 16, kT0);
  const std::string text = write_decisions(r.snapshot(kT0));
  CHECK(text.find("\"name\":\"a\\\"b\\\\c\\u0001\xEF\xBF\xBD\"") != std::string::npos);  // U+FFFD
  CHECK(parse_decisions(text).denied.at(0).name == "a\"b\\c\x01\xEF\xBF\xBD");
}

TEST_CASE("decision record: run-time allowlist changes, the last ones kept") {
  DecisionRecord r;
  r.allow_changed(ChangeOp::allow, "pypi.org", kT0);
  CHECK(r.snapshot(kT0).changes == std::vector<AllowChange>{{ChangeOp::allow, "pypi.org", 1800000000}});
  CHECK(write_decisions(r.snapshot(kT0)).find(
            "\"changes_dropped\":0,\"changes\":[{\"op\":\"allow\",\"name\":\"pypi.org\",\"time\":1800000000}]") !=
        std::string::npos);
  for (std::size_t i = 0; i < DecisionRecord::kMaxChanges + 3; ++i)
    r.allow_changed(ChangeOp::deny, "x" + std::to_string(i) + ".example", kT0);
  const Decisions d = r.snapshot(kT0);
  CHECK(d.changes_dropped == 4);
  CHECK(d.changes.size() == DecisionRecord::kMaxChanges);
  CHECK(d.changes.front().name == "x3.example");
  CHECK(d.changes.back() == AllowChange{ChangeOp::deny, "x258.example", 1800000000});
}

namespace {
FirewallFlow flow(std::initializer_list<std::uint8_t> addr, std::uint8_t proto, std::uint16_t port, std::uint64_t n) {
  FirewallFlow f;
  f.addr.v6 = addr.size() == 16;
  std::copy(addr.begin(), addr.end(), f.addr.bytes.begin());
  f.proto = proto;
  f.port = port;
  f.packets = n;
  return f;
}
}  // namespace

TEST_CASE("decision record: the firewall's refusals, from the kernel's absolute counters") {
  DecisionRecord r;
  r.mark_written();
  // Nothing refused yet: nothing changes.
  r.firewall_counts(0, {}, kT0);
  CHECK_FALSE(r.dirty());
  std::vector<FirewallFlow> now = {flow({198, 51, 100, 19}, 6, 80, 3),
                                   flow({0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x19}, 17, 443, 1)};
  r.firewall_counts(5, now, kT0 + 1s);  // 5: one ICMP packet the kernel does not itemize
  CHECK(r.dirty());
  CHECK(r.firewall_total() == 5);
  // The next reading: tcp grew by 2, udp did not; the total by 2.
  now[0].packets = 5;
  r.firewall_counts(7, now, kT0 + 3s);
  CHECK(r.firewall_total() == 7);
  Decisions d = r.snapshot(kT0 + 4s);
  CHECK(d.firewall_refused_total == 7);
  CHECK(d.firewall_refused_unlisted == 1);
  CHECK(d.firewall_refused == std::vector<FirewallRefusal>{{"198.51.100.19:80", "tcp", 5, 1800000001, 1800000003},
                                                           {"[2001:db8::19]:443", "udp", 1, 1800000001, 1800000001}});
  // The counters restarted (a re-installed ruleset): the new counts are whole.
  r.mark_written();
  now = {flow({198, 51, 100, 19}, 6, 80, 2)};
  r.firewall_counts(2, now, kT0 + 10s);
  CHECK(r.dirty());
  CHECK(r.firewall_total() == 9);
  d = r.snapshot(kT0 + 11s);
  CHECK(d.firewall_refused.at(0) == FirewallRefusal{"198.51.100.19:80", "tcp", 7, 1800000001, 1800000010});
  // The same reading twice adds nothing.
  r.mark_written();
  r.firewall_counts(2, now, kT0 + 12s);
  CHECK_FALSE(r.dirty());
  CHECK(r.firewall_total() == 9);
}

TEST_CASE("decision record: a restarted dnsguard takes up its predecessor's record, exactly") {
  DecisionRecord before;
  before.denied("a.example", 1, kT0);
  before.denied("a.example", 1, kT0 + 1s);
  before.denied("b.example", 28, kT0 + 2s);
  before.gate_refused("c.example", "192.0.2.1:443", "name not bound to destination", kT0 + 3s);
  const FirewallFlow flow{*parse_ip("192.0.2.9"), 6, 80, 4};
  before.firewall_counts(4, std::span(&flow, 1), kT0 + 4s);
  before.allow_changed(ChangeOp::allow, "pypi.org", kT0 + 5s);
  before.learned("d.example", kT0 + 5s);
  const Decisions written = parse_decisions(write_decisions(before.snapshot(kT0 + 6s)));

  DecisionRecord after;
  after.restore(written, kT0 + 6s);
  CHECK(after.snapshot(kT0 + 6s) == before.snapshot(kT0 + 6s));
  // Counting goes on from there; the kernel's counters are absolute, so
  // the same reading adds nothing and growth adds only itself.
  after.denied("a.example", 1, kT0 + 7s);
  CHECK(after.denied_count("a.example", 1) == 3);
  CHECK(after.denied_total() == 4);
  after.firewall_counts(4, std::span(&flow, 1), kT0 + 8s);
  CHECK(after.firewall_total() == 4);
  const FirewallFlow grown{flow.addr, 6, 80, 6};
  after.firewall_counts(6, std::span(&grown, 1), kT0 + 9s);
  CHECK(after.firewall_total() == 6);
  CHECK(after.snapshot(kT0 + 9s).firewall_refused.front().count == 6);
}

TEST_CASE("decision record: what could not be written marks it incomplete, since the first failure, and totals stay exact") {
  DecisionRecord r;
  r.denied("a.example", 1, kT0);
  CHECK(!r.incomplete());
  // The positive control: nothing lost, nothing said.
  CHECK(!r.snapshot(kT0).incomplete);
  r.mark_written();
  // The log's and the journal's counts are absolute: only growth is added.
  r.lost(DecisionRecord::Lost::log, WriteLoss{});
  CHECK(!r.incomplete());
  CHECK(!r.dirty());
  r.lost(DecisionRecord::Lost::log, WriteLoss{5, ENOSPC, 1800000010});
  r.lost(DecisionRecord::Lost::log, WriteLoss{5, ENOSPC, 1800000010});
  CHECK(r.dirty());  // written as soon as it can be
  r.write_failed(ENOSPC, kT0 + 12s);
  r.denied("a.example", 1, kT0 + 13s);  // counting goes on
  r.write_failed(ENOSPC, kT0 + 14s);
  // A failure made earlier but found later (the journal's, read once a
  // second) is the first one.
  r.lost(DecisionRecord::Lost::journal, WriteLoss{2, EDQUOT, 1800000009});
  r.lost(DecisionRecord::Lost::log, WriteLoss{7, ENOSPC, 1800000010});
  const Decisions d = r.snapshot(kT0 + 15s);
  REQUIRE(d.incomplete);
  CHECK(*d.incomplete == Incomplete{1800000009, "the gate binding journal: Disk quota exceeded", 2, 7, 2, false});
  CHECK(d.denied_total == 2);
  CHECK(d.denied.at(0).count == 2);
  CHECK(parse_decisions(write_decisions(d)) == d);
}

TEST_CASE("decision record: a restart keeps its predecessor's losses, and says when the record it took up lagged") {
  DecisionRecord before;
  before.denied("a.example", 1, kT0);
  before.lost(DecisionRecord::Lost::log, WriteLoss{4, ENOSPC, 1800000001});
  const Decisions written = before.snapshot(kT0 + 2s);

  // Taken up at once (cage-init restarts within about a second): kept as it was.
  DecisionRecord soon;
  soon.restore(written, kT0 + 3s);
  REQUIRE(soon.incomplete());
  CHECK(*soon.incomplete() == *written.incomplete);
  // …and this process's own losses add to it.
  soon.lost(DecisionRecord::Lost::log, WriteLoss{1, ENOSPC, 1800000004});
  CHECK(soon.incomplete()->log_lines_lost == 5);
  CHECK(soon.incomplete()->since == 1800000001);

  // A record older than its promise plus the slack lagged behind before
  // the crash (the disk was full): what it had not written is gone.
  DecisionRecord clean;
  clean.denied("a.example", 1, kT0);
  const Decisions lagging = clean.snapshot(kT0);
  const auto late = kT0 + std::chrono::seconds(kDecisionsRewrittenEvery + DecisionRecord::kRestartSlack + 1);
  DecisionRecord after;
  after.restore(lagging, late);
  REQUIRE(after.incomplete());
  CHECK(after.incomplete()->totals_short);
  CHECK(after.incomplete()->since == 1800000000);
  CHECK(after.incomplete()->reason == "the decision record: not rewritten for 16 s before dnsguard restarted");
  // Positive controls: the same record taken up within its promise, a
  // final one however old, and one of a dnsguard that promised nothing.
  DecisionRecord in_time;
  in_time.restore(lagging, late - 1s);
  CHECK(!in_time.incomplete());
  Decisions final_one = lagging;
  final_one.final = true;
  DecisionRecord after_final;
  after_final.restore(final_one, late + 1000s);
  CHECK(!after_final.incomplete());
  Decisions older = lagging;
  older.rewritten_every = 0;
  DecisionRecord after_older;
  after_older.restore(older, late + 1000s);
  CHECK(!after_older.incomplete());
}
