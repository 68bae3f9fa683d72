// `cagent check` (launcher/host/check.hpp): what it checks with, and how
// the host reads its own row from the decision record.
#include <doctest/doctest.h>

#include <algorithm>

#include "launcher/host/check.hpp"
#include "launcher/host/live.hpp"

using namespace cagent::launcher::host;

namespace {

Config config_with(std::vector<std::string> domains, bool gate = true) {
  Config c;
  c.domains = std::move(domains);
  c.connection_gate = gate;
  return c;
}

MountPlan plan_with(std::vector<std::pair<std::string, std::string>> placeholders) {
  MountPlan p;
  p.mounts.push_back({"/home/u/ws", "/workspace", false});
  p.mounts.push_back({"/home/u/ws/.git", "/workspace/.git", true});  // readonly: not a placeholder
  for (auto& [kind, target] : placeholders)
    p.mounts.push_back({std::filesystem::path("/s/placeholders") / kind, target, true});
  return p;
}

}  // namespace

TEST_CASE("cagent check: argv") {
  auto c = parse_live_command({"check"});
  REQUIRE(c);
  CHECK(c->kind == LiveCommand::Kind::check);
  CHECK_FALSE(c->check_name);
  CHECK(parse_live_command({"check", "--name", "pypi.org"})->check_name == "pypi.org");
  CHECK(parse_live_command({"check", "--name=pypi.org"})->check_name == "pypi.org");
  // The ordinary options of the session it starts.
  c = parse_live_command({"check", "--no-update", "--arg=--network=n1", "-d", "extra.example", "--name", "a.b"});
  REQUIRE(c);
  CHECK(c->check_name == "a.b");
  CHECK(c->check_cli.no_update);
  REQUIRE(c->check_cli.flags.extra_args.size() == 1);
  CHECK(c->check_cli.flags.extra_args[0].value == "--network=n1");
  for (const std::vector<std::string>& bad :
       {std::vector<std::string>{"check", "--name"}, {"check", "--name="}, {"check", "pypi.org"}, {"check", "--json"},
        {"check", "--save"}, {"check", "--", "true"}, {"check", "--dry-run"}, {"check", "--help"}}) {
    CAPTURE(bad.back());
    CHECK_THROWS_AS(parse_live_command(bad), UsageError);
  }
}

TEST_CASE("cagent check: the names it checks with") {
  const MountPlan none = plan_with({});
  // The first exact name, skipping patterns.
  CheckPlan p = plan_check(config_with({"*.pythonhosted.org", "pypi.org", "github.com"}), none, std::nullopt, "ab12");
  CHECK(p.allowed == "pypi.org");
  CHECK(p.denied == "cagent-check-ab12.invalid");
  CHECK(p.other == "cagent-check-other-ab12.invalid");
  CHECK(p.gate);
  // --name: normalized, and it must be allowed (here by a pattern).
  CHECK(plan_check(config_with({"*.pythonhosted.org"}), none, std::string("Files.PythonHosted.org."), "x").allowed ==
        "files.pythonhosted.org");
  CHECK_THROWS_WITH_AS(plan_check(config_with({"pypi.org"}), none, std::string("evil.example"), "x"),
                       doctest::Contains("not allowed"), UsageError);
  CHECK_THROWS_AS(plan_check(config_with({"*.pythonhosted.org"}), none, std::string("*.pythonhosted.org"), "x"),
                  UsageError);
  CHECK_THROWS_AS(plan_check(config_with({"pypi.org"}), none, std::string("bad..name"), "x"), UsageError);
  // Nothing exact to check with: says how to give one.
  CHECK_THROWS_WITH_AS(plan_check(config_with({"*.example.org"}), none, std::nullopt, "x"),
                       doctest::Contains("--name"), UsageError);
  // An allowlist that allows its denied name cannot be checked that way.
  CHECK_THROWS_AS(plan_check(config_with({"pypi.org", "*.invalid"}), none, std::nullopt, "x"), UsageError);
  // The gate's switch travels.
  CHECK_FALSE(plan_check(config_with({"pypi.org"}, false), none, std::nullopt, "x").gate);
}

TEST_CASE("cagent check: the placeholders it looks at, only plain names, at most a few") {
  const CheckPlan p = plan_check(config_with({"pypi.org"}),
                                 plan_with({{kEmptyFileName, "/workspace/.env"},
                                            {kEmptyDirName, "/workspace/secrets"},
                                            {kEmptyFileName, "/workspace/a/\x1b]0;title\x07.key"},
                                            {kEmptyFileName, "/elsewhere/x"}}),
                                 std::nullopt, "x");
  CHECK(p.placeholders == std::vector<std::string>{".env", "secrets"});
  std::vector<std::pair<std::string, std::string>> many;
  for (int i = 0; i < 20; ++i) many.emplace_back(kEmptyFileName, "/workspace/f" + std::to_string(i) + ".key");
  CHECK(plan_check(config_with({"pypi.org"}), plan_with(many), std::nullopt, "x").placeholders.size() ==
        kMaxPlaceholders);
}

TEST_CASE("cagent check: the cage's command carries the plan as arguments, never in the script") {
  CheckPlan p;
  p.allowed = "pypi.org";
  p.denied = "cagent-check-x.invalid";
  p.other = "cagent-check-other-x.invalid";
  p.gate = false;
  p.placeholders = {".env", "it's $(here)"};
  const auto argv = check_command(p);
  REQUIRE(argv.size() == 13);
  CHECK(argv[0] == "bash");
  CHECK(argv[1] == "-c");
  CHECK(argv[2].find("pypi.org") == std::string::npos);
  CHECK(argv[2].find("$(here)") == std::string::npos);
  CHECK(std::vector<std::string>(argv.begin() + 3, argv.end()) ==
        std::vector<std::string>{"cagent-check", "pypi.org", "cagent-check-x.invalid", "cagent-check-other-x.invalid",
                                 "0", kUnresolvedAddress, kOtherResolver, std::to_string(kInboundPort), ".env",
                                 "it's $(here)"});
}

TEST_CASE("cagent check: the host's row: the denied name in the record, or a failure that says why") {
  CheckPlan p;
  p.denied = "cagent-check-x.invalid";
  cagent::dnsguard::Decisions record;
  record.denied.push_back({.name = "other.example", .type = 1, .count = 3});
  CheckRow row = record_row(p, record);
  CHECK(row.status == "fail");
  CHECK(row.detail.find("not in the decision record") != std::string::npos);
  record.denied.push_back({.name = "cagent-check-x.invalid", .type = 1, .count = 2});
  row = record_row(p, record);
  CHECK(row.status == "pass");
  CHECK(row.detail.find("2 lookups") != std::string::npos);
  CHECK(record_row(p, std::nullopt).status == "fail");
  CHECK(render_row({"pass", "short", "detail"}) == "  pass  short" + std::string(41, ' ') + " detail\n");
}

TEST_CASE("cagent check: the host's inbound row: refused tries pass, an accepted one fails, no address skips") {
  InboundResult r;
  CHECK(inbound_row(r).status == "skip");
  r.address = "172.18.0.5";
  CHECK(inbound_row(r).status == "skip");  // no try made: not a pass
  r.attempts = 10;
  r.last_error = "Connection refused";
  CHECK(inbound_row(r).status == "pass");
  CHECK(inbound_row(r).detail == "10 tries to 172.18.0.5:47921: Connection refused");
  r.connected = 1;
  CHECK(inbound_row(r).status == "fail");
}
