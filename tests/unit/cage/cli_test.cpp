#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "launcher/cage/cli.hpp"

using namespace cagent::cage;

namespace {
CommandLine parse(std::vector<std::string> args) { return parse_cage_init_args(args); }
}  // namespace

TEST_CASE("cage-init argv: no arguments keep every default and run the login shell") {
  const CommandLine c = parse({});
  REQUIRE(c.action == CommandLine::Action::run);
  const Options defaults;
  CHECK(c.options.policy == defaults.policy);
  CHECK(c.options.agent_user == "agent");
  CHECK(c.options.dnsguard_user == "dnsguard");
  CHECK(c.options.dnsguard == defaults.dnsguard);
  CHECK_FALSE(c.options.ca_bundle);
  CHECK_FALSE(c.options.owner_socket);
  CHECK(c.options.workspace == defaults.workspace);
  CHECK(c.options.runtime_dir == defaults.runtime_dir);
  CHECK(c.options.dnsguard_ready_timeout == defaults.dnsguard_ready_timeout);
  CHECK(c.options.command.empty());
}

TEST_CASE("cage-init argv: every option sets its field: the command follows --") {
  const CommandLine c = parse({"--policy", "/p.toml", "--user", "u", "--dnsguard-user", "d", "--dnsguard",
                               "/bin/dg", "--ca-bundle", "/ca.pem", "--owner", "/o.sock", "--workspace", "/w", "--runtime-dir",
                               "/r", "--ready-timeout", "250", "--", "sh", "-c", "--policy x"});
  REQUIRE(c.action == CommandLine::Action::run);
  CHECK(c.options.policy == "/p.toml");
  CHECK(c.options.agent_user == "u");
  CHECK(c.options.dnsguard_user == "d");
  CHECK(c.options.dnsguard == "/bin/dg");
  REQUIRE(c.options.ca_bundle);
  CHECK(*c.options.ca_bundle == "/ca.pem");
  REQUIRE(c.options.owner_socket);
  CHECK(*c.options.owner_socket == "/o.sock");
  CHECK(c.options.workspace == "/w");
  CHECK(c.options.runtime_dir == "/r");
  CHECK(c.options.dnsguard_ready_timeout == std::chrono::milliseconds(250));
  CHECK(c.options.command == std::vector<std::string>{"sh", "-c", "--policy x"});
}

TEST_CASE("cage-init argv: only the first -- ends the options") {
  const CommandLine c = parse({"--", "--", "--help"});
  REQUIRE(c.action == CommandLine::Action::run);
  CHECK(c.options.command == std::vector<std::string>{"--", "--help"});
}

TEST_CASE("cage-init argv: -h and --help ask for the usage") {
  CHECK(parse({"-h"}).action == CommandLine::Action::help);
  CHECK(parse({"--user", "u", "--help", "--bogus"}).action == CommandLine::Action::help);
  CHECK(std::string(cage_init_usage()).starts_with("usage: cage-init "));
}

TEST_CASE("cage-init argv: usage errors say what was wrong") {
  struct Row {
    std::vector<std::string> args;
    std::string error;
  };
  const Row rows[] = {
      {{"--policy"}, "missing value for --policy"},
      {{"stray"}, "unexpected argument stray"},
      {{"--bogus", "x"}, "unknown option --bogus"},
      {{"--ready-timeout", "0"}, "bad --ready-timeout 0"},
      {{"--ready-timeout", "-5"}, "bad --ready-timeout -5"},
      {{"--ready-timeout", "10ms"}, "bad --ready-timeout 10ms"},
      {{"--ready-timeout", ""}, "bad --ready-timeout "},
  };
  for (const Row& row : rows) {
    CAPTURE(row.error);
    const CommandLine c = parse(row.args);
    CHECK(c.action == CommandLine::Action::usage_error);
    CHECK(c.error == row.error);
  }
}

TEST_CASE("cage-init argv: nested Docker is off unless --nested-docker names an engine") {
  CHECK(parse({}).options.nested_dockerd.empty());
  const CommandLine c = parse({"--nested-docker", "/usr/bin/dockerd", "--nested-socket-dir", "/s",
                               "--nested-data-root", "/d", "--", "true"});
  REQUIRE(c.action == CommandLine::Action::run);
  CHECK(c.options.nested_dockerd == "/usr/bin/dockerd");
  CHECK(c.options.nested_socket_dir == "/s");
  CHECK(c.options.nested_data_root == "/d");
  CHECK(parse({"--nested-docker"}).action == CommandLine::Action::usage_error);
}

TEST_CASE("cage-init argv: --mode names one role of the Pod form, anything else is a usage error") {
  CHECK(parse({}).options.mode == Mode::cage);
  CHECK(parse({"--mode", "guard"}).options.mode == Mode::guard);
  CHECK(parse({"--mode", "dnsguard"}).options.mode == Mode::dnsguard);
  CHECK(parse({"--mode", "probe"}).options.mode == Mode::probe);
  const CommandLine agent = parse({"--mode", "agent", "--", "make", "test"});
  CHECK(agent.options.mode == Mode::agent);
  CHECK(agent.options.command == std::vector<std::string>{"make", "test"});
  const CommandLine bad = parse({"--mode", "root"});
  CHECK(bad.action == CommandLine::Action::usage_error);
  CHECK(bad.error.find("--mode root") != std::string::npos);
  // Root is needed to set the firewall up, never to be the agent.
  CHECK(mode_needs_root(Mode::guard));
  CHECK(mode_needs_root(Mode::dnsguard));
  CHECK_FALSE(mode_needs_root(Mode::agent));
  CHECK_FALSE(mode_needs_root(Mode::probe));
}
