#include <doctest/doctest.h>

#include <algorithm>

#include "launcher/host/cli.hpp"

using namespace cagent::launcher::host;

namespace {
std::vector<std::string> vals(const std::vector<Entry>& e) {
  std::vector<std::string> out;
  for (const auto& x : e) out.push_back(x.value);
  return out;
}
}  // namespace

TEST_CASE("cli: both --flag value and --flag=value, short forms, command after --") {
  const CliOptions o = parse_cli({"-d", "a.example", "--domain=b.example", "--domain", "c.example",
                                  "-dd.example", "-i", ".secret", "--ignore=x/", "-r", "docs",
                                  "--readonly=y", "--arg", "-e", "--arg=A=1", "--ca-cert", "system",
                                  "--ca-cert=/c.pem", "--no-update", "--", "git", "--version"});
  CHECK(vals(o.flags.domains) == std::vector<std::string>{"a.example", "b.example", "c.example", "d.example"});
  CHECK(vals(o.flags.ignore) == std::vector<std::string>{".secret", "x/"});
  CHECK(vals(o.flags.readonly) == std::vector<std::string>{"docs", "y"});
  CHECK(vals(o.flags.extra_args) == std::vector<std::string>{"-e", "A=1"});
  CHECK(vals(o.flags.ca_certificates) == std::vector<std::string>{"system", "/c.pem"});
  CHECK(o.no_update);
  CHECK(o.command == std::vector<std::string>{"git", "--version"});
  CHECK(o.flags.kind == LayerKind::flags);
  CHECK(o.flags.domains[0].pos.str() == "command line:2");
}

TEST_CASE("cli: reset forms") {
  CHECK(parse_cli({"--reset"}).reset == std::string("ci"));
  CHECK(parse_cli({"--reset=v"}).reset == std::string("v"));
  CHECK(parse_cli({"--reset", "civd"}).reset == std::string("civd"));
  CHECK(parse_cli({"--reset-all"}).reset == std::string("civd"));
  CHECK(parse_cli({"--reset", "-y"}).reset == std::string("ci"));  // next arg is not letters
  CHECK(parse_cli({"--reset", "-y"}).yes);
  CHECK_THROWS_AS(parse_cli({"--reset=xyz"}), UsageError);
  CHECK_THROWS_AS(parse_cli({"--reset="}), UsageError);
}

TEST_CASE("cli: flags without values and config selection") {
  const CliOptions o = parse_cli({"--print-config", "--dry-run", "-c", "/x.yaml", "-y", "--version", "-h"});
  CHECK(o.print_config);
  CHECK(o.dry_run);
  CHECK(o.config_file == std::filesystem::path("/x.yaml"));
  CHECK(o.yes);
  CHECK(o.version);
  CHECK(o.help);
  CHECK(parse_cli({"--config=/y.yaml"}).config_file == std::filesystem::path("/y.yaml"));
  CHECK(parse_cli({"--no-global-config"}).no_global_config);
  CHECK(parse_cli({"--accept-workspace-config", "--", "true"}).accept_workspace_config);
  CHECK_FALSE(parse_cli({"--", "--accept-workspace-config"}).accept_workspace_config);
  CHECK_FALSE(parse_cli({}).accept_workspace_config);
  CHECK(parse_cli({}).command.empty());
  CHECK(parse_cli({"--"}).command.empty());
}

TEST_CASE("cli: usage errors") {
  const std::vector<std::vector<std::string>> bad = {
      {"--frobnicate"}, {"-z"}, {"-d"}, {"--domain"}, {"--dry-run=yes"}, {"stray"},
      {"-c", "a", "--no-global-config"}, {"--ca-cert"}, {"--accept-workspace-config=yes"}};
  for (const auto& args : bad) {
    CAPTURE(args.front());
    CHECK_THROWS_AS(parse_cli(args), UsageError);
  }
}
