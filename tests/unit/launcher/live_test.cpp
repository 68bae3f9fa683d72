#include <doctest/doctest.h>

#include <sstream>

#include "launcher/host/cli.hpp"
#include "launcher/host/live.hpp"
#include "test_util.hpp"

using namespace cagent::launcher::host;

TEST_CASE("live commands: argv before any -- ; patterns validated before anything changes") {
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
        {"allow", "a.example", "--session="}, {"allow", "a.example", "--frobnicate"}, {"deny", "--session", "x"}}) {
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
    if (argv[1] == "inspect") return RunResult{0, argv.back() == "cagent-1" ? "/w/a\n" : "/w/b\n", false};
    if (argv[1] == "exec") return RunResult{0, "ok allowed x.example\n", false};
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
  runner.respond = [](const std::vector<std::string>& argv) {
    if (argv[1] == "ps") return RunResult{0, "cagent-1\ts1\n", false};
    if (argv[1] == "inspect") return RunResult{0, "/w/a\n", false};
    return RunResult{2, "error x.example was not allowed at run time\n", false};
  };
  err.str("");
  CHECK(run_live(*parse_live_command({"deny", "x.example"}), host, runner, SessionIo{out, err, in}) == 2);
  CHECK(err.str() == "cagent: session s1: x.example was not allowed at run time\n");
  host.workspace = "/w/none";
  CHECK_THROWS_AS(run_live(*parse_live_command({"deny", "x.example"}), host, runner, SessionIo{out, err, in}),
                  UsageError);
}
