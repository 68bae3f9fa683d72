// The contracts between dnsguard and the host besides the policy
// (dnsguard/contracts.hpp), each side's real code in one process:
//
//   dnsguard  DecisionRecord ─RecordWriter─▶ decisions.json ─read_decision_record()─▶ cagent
//   cagent    control_argv() ─▶ (dnsguard --control) ─ControlRequest─▶ LivePolicy
//             ─ControlReply─▶ cagent
//
// Every key survives the writer and the reader; records written by
// dnsguard before the contract (data/, made by its old writer) still read,
// and the new writer writes them byte for byte; an unknown version, a
// missing key, a wrong type are refused with one line naming the key.
#include <doctest/doctest.h>

#include <cerrno>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "../common/temp_dir.hpp"
#include "dnsguard/atomic_file.hpp"
#include "dnsguard/contracts.hpp"
#include "dnsguard/control.hpp"
#include "dnsguard/decisions.hpp"
#include "dnsguard/policy.hpp"
#include "dnsguard/record_writer.hpp"
#include "launcher/host/blocked_summary.hpp"
#include "launcher/host/docker_argv.hpp"
#include "launcher/host/live.hpp"
#include "launcher/host/policy.hpp"

using namespace cagent::dnsguard;
namespace host = cagent::launcher::host;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

const fs::path kData = POLICY_CONTRACT_DATA_DIR;
const DecisionRecord::WallClock::time_point kT0{std::chrono::seconds(1'800'000'000)};

// As dnsguard writes the record (RecordWriter): a rewrite on the writer's
// thread while it runs, or `final`, its last word as it stops.
void write_as_dnsguard(const fs::path& path, const DecisionRecord& r, bool final) {
  RecordWriter writer(path);
  std::string error;
  const Decisions snapshot = r.snapshot(DecisionRecord::WallClock::now(), final);
  if (final) {
    REQUIRE(writer.finish(&snapshot, error));
  } else {
    writer.submit(snapshot);
    writer.flush();
    REQUIRE(writer.take_report().written == 1);
  }
}

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

// The golden record as today's dnsguard writes it after a full disk: the
// log and the journal lost some, the record lagged; snapshot at kT0 + 11 s,
// the last write (data/decisions-v1-fresh.json).
DecisionRecord golden_record_with_losses() {
  DecisionRecord r = golden_record();
  r.lost(DecisionRecord::Lost::log, WriteLoss{12, ENOSPC, 1800000006});
  r.lost(DecisionRecord::Lost::journal, WriteLoss{3, ENOSPC, 1800000007});
  r.write_failed(ENOSPC, kT0 + 8s);
  return r;
}

// What a reader finds in a record written before the freshness keys.
Decisions without_freshness(Decisions d) {
  d.rewritten_every = 0;
  d.final = false;
  d.incomplete.reset();
  return d;
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
  d.rewritten_every = 10;
  d.final = true;
  d.incomplete = Incomplete{12, "the log: No space left on device", 1, 2, 3, true};
  return d;
}

}  // namespace

TEST_CASE("decision record: dnsguard writes what it wrote before the contract, byte for byte, then what it added") {
  // The keys added since (the record's freshness) come last, so every
  // byte an older reader knows is where it was.
  const std::string before = slurp(kData / "decisions-v1.json");
  // Then learn mode's counts.
  const std::string learned = ",\"learned_total\":0,\"learned_unlisted\":0,\"learned\":[]}\n";
  CHECK(write_decisions(golden_record().snapshot(kT0 + 11s)) ==
        before.substr(0, before.size() - 2) + ",\"rewritten_every\":10,\"final\":false,\"incomplete\":null" +
            learned);
  const std::string fresh = slurp(kData / "decisions-v1-fresh.json");
  CHECK(write_decisions(golden_record_with_losses().snapshot(kT0 + 11s, true)) ==
        fresh.substr(0, fresh.size() - 2) + learned);
}

TEST_CASE("decision record: the host reads the records of today's dnsguard and of the first one") {
  CHECK(parse_decisions(slurp(kData / "decisions-v1-fresh.json")) ==
        golden_record_with_losses().snapshot(kT0 + 11s, true));
  CHECK(parse_decisions(slurp(kData / "decisions-v1.json")) == without_freshness(golden_record().snapshot(kT0 + 11s)));
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
  write_as_dnsguard(decisions_path(session_log_dir((dir.path() / "dnsguard.log").string())), r, false);
  const auto record = host::read_decision_record(dir.path());
  REQUIRE(record);
  CHECK(host::summary_lines(*record) ==
        std::vector<std::string>{
            "blocked 5 lookups: pypi.org \xC3\x97" "4, example.net \xE2\x80\x94 add to domains in .cagent.yaml to allow",
            "the connection gate refused 1 connection: b.example \xE2\x80\x94 TLS/HTTP to a name that did not resolve to "
            "that address (details: dnsguard.log)"});
  CHECK(host::render_log("s1", *record, false).rfind("denied   pypi.org A \xC3\x97" "3  ", 0) == 0);
}

TEST_CASE("decision record: what dnsguard could not write reaches the host's summary as one line") {
  cagent::test::TempDir dir;
  DecisionRecord r;
  r.denied("pypi.org", 1, kT0);
  r.lost(DecisionRecord::Lost::log, WriteLoss{40, ENOSPC, 1800000000});
  // dnsguard's last write, as it stops, once space came back.
  write_as_dnsguard(decisions_path(dir.path()), r, true);
  const host::RecordCheck stopped{dir.path(), 1800000100, true, std::nullopt};
  auto record = host::read_decision_record(dir.path());
  REQUIRE(record);
  CHECK(host::incomplete_line(*record, stopped) ==
        "the decision record is incomplete: writing to the log directory " + dir.path().string() +
            " failed from 2027-01-15T08:00:00Z on (the log: No space left on device); its counts are exact, but its "
            "log lost 40 lines");
  // A record whose last write never came (the disk stayed full) says so by
  // lacking it.
  write_as_dnsguard(decisions_path(dir.path()), r, false);
  record = host::read_decision_record(dir.path());
  REQUIRE(record);
  CHECK(host::incomplete_line(*record, stopped).value_or("").find("and not as it stopped; its counts stop there") !=
        std::string::npos);
  // The positive control: a record that lost nothing, written last, is whole.
  DecisionRecord whole;
  whole.denied("pypi.org", 1, kT0);
  write_as_dnsguard(decisions_path(dir.path()), whole, true);
  record = host::read_decision_record(dir.path());
  REQUIRE(record);
  CHECK(!host::incomplete_line(*record, stopped));
  CHECK(record->denied_total == 1);
}

TEST_CASE("decision record: keys a later writer of the same version adds are passed over") {
  std::string text = slurp(kData / "decisions-v1.json");
  text.insert(text.find("\"denied_total\""), "\"resolver\":{\"uptime\":5,\"names\":[\"x\"]},");
  text.insert(text.find("\"count\":2"), "\"class\":\"IN\",");
  CHECK(parse_decisions(text) == without_freshness(golden_record().snapshot(kT0 + 11s)));
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

TEST_CASE("control protocol: requests and replies survive their writer and reader, every key") {
  const ControlRequest request{ControlOp::deny, {"a.example", "*.b.example"}};
  CHECK(write_control_request(request) == "{\"version\":1,\"op\":\"deny\",\"patterns\":[\"a.example\",\"*.b.example\"]}\n");
  CHECK(parse_control_request(write_control_request(request)) == request);
  CHECK(parse_control_request(write_control_request(ControlRequest{})) == ControlRequest{});
  const ControlReply full{.ok = true,
                          .error = "not really",
                          .op = ControlOp::allow,
                          .names = {"a.example", "b.example"},
                          .added = {"b.example"},
                          .evicted = 18446744073709551615u};
  CHECK(parse_control_reply(write_control_reply(full)) == full);
  ControlReply failed_eviction{.ok = true, .op = ControlOp::deny, .names = {"a.example"}};
  CHECK(write_control_reply(failed_eviction) ==
        "{\"version\":1,\"ok\":true,\"error\":\"\",\"op\":\"deny\",\"names\":[\"a.example\"],\"added\":[],"
        "\"evicted\":null}\n");
  CHECK(parse_control_reply(write_control_reply(failed_eviction)) == failed_eviction);
  // One line each: the socket and docker exec carry lines.
  const ControlReply multiline{.error = "a\nb"};
  CHECK(write_control_reply(multiline).find('\n') == write_control_reply(multiline).size() - 1);
  CHECK(parse_control_reply(write_control_reply(multiline)) == multiline);
}

TEST_CASE("control protocol: a watch event, exactly as written, and read back") {
  const WatchEvent held{.event = WatchWhat::held, .name = "later.test", .type = 28, .wait_ms = 10000};
  CHECK(write_watch_event(held) ==
        "{\"version\":1,\"event\":\"held\",\"name\":\"later.test\",\"type\":28,\"wait_ms\":10000}\n");
  CHECK(parse_watch_event(write_watch_event(held)) == held);
  for (WatchWhat what : {WatchWhat::denied, WatchWhat::allowed, WatchWhat::refused, WatchWhat::timed_out}) {
    const WatchEvent e{.event = what, .name = "a.test"};
    CHECK(parse_watch_event(write_watch_event(e)) == e);
  }
  CHECK_THROWS_WITH_AS(parse_watch_event("{\"version\":1,\"event\":\"maybe\",\"name\":\"a\",\"type\":1,\"wait_ms\":0}"),
                       "watch event: event: must be one of held, denied, allowed, refused, timed_out", FormatError);
  CHECK(parse_control_op("watch") == ControlOp::watch);
  CHECK(parse_control_op("refuse") == ControlOp::refuse);
}

TEST_CASE("control protocol: what the host asks, dnsguard carries out, and the host reads its answer") {
  host::RunningCage cage;
  cage.container = "cagent-s1";
  cage.session = "s1";
  const auto command = host::parse_live_command({"allow", "PyPI.org.", "b.example"});
  REQUIRE(command);
  const std::vector<std::string> argv = host::control_argv(cage, *command);
  // dnsguard --control SOCKET OP PATTERN…, as cmd/dnsguard.cpp reads it.
  const auto control = std::find(argv.begin(), argv.end(), "--control");
  REQUIRE(argv.end() - control >= 3);
  const auto op = parse_control_op(*(control + 2));
  REQUIRE(op);
  const ControlRequest request{*op, {control + 3, argv.end()}};
  LivePolicy live({"b.example"});
  const ControlReply reply = live.execute(parse_control_request(write_control_request(request))).reply;
  const ControlReply seen = parse_control_reply(write_control_reply(reply));
  CHECK(seen.ok);
  CHECK(seen.names == std::vector<std::string>{"pypi.org", "b.example"});
  CHECK(seen.added == std::vector<std::string>{"pypi.org"});
  CHECK(describe(seen) == "allowed pypi.org b.example");
  CHECK(parse_control_op("frobnicate") == std::nullopt);
}

TEST_CASE("control protocol: an unknown version or a bad request is refused with one line") {
  CHECK_THROWS_WITH_AS(parse_control_request("{\"version\":2,\"op\":\"allow\",\"patterns\":[]}\n"),
                       "control request: version 2 not understood (this build reads version 1)", FormatError);
  CHECK_THROWS_WITH_AS(parse_control_request("{\"version\":1,\"op\":\"frobnicate\",\"patterns\":[\"x\"]}"),
                       "control request: op: must be one of allow, deny, list, watch, refuse", FormatError);
  CHECK_THROWS_WITH_AS(parse_control_request("{\"version\":1,\"op\":\"allow\",\"patterns\":[1]}"),
                       "control request: patterns[0]: must be a string", FormatError);
  CHECK_THROWS_WITH_AS(parse_control_request("allow pypi.org\n"),
                       "control request: not JSON (syntax error at byte 0)", FormatError);
  CHECK_THROWS_WITH_AS(parse_control_reply("{\"version\":1,\"ok\":true}"), "control reply: error: missing",
                       FormatError);
  CHECK_THROWS_WITH_AS(
      parse_control_reply("{\"version\":1,\"ok\":true,\"error\":\"\",\"op\":\"deny\",\"names\":[],\"added\":[],"
                          "\"evicted\":-3}"),
      "control reply: evicted: must be an unsigned integer", FormatError);
}

TEST_CASE("the control socket the host names is the one dnsguard makes from the host's policy") {
  host::Config config;
  config.domains = {"github.com"};
  const Policy policy = parse_policy(host::render_policy_toml(config), "policy.toml");
  // The session's log directory is bind-mounted at kContainerLogDir, and
  // the policy puts dnsguard's log there.
  const fs::path log_dir = session_log_dir(policy.log_file);
  CHECK(log_dir == host::kContainerLogDir);
  host::RunningCage cage;
  cage.container = "cagent-s1";
  const auto argv = host::control_argv(cage, *host::parse_live_command({"deny", "a.example"}));
  const auto control = std::find(argv.begin(), argv.end(), "--control");
  REQUIRE(control + 1 < argv.end());
  CHECK(*(control + 1) == control_socket_path(log_dir).string());
  CHECK(decisions_path(log_dir) == fs::path(host::kContainerLogDir) / "decisions.json");
  CHECK(session_log_dir("") == fs::path());
  CHECK(session_log_dir("dnsguard.log") == fs::path("."));
}
