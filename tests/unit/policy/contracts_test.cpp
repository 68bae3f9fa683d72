// The contract between dnsguard and the host besides the policy
// (dnsguard/contracts.hpp), each side's real code in one process:
//
//   dnsguard  DecisionRecord ─DecisionFile─▶ decisions.json ─read_decision_record()─▶ cagent
//
// Every key survives the writer and the reader; records written by
// dnsguard before the contract (data/, made by its old writer) still read,
// and the new writer writes them byte for byte; an unknown version, a
// missing key, a wrong type are refused with one line naming the key.
#include <doctest/doctest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "../common/temp_dir.hpp"
#include "dnsguard/atomic_file.hpp"
#include "dnsguard/contracts.hpp"
#include "dnsguard/decisions.hpp"
#include "launcher/host/blocked_summary.hpp"
#include "launcher/host/live.hpp"

using namespace cagent::dnsguard;
namespace host = cagent::launcher::host;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

const fs::path kData = POLICY_CONTRACT_DATA_DIR;
const DecisionRecord::WallClock::time_point kT0{std::chrono::seconds(1'800'000'000)};

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  REQUIRE(in);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// The steps that made data/decisions-v1.json with dnsguard's writer before
// the contract; snapshot at kT0 + 11 s.
DecisionRecord golden_record() {
  DecisionRecord r;
  r.denied("PyPI.org", 1, kT0);
  r.denied("pypi.org.", 1, kT0 + 5s);
  r.denied("pypi.org", 28, kT0 + 7s);
  r.denied("<bad label bytes>", 16, kT0 + 8s);
  r.gate_refused("b.example", "192.0.2.1:443", "name not bound to destination", kT0 + 1s);
  r.gate_refused("b.example", "192.0.2.2:443", "name not bound to destination", kT0 + 2s);
  r.gate_refused("", "[2001:db8::1]:80", "no \"Host\" \\ header", kT0 + 3s);
  FirewallFlow a;
  a.addr = *parse_ip("198.51.100.19");
  a.proto = 6;
  a.port = 80;
  a.packets = 7;
  FirewallFlow b;
  b.addr = *parse_ip("2001:db8::19");
  b.proto = 17;
  b.port = 443;
  b.packets = 1;
  const std::vector<FirewallFlow> flows{a, b};
  r.firewall_counts(10, flows, kT0 + 4s);
  r.allow_changed(ChangeOp::allow, "pypi.org", kT0 + 9s);
  r.allow_changed(ChangeOp::deny, "pypi.org", kT0 + 10s);
  return r;
}

// Every member of the document set, none at its default: a member added to
// Decisions belongs here too, or the round trip below proves nothing for it.
Decisions every_key_set() {
  Decisions d;
  d.updated = 1800000099;
  d.denied_total = 18446744073709551615u;  // exact to the last bit
  d.denied_unlisted = 7;
  d.denied = {{"pypi.org", 65535, 5, -1, 1800000001}, {"caf\xC3\xA9.example", 28, 1, 2, 3}};
  d.gate_refused_total = 3;
  d.gate_refused_unlisted = 1;
  d.gate_refused = {{"b.example", "", "name not bound", 2, 4, 5}, {"", "[2001:db8::1]:80", "no \"Host\"", 1, 6, 7}};
  d.firewall_refused_total = 11;
  d.firewall_refused_unlisted = 2;
  d.firewall_refused = {{"198.51.100.19:80", "tcp", 9, 8, 9}};
  d.changes_dropped = 4;
  d.changes = {{ChangeOp::allow, "*.pythonhosted.org", 10}, {ChangeOp::deny, "pypi.org", 11}};
  return d;
}

}  // namespace

TEST_CASE("decision record: dnsguard writes what it wrote before the contract, byte for byte") {
  CHECK(write_decisions(golden_record().snapshot(kT0 + 11s)) == slurp(kData / "decisions-v1.json"));
}

TEST_CASE("decision record: the host reads the records of today's dnsguard and of the first one") {
  CHECK(parse_decisions(slurp(kData / "decisions-v1.json")) == golden_record().snapshot(kT0 + 11s));
  // The first version-1 records had no firewall part and no changes.
  const Decisions first = parse_decisions(slurp(kData / "decisions-v1-first.json"));
  CHECK(first.denied_total == 3);
  CHECK(first.denied == std::vector<DeniedLookup>{{"pypi.org", 1, 2, 1800000000, 1800000005},
                                                  {"example.net", 28, 1, 1800000007, 1800000007}});
  CHECK(first.gate_refused ==
        std::vector<GateRefusal>{{"b.example", "", "name not bound to destination", 1, 1800000001, 1800000001}});
  CHECK(first.firewall_refused_total == 0);
  CHECK(first.firewall_refused.empty());
  CHECK(first.changes.empty());
}

TEST_CASE("decision record: every key survives dnsguard's atomic write and the host's reader") {
  cagent::test::TempDir dir;
  const Decisions full = every_key_set();
  write_file_atomically(decisions_path(dir.path()), write_decisions(full));
  const auto read = host::read_decision_record(dir.path());
  REQUIRE(read);
  CHECK(*read == full);
  CHECK(parse_decisions(write_decisions(Decisions{})) == Decisions{});
}

TEST_CASE("decision record: from dnsguard's counting to the host's exit summary") {
  cagent::test::TempDir dir;
  DecisionRecord r;
  for (int i = 0; i < 3; ++i) r.denied("PyPI.org", 1, kT0);
  r.denied("pypi.org", 28, kT0);
  r.denied("example.net", 1, kT0);
  r.gate_refused("b.example", "192.0.2.1:443", "name not bound to destination", kT0);
  std::string error;
  REQUIRE(DecisionFile(decisions_path(session_log_dir((dir.path() / "dnsguard.log").string()))).write(r, true, error));
  const auto record = host::read_decision_record(dir.path());
  REQUIRE(record);
  CHECK(host::summary_lines(*record) ==
        std::vector<std::string>{
            "blocked 5 lookups: pypi.org \xC3\x97" "4, example.net \xE2\x80\x94 add to domains in .cagent.yaml to allow",
            "the connection gate refused 1 connection: b.example \xE2\x80\x94 TLS/HTTP to a name that did not resolve to "
            "that address (details: dnsguard.log)"});
  CHECK(host::render_log("s1", *record, false).rfind("denied   pypi.org A \xC3\x97" "3  ", 0) == 0);
}

TEST_CASE("decision record: keys a later writer of the same version adds are passed over") {
  std::string text = slurp(kData / "decisions-v1.json");
  text.insert(text.find("\"denied_total\""), "\"resolver\":{\"uptime\":5,\"names\":[\"x\"]},");
  text.insert(text.find("\"count\":2"), "\"class\":\"IN\",");
  CHECK(parse_decisions(text) == golden_record().snapshot(kT0 + 11s));
}

TEST_CASE("decision record: an unknown version, a missing key, a wrong type: one line naming the key") {
  const std::string v1 = "{\"version\":1,\"updated\":1,\"denied_total\":0,\"denied_unlisted\":0,";
  const std::string ok_denied = "\"denied\":[{\"name\":\"a.example\",\"type\":1,\"count\":1,\"first\":1,\"last\":1}],";
  const std::string gate = "\"gate_refused_total\":0,\"gate_refused_unlisted\":0,\"gate_refused\":[]";
  struct Row {
    std::string text, message;
  };
  const std::vector<Row> rows = {
      {"{\"version\":2,\"updated\":1}", "decisions.json: version 2 not understood (this build reads version 1)"},
      {"{\"version\":0}", "decisions.json: version 0 not understood (this build reads version 1)"},
      {"{\"updated\":1}", "decisions.json: version: missing"},
      {"{\"version\":\"1\"}", "decisions.json: version: must be an integer"},
      {"[1]", "decisions.json: not a JSON object"},
      {"", "decisions.json: not JSON (incomplete JSON at byte 0)"},
      {"{\"version\":1,", "decisions.json: not JSON (incomplete JSON at byte 13)"},
      {"{\"version\":1} x", "decisions.json: not JSON (extra data at byte 14)"},
      {"{\"version\":1,\"n\":\"\xff\"}", "decisions.json: not JSON (syntax error at byte 18)"},
      {v1 + ok_denied + "\"gate_refused_total\":0,\"gate_refused\":[]}",
       "decisions.json: gate_refused_unlisted: missing"},
      {"{\"version\":1,\"updated\":1.5}", "decisions.json: updated: must be an integer"},
      {v1 + "\"denied\":{}," + gate + "}", "decisions.json: denied: must be an array"},
      {v1 + "\"denied\":[{\"name\":\"a\",\"type\":1,\"count\":1,\"first\":1,\"last\":1},"
            "{\"name\":\"b\",\"type\":1,\"count\":-1,\"first\":1,\"last\":1}]," + gate + "}",
       "decisions.json: denied[1].count: must be an unsigned integer"},
      {v1 + "\"denied\":[{\"name\":\"a\",\"type\":70000,\"count\":1,\"first\":1,\"last\":1}]," + gate + "}",
       "decisions.json: denied[0].type: must be at most 65535"},
      {v1 + "\"denied\":[{\"name\":5,\"type\":1,\"count\":1,\"first\":1,\"last\":1}]," + gate + "}",
       "decisions.json: denied[0].name: must be a string"},
      {v1 + "\"denied\":[{\"type\":1,\"count\":1,\"first\":1,\"last\":1}]," + gate + "}",
       "decisions.json: denied[0].name: missing"},
      {v1 + "\"denied\":[7]," + gate + "}", "decisions.json: denied[0]: must be an object"},
      {v1 + ok_denied + gate + ",\"changes\":[{\"op\":\"frob\",\"name\":\"a\",\"time\":1}]}",
       "decisions.json: changes[0].op: must be one of allow, deny"},
      {v1 + ok_denied + gate + ",\"firewall_refused_total\":true}",
       "decisions.json: firewall_refused_total: must be an unsigned integer"},
  };
  for (const Row& row : rows) {
    CAPTURE(row.text);
    CHECK_THROWS_WITH_AS(parse_decisions(row.text), row.message.c_str(), FormatError);
  }
  // The positive control: the rows' common parts make a valid record.
  CHECK(parse_decisions(v1 + ok_denied + gate + "}").denied_total == 0);
}
