#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "dnsguard/contracts.hpp"
#include "launcher/host/cli.hpp"
#include "launcher/host/live.hpp"
#include "launcher/host/paths.hpp"
#include "launcher/host/sha256.hpp"
#include "launcher/host/file_identity.hpp"
#include "launcher/host/workspace_approval.hpp"
#include "tests/unit/launcher/test_util.hpp"

using namespace cagent::launcher::host;

TEST_CASE("live commands: argv before any -- : patterns validated before anything changes") {
  CHECK(!parse_live_command({}));
  CHECK(!parse_live_command({"--", "allow", "x.example"}));  // a command named allow, in the cage
  CHECK(!parse_live_command({"-d", "x.example"}));
  auto c = parse_live_command({"allow", "PyPI.org.", "*.pythonhosted.org", "pypi.org", "--session", "abc"});
  REQUIRE(c);
  CHECK(c->kind == LiveCommand::Kind::allow);
  CHECK(c->names == std::vector<std::string>{"pypi.org", "*.pythonhosted.org"});
  CHECK(c->session == "abc");
  c = parse_live_command({"deny", "--session=s1", "a.example"});
  REQUIRE(c);
  CHECK(c->kind == LiveCommand::Kind::deny);
  CHECK(c->session == "s1");
  for (const std::vector<std::string>& bad :
       {std::vector<std::string>{"allow"}, {"allow", "bad..name"}, {"allow", "*"}, {"deny", "a.example", "--session"},
        {"allow", "a.example", "--session="}, {"allow", "a.example", "--frobnicate"}, {"deny", "--session", "x"},
        {"ps", "x"}, {"ps", "--session", "a"}, {"log", "a", "b"}, {"log", "not/hex"}, {"allow", "a.example", "--json"}}) {
    CAPTURE(bad.size());
    CHECK_THROWS_AS(parse_live_command(bad), UsageError);
  }
}

TEST_CASE("live commands: which cages they reach") {
  const auto cages = parse_running_cages("cagent-1\ts1\ncagent-2\ts2\nbroken\n\tnone\ncagent-3\ts3\n");
  REQUIRE(cages.size() == 3);
  std::vector<RunningCage> with_ws = cages;
  with_ws[0].workspace = "/w/a";
  with_ws[1].workspace = "/w/b";
  with_ws[2].workspace = "/w/a";
  auto t = select_cages(with_ws, "/w/a", std::nullopt);
  REQUIRE(t.size() == 2);
  CHECK(t[1].container == "cagent-3");
  t = select_cages(with_ws, "/w/a", std::string("s2"));  // a named session, whatever its workspace
  REQUIRE(t.size() == 1);
  CHECK(t[0].container == "cagent-2");
  CHECK_THROWS_WITH_AS(select_cages(with_ws, "/w/c", std::nullopt), doctest::Contains("no running cage for this workspace"),
                       UsageError);
  CHECK_THROWS_WITH_AS(select_cages(with_ws, "/w/a", std::string("nope")), doctest::Contains("unknown session nope"),
                       UsageError);
  const auto c = parse_live_command({"allow", "x.example"});
  CHECK(control_argv(with_ws[0], *c) ==
        std::vector<std::string>{"docker", "exec", "-u", "0", "cagent-1", "/usr/local/bin/dnsguard", "--control",
                                 "/var/log/cagent/control/dnsguard.sock", "allow", "x.example"});
}

TEST_CASE("live commands: run against docker (fake runner)") {
  test::FakeRunner runner;
  runner.respond = [](const std::vector<std::string>& argv) {
    if (argv[1] == "ps") return RunResult{0, "cagent-1\ts1\ncagent-2\ts2\n", false};
    if (argv[1] == "inspect")
      return RunResult{0, std::string("2026-11-28T09:00:00.5Z\t") + (argv.back() == "cagent-1" ? "/w/a" : "/w/b") + "\t[]\n", false};
    if (argv[1] == "exec") {
      return RunResult{0, cagent::dnsguard::write_control_reply({.ok = true, .op = cagent::dnsguard::ControlOp::allow,
                                                                 .names = {"x.example"}, .added = {"x.example"}}),
                       false};
    }
    return RunResult{1, "", false};
  };
  HostContext host;
  host.workspace = "/w/a";
  std::ostringstream out, err;
  std::istringstream in;
  CHECK(run_live(*parse_live_command({"allow", "x.example"}), host, runner, SessionIo{out, err, in}) == 0);
  CHECK(err.str() == "cagent: session s1: allowed x.example (until the session ends)\n");
  CHECK(runner.called_with_prefix({"docker", "exec", "-u", "0", "cagent-1"}));
  CHECK(!runner.called_with_prefix({"docker", "exec", "-u", "0", "cagent-2"}));
  // dnsguard refuses (e.g. deny of a policy name): its reason, exit 2.
  std::string exec_output;
  int exec_status = 2;
  runner.respond = [&](const std::vector<std::string>& argv) {
    if (argv[1] == "ps") return RunResult{0, "cagent-1\ts1\n", false};
    if (argv[1] == "inspect") return RunResult{0, "2026-11-28T09:00:00Z\t/w/a\tnull\n", false};
    return RunResult{exec_status, exec_output, false};
  };
  const auto deny = [&] {
    err.str("");
    return run_live(*parse_live_command({"deny", "x.example"}), host, runner, SessionIo{out, err, in});
  };
  exec_output = cagent::dnsguard::write_control_reply(
      {.ok = false, .error = "x.example was not allowed at run time", .op = cagent::dnsguard::ControlOp::deny});
  CHECK(deny() == 2);
  CHECK(err.str() == "cagent: session s1: x.example was not allowed at run time\n");
  // It took the name back: how many addresses left the sets (or that
  // none could be evicted), from the reply's fields.
  exec_status = 0;
  exec_output = cagent::dnsguard::write_control_reply(
      {.ok = true, .op = cagent::dnsguard::ControlOp::deny, .names = {"x.example"}, .evicted = 2});
  CHECK(deny() == 0);
  CHECK(err.str() == "cagent: session s1: denied x.example; 2 addresses left the sets\n");
  exec_output = cagent::dnsguard::write_control_reply(
      {.ok = true, .op = cagent::dnsguard::ControlOp::deny, .names = {"x.example"}});
  CHECK(deny() == 0);
  CHECK(err.str() == "cagent: session s1: denied x.example; their addresses leave the sets at their timeout "
                     "(eviction failed)\n");
  // dnsguard unreachable: what dnsguard --control (or docker) said instead.
  exec_status = 1;
  exec_output = "dnsguard: connect /var/log/cagent/control/dnsguard.sock: No such file or directory\n";
  CHECK(deny() == 2);
  CHECK(err.str() == "cagent: session s1: dnsguard: connect /var/log/cagent/control/dnsguard.sock: No such file or "
                     "directory\n");
  exec_output = "";
  CHECK(deny() == 2);
  CHECK(err.str() == "cagent: session s1: dnsguard did not answer\n");
  // A reply of another version: said so, never read as a success.
  exec_status = 0;
  exec_output = "{\"version\":2,\"ok\":true}\n";
  CHECK(deny() == 2);
  CHECK(err.str() == "cagent: session s1: control reply: version 2 not understood (this build reads version 1)\n");
  host.workspace = "/w/none";
  CHECK_THROWS_AS(run_live(*parse_live_command({"deny", "x.example"}), host, runner, SessionIo{out, err, in}),
                  UsageError);
}

TEST_CASE("cagent ps and log: argv") {
  auto c = parse_live_command({"ps", "--json"});
  REQUIRE(c);
  CHECK(c->kind == LiveCommand::Kind::ps);
  CHECK(c->json);
  c = parse_live_command({"log", "ab12cd"});
  REQUIRE(c);
  CHECK(c->kind == LiveCommand::Kind::log);
  CHECK(c->session == "ab12cd");
  CHECK(!c->json);
}

TEST_CASE("cagent ps: what docker inspect says, rendered for people and for scripts") {
  RunningCage c;
  c.container = "cagent-ab12";
  c.session = "ab12";
  apply_inspect(c, "2026-11-28T09:00:00.123456789Z\t/w/my \"ws\"\t[\"--policy\",\"/etc/p\",\"--\",\"sh\",\"-c\",\"x\"]\n");
  CHECK(c.workspace == "/w/my \"ws\"");
  CHECK(c.command == std::vector<std::string>{"sh", "-c", "x"});
  CHECK(c.started == 1795856400);
  // REFUSED for people: the gate's and the firewall's together.
  const std::string human = render_ps({c}, {Blocked{3, 1, 4}}, 1795856400 + 300, false);
  CHECK(human.find("SESSION") == 0);
  CHECK(human.find("ab12          5m          3        5  /w/my \"ws\"  sh -c x\n") != std::string::npos);
  CHECK(render_ps({c}, {Blocked{3, 1, 4}}, 1795856400 + 300, true) ==
        "{\"session\":\"ab12\",\"container\":\"cagent-ab12\",\"workspace\":\"/w/my \\\"ws\\\"\",\"command\":[\"sh\",\"-c\",\"x\"],"
        "\"started\":1795856400,\"age_seconds\":300,\"denied\":3,\"gate_refused\":1,\"firewall_refused\":4,"
        "\"learn\":false}\n");
  CHECK(render_ps({}, {}, 0, false).empty());
  // A learn session is marked, for people and for scripts.
  c.learn = true;
  CHECK(render_ps({c}, {Blocked{3, 1, 4}}, 1795856400 + 300, false).find("5  LEARN  /w/my") != std::string::npos);
  CHECK(render_ps({c}, {Blocked{3, 1, 4}}, 1795856400 + 300, true).find(",\"learn\":true}") != std::string::npos);
}

TEST_CASE("cagent log: the decision record as lines and as JSON objects") {
  const std::string rec =
      "{\"version\":1,\"updated\":1800000010,\"denied_total\":3,\"denied_unlisted\":0,\"denied\":["
      "{\"name\":\"pypi.org\",\"type\":1,\"count\":2,\"first\":1800000000,\"last\":1800000005}],"
      "\"gate_refused_total\":1,\"gate_refused_unlisted\":0,\"gate_refused\":["
      "{\"name\":\"\",\"dst\":\"192.0.2.1:443\",\"reason\":\"no SNI\",\"count\":1,\"first\":1800000001,\"last\":1800000001}],"
      "\"firewall_refused_total\":9,\"firewall_refused_unlisted\":2,\"firewall_refused\":["
      "{\"dst\":\"[2001:db8::7]:22\",\"proto\":\"tcp\",\"count\":7,\"first\":1800000002,\"last\":1800000003}],"
      "\"changes_dropped\":0,\"changes\":[{\"op\":\"allow\",\"name\":\"pypi.org\",\"time\":1800000009}]}\n";
  const cagent::dnsguard::Decisions record = cagent::dnsguard::parse_decisions(rec);
  CHECK(render_log("ab12", record, false) ==
        "denied   pypi.org A \xC3\x97" "2  2027-01-15T08:00:00Z .. 2027-01-15T08:00:05Z\n"
        "refused  192.0.2.1:443 \xC3\x97" "1  (no SNI)  2027-01-15T08:00:01Z .. 2027-01-15T08:00:01Z\n"
        "refused  [2001:db8::7]:22/tcp \xC3\x97" "7  (firewall: no allowed name resolved to it)  "
        "2027-01-15T08:00:02Z .. 2027-01-15T08:00:03Z\n"
        "refused  (2 more packets: other protocols, or past the firewall's itemized bound)\n"
        "allowed  pypi.org  (at run time, 2027-01-15T08:00:09Z)\n");
  CHECK(render_log("ab12", record, true) ==
        "{\"session\":\"ab12\",\"event\":\"denied\",\"name\":\"pypi.org\",\"type\":1,\"count\":2,\"first\":1800000000,\"last\":1800000005}\n"
        "{\"session\":\"ab12\",\"event\":\"gate_refused\",\"name\":\"\",\"dst\":\"192.0.2.1:443\",\"reason\":\"no SNI\",\"count\":1,"
        "\"first\":1800000001,\"last\":1800000001}\n"
        "{\"session\":\"ab12\",\"event\":\"firewall_refused\",\"dst\":\"[2001:db8::7]:22\",\"proto\":\"tcp\",\"count\":7,"
        "\"first\":1800000002,\"last\":1800000003}\n"
        "{\"session\":\"ab12\",\"event\":\"allow\",\"name\":\"pypi.org\",\"time\":1800000009}\n");
}

TEST_CASE("cagent log: a learn session's learned names") {
  cagent::dnsguard::Decisions record;
  record.learned = {{"a.wild.test", 3, 1800000000, 1800000005}};
  CHECK(render_log("ab12", record, false) ==
        "learned  a.wild.test \xC3\x97" "3  2027-01-15T08:00:00Z .. 2027-01-15T08:00:05Z\n");
  CHECK(render_log("ab12", record, true) ==
        "{\"session\":\"ab12\",\"event\":\"learned\",\"name\":\"a.wild.test\",\"count\":3,"
        "\"first\":1800000000,\"last\":1800000005}\n");
}

TEST_CASE("cagent log: a session without a record, or with one it cannot read, is one line") {
  test::TempDir tmp;
  HostContext host;
  host.cagent_home = tmp.dir("home/.cagent");
  host.workspace = tmp.dir("ws");
  test::FakeRunner runner;
  runner.respond = [](const std::vector<std::string>&) { return RunResult{0, "", false}; };
  std::ostringstream out, err;
  std::istringstream in;
  CHECK_THROWS_WITH_AS(run_live(*parse_live_command({"log"}), host, runner, SessionIo{out, err, in}),
                       doctest::Contains("no session with a decision record yet"), UsageError);
  CHECK_THROWS_WITH_AS(run_live(*parse_live_command({"log", "ab12"}), host, runner, SessionIo{out, err, in}),
                       doctest::Contains("unknown session ab12"), UsageError);
  tmp.file("home/.cagent/logs/session-ab12/decisions.json", "{");
  CHECK_THROWS_WITH_AS(run_live(*parse_live_command({"log"}), host, runner, SessionIo{out, err, in}),
                       doctest::Contains("session ab12: unreadable decision record ("), UsageError);
  // cagent ps lists on, and says which record it could not read.
  runner.respond = [](const std::vector<std::string>& argv) {
    if (argv[1] == "ps") return RunResult{0, "cagent-ab12\tab12\n", false};
    return RunResult{0, "2026-11-28T09:00:00Z\t/w\t[]\n", false};
  };
  CHECK(run_live(*parse_live_command({"ps", "--json"}), host, runner, SessionIo{out, err, in}) == 0);
  CHECK(out.str().find("\"session\":\"ab12\"") != std::string::npos);
  CHECK(out.str().find("\"denied\":0,") != std::string::npos);
  CHECK(err.str().rfind("cagent: session ab12: unreadable decision record (", 0) == 0);
}

namespace {
std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}
}  // namespace

TEST_CASE("allow --save: argv") {
  auto c = parse_live_command({"allow", "a.example", "--save"});
  REQUIRE(c);
  CHECK(c->save == LiveCommand::Save::workspace);
  CHECK(parse_live_command({"allow", "--save=global", "a.example"})->save == LiveCommand::Save::global);
  CHECK(parse_live_command({"allow", "a.example"})->save == LiveCommand::Save::none);
  CHECK_THROWS_AS(parse_live_command({"allow", "a.example", "--save=elsewhere"}), UsageError);
  CHECK_THROWS_AS(parse_live_command({"deny", "a.example", "--save"}), UsageError);
}

namespace {

// A host with its ~/.cagent and a workspace directory (with its identity,
// so approvals can be recorded) under `tmp`.
HostContext workspace_host(test::TempDir& tmp) {
  HostContext host;
  host.cagent_home = tmp.dir("home/.cagent");
  host.workspace = tmp.dir("ws");
  host.workspace_identity = file_identity(host.workspace);
  return host;
}

}  // namespace

TEST_CASE("allow --save: writes the workspace file as the user's approved change, idempotent") {
  test::TempDir tmp;
  HostContext host = workspace_host(tmp);
  const auto file = save_domains(LiveCommand::Save::workspace, {"pypi.org"}, host);
  CHECK(file == host.workspace / ".cagent.yaml");
  CHECK(slurp(file) == "domains:\n  - \"pypi.org\"\n");
  const ApprovalStore store(host.cagent_home);
  auto approvals = store.load(host.workspace.string(), *host.workspace_identity);
  REQUIRE(approvals);
  CHECK(approvals->contents.back() == sha256_hex(slurp(file)));
  CHECK(save_domains(LiveCommand::Save::workspace, {"pypi.org"}, host).empty());  // already there
  CHECK(save_domains(LiveCommand::Save::workspace, {"b.example"}, host) == file);
  CHECK(slurp(file) == "domains:\n  - \"pypi.org\"\n  - \"b.example\"\n");
  CHECK(store.load(host.workspace.string(), *host.workspace_identity)->contents.back() == sha256_hex(slurp(file)));
}

TEST_CASE("allow --save: refuses a file not approved here, or one it cannot parse: nothing written") {
  test::TempDir tmp;
  HostContext host = workspace_host(tmp);
  const ApprovalStore store(host.cagent_home);
  // Never approved (planted by a session, or came with a clone): saving
  // would approve it unseen.
  tmp.file("ws/.cagent.yaml", "domains:\n  - evil.example\n");
  CHECK_THROWS_WITH_AS(save_domains(LiveCommand::Save::workspace, {"pypi.org"}, host),
                       doctest::Contains("is not approved in this directory"), UsageError);
  CHECK(slurp(host.workspace / ".cagent.yaml") == "domains:\n  - evil.example\n");
  CHECK_FALSE(store.load(host.workspace.string(), *host.workspace_identity));
  // Approved for another directory at this path (the same bytes): refused too.
  store.approve(host.workspace.string(), "fh1:another", sha256_hex("domains:\n  - evil.example\n"));
  CHECK_THROWS_AS(save_domains(LiveCommand::Save::workspace, {"pypi.org"}, host), UsageError);
  // The positive control: approved here, then saved.
  store.approve(host.workspace.string(), *host.workspace_identity, sha256_hex("domains:\n  - evil.example\n"));
  CHECK(save_domains(LiveCommand::Save::workspace, {"pypi.org"}, host) == host.workspace / ".cagent.yaml");
  // Approved, but unparseable.
  const std::string bad = "domains: [a.example\n";
  tmp.file("ws/.cagent.yaml", bad);
  store.approve(host.workspace.string(), *host.workspace_identity, sha256_hex(bad));
  CHECK_THROWS_WITH_AS(save_domains(LiveCommand::Save::workspace, {"pypi.org"}, host),
                       doctest::Contains("cannot parse"), UsageError);
  CHECK(slurp(host.workspace / ".cagent.yaml") == bad);
  // A symlink is never written through.
  std::filesystem::remove(host.workspace / ".cagent.yaml");
  std::filesystem::create_symlink(tmp / "elsewhere.yaml", host.workspace / ".cagent.yaml");
  CHECK_THROWS_AS(save_domains(LiveCommand::Save::workspace, {"pypi.org"}, host), UsageError);
  CHECK(!std::filesystem::exists(tmp / "elsewhere.yaml"));
  // No identity: nothing can be approved here.
  std::filesystem::remove(host.workspace / ".cagent.yaml");
  host.workspace_identity.reset();
  CHECK_THROWS_WITH_AS(save_domains(LiveCommand::Save::workspace, {"pypi.org"}, host),
                       doctest::Contains("--save=global"), UsageError);
  CHECK(!std::filesystem::exists(host.workspace / ".cagent.yaml"));
}

TEST_CASE("allow --save with no cage running for the workspace: saves for the next session") {
  test::TempDir tmp;
  HostContext host = workspace_host(tmp);
  test::FakeRunner runner;
  // Another workspace's cage is running; none of this one's.
  runner.respond = [](const std::vector<std::string>& argv) {
    if (argv[1] == "ps") return RunResult{0, "cagent-9\ts9\n", false};
    if (argv[1] == "inspect") return RunResult{0, "2026-11-28T09:00:00Z\t/elsewhere\t[]\n", false};
    return RunResult{1, "unexpected", false};
  };
  std::ostringstream out, err;
  std::istringstream in;
  const auto run = [&](std::vector<std::string> args) {
    err.str("");
    return run_live(*parse_live_command(args), host, runner, SessionIo{out, err, in});
  };
  CHECK(run({"allow", "pypi.org", "--save"}) == 0);
  CHECK(slurp(host.workspace / ".cagent.yaml") == "domains:\n  - \"pypi.org\"\n");
  CHECK(err.str() == "cagent: saved to " + (host.workspace / ".cagent.yaml").string() +
                         "\ncagent: no running cage for this workspace; the next session starts with it\n");
  CHECK(!runner.called_with_prefix({"docker", "exec"}));  // no cage was asked, not even the other one
  // The controls: without --save there is nothing to do, and a named
  // session must be running — both refuse and write nothing.
  CHECK_THROWS_WITH_AS(run({"allow", "b.example"}), doctest::Contains("no running cage for this workspace"),
                       UsageError);
  CHECK_THROWS_WITH_AS(run({"allow", "b.example", "--save", "--session", "s1"}),
                       doctest::Contains("unknown session s1"), UsageError);
  CHECK(slurp(host.workspace / ".cagent.yaml") == "domains:\n  - \"pypi.org\"\n");
  // With this workspace's cage running, --save saves and tells that cage.
  runner.respond = [ws = host.workspace.string()](const std::vector<std::string>& argv) {
    if (argv[1] == "ps") return RunResult{0, "cagent-1\ts1\n", false};
    if (argv[1] == "inspect") return RunResult{0, "2026-11-28T09:00:00Z\t" + ws + "\t[]\n", false};
    return RunResult{0,
                     cagent::dnsguard::write_control_reply({.ok = true, .op = cagent::dnsguard::ControlOp::allow,
                                                            .names = {"b.example"}, .added = {"b.example"}}),
                     false};
  };
  CHECK(run({"allow", "b.example", "--save"}) == 0);
  CHECK(runner.called_with_prefix({"docker", "exec", "-u", "0", "cagent-1"}));
  CHECK(err.str().find("session s1: allowed b.example (and saved for the next sessions)") != std::string::npos);
  CHECK(slurp(host.workspace / ".cagent.yaml") == "domains:\n  - \"pypi.org\"\n  - \"b.example\"\n");
}

TEST_CASE("allow --save=global: the global config keeps its comments") {
  test::TempDir tmp;
  HostContext host;
  host.cagent_home = tmp.dir("home/.cagent");
  host.workspace = tmp.dir("ws");
  tmp.file("home/.cagent/config.yaml", "# mine\ndomains:\n  - github.com  # code\nignore:\n  - .env\n");
  CHECK(save_domains(LiveCommand::Save::global, {"pypi.org"}, host) == host.cagent_home / "config.yaml");
  CHECK(slurp(host.cagent_home / "config.yaml") ==
        "# mine\ndomains:\n  - github.com  # code\n  - \"pypi.org\"\nignore:\n  - .env\n");
  CHECK(!std::filesystem::exists(host.workspace / ".cagent.yaml"));
}

TEST_CASE("cagent log -f: prints what changed until the session's cage is gone, then the last counts") {
  test::TempDir tmp;
  HostContext host;
  host.cagent_home = tmp.dir("home/.cagent");
  host.workspace = tmp.dir("ws");
  const auto record = [](int count) {
    return "{\"version\":1,\"updated\":1,\"denied_total\":" + std::to_string(count) +
           ",\"denied_unlisted\":0,\"denied\":[{\"name\":\"pypi.org\",\"type\":1,\"count\":" + std::to_string(count) +
           ",\"first\":1800000000,\"last\":1800000000}],\"gate_refused_total\":0,\"gate_refused_unlisted\":0,"
           "\"gate_refused\":[],\"changes_dropped\":0,\"changes\":[]}";
  };
  const auto file = tmp.file("home/.cagent/logs/session-ab12/decisions.json", record(1));
  test::FakeRunner runner;
  int polls = 0;
  runner.respond = [&](const std::vector<std::string>& argv) {
    if (argv[1] == "ps") {
      ++polls;
      // Between two looks at docker the record changes; the second look
      // finds the cage gone.
      write_file(file, record(polls == 1 ? 3 : 5), 0644);
      return RunResult{0, polls == 1 ? "cagent-ab12\tab12\n" : "", false};
    }
    return RunResult{0, "2026-11-28T09:00:00Z\t/w\t[]\n", false};
  };
  auto c = parse_live_command({"log", "ab12", "-f"});
  REQUIRE(c);
  CHECK(c->follow);
  c->follow_interval = std::chrono::milliseconds(1);
  std::ostringstream out, err;
  std::istringstream in;
  CHECK(run_live(*c, host, runner, SessionIo{out, err, in}) == 0);
  CHECK(out.str() ==
        "denied   pypi.org A \xC3\x97" "1  2027-01-15T08:00:00Z .. 2027-01-15T08:00:00Z\n"
        "denied   pypi.org A \xC3\x97" "3  2027-01-15T08:00:00Z .. 2027-01-15T08:00:00Z\n"
        "denied   pypi.org A \xC3\x97" "5  2027-01-15T08:00:00Z .. 2027-01-15T08:00:00Z\n");
  CHECK(polls == 2);
}

TEST_CASE("cagent kube: argv — its options, the session's, the command after --") {
  const auto c = parse_live_command({"kube", "--job", "-c", "/x.yaml", "--claim", "ci-42", "--image=reg/cagent:1",
                                     "--classic-sidecar", "-d", "pypi.org", "--", "make", "--job"});
  REQUIRE(c);
  CHECK(c->kind == LiveCommand::Kind::kube);
  CHECK(c->kube.job);
  CHECK(c->kube.classic_sidecar);
  CHECK(c->kube.claim == std::optional<std::string>("ci-42"));
  CHECK(c->kube.image == std::optional<std::string>("reg/cagent:1"));
  CHECK(c->check_cli.config_file == std::optional<std::filesystem::path>("/x.yaml"));
  // After -- everything is the command, even a word that looks like a kube option.
  CHECK(c->check_cli.command == std::vector<std::string>{"make", "--job"});
  const auto plain = parse_live_command({"kube"});
  REQUIRE(plain);
  CHECK_FALSE(plain->kube.job);
  CHECK(plain->check_cli.command.empty());
  // What a Pod cannot take: docker arguments; a claim name the API refuses.
  CHECK_THROWS_WITH_AS(parse_live_command({"kube", "--arg", "-v"}), doctest::Contains("--arg"), UsageError);
  CHECK_THROWS_WITH_AS(parse_live_command({"kube", "--claim", "Bad_Name"}), doctest::Contains("--claim"), UsageError);
  CHECK_THROWS_AS(parse_live_command({"kube", "--dry-run"}), UsageError);
  CHECK_THROWS_AS(parse_live_command({"kube", "--name", "x"}), UsageError);  // cagent check's option
}
