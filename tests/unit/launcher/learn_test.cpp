#include <doctest/doctest.h>

#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "launcher/host/cli.hpp"
#include "launcher/host/learn.hpp"
#include "launcher/host/live.hpp"
#include "tests/unit/launcher/test_util.hpp"

using namespace cagent::launcher::host;
using cagent::launcher::host::test::TempDir;

namespace {

std::vector<std::string> patterns(const std::vector<ProposalEntry>& proposal) {
  std::vector<std::string> out;
  for (const ProposalEntry& e : proposal) out.push_back(e.pattern);
  return out;
}

// A table instead of the list: the rule on its own, whatever the list says.
struct FakeDomains final : RegistrableDomains {
  std::map<std::string, std::string> table;
  std::optional<std::string> registrable_domain(std::string_view name) const override {
    auto it = table.find(std::string(name));
    if (it == table.end()) return std::nullopt;
    return it->second;
  }
};

}  // namespace

TEST_CASE("libpsl: registrable domains, the private section included") {
  const PublicSuffixList psl;
  CHECK(psl.registrable_domain("a.b.example.co.uk") == "example.co.uk");
  CHECK(psl.registrable_domain("api.github.com") == "github.com");
  CHECK(psl.registrable_domain("user.github.io") == "user.github.io");  // github.io is a public suffix
  CHECK(psl.registrable_domain("deep.b.wild.test") == "wild.test");     // unlisted TLD: the implicit "*" rule
  CHECK_FALSE(psl.registrable_domain("com"));
  CHECK_FALSE(psl.registrable_domain("github.io"));
  CHECK_FALSE(psl.registrable_domain("co.uk"));
}

TEST_CASE("proposal: siblings below one registrable domain fold, public suffixes never") {
  const PublicSuffixList psl;
  const std::vector<LearnedCount> learned{
      {"a.wild.test", 3},        {"deep.b.wild.test", 1},  // two below wild.test: *.wild.test
      {"wild.test", 2},                                     // the apex: the wildcard misses it, stays exact
      {"one.github.io", 1},      {"two.github.io", 4},     // unrelated: github.io is a public suffix
      {"api.example.co.uk", 1},                             // alone below example.co.uk: exact
      {"objects.githubusercontent.com", 9},                 // already allowed by a wildcard
      {"allowed.test", 5},                                  // already allowed exactly
      {"<bad label bytes>", 7},                             // no allowlist can name it
      {"A.Wild.test.", 1},                                  // the same name again, another spelling
  };
  const auto proposal = propose_allowlist(learned, {"allowed.test", "*.githubusercontent.com"}, psl);
  CHECK(patterns(proposal) ==
        std::vector<std::string>{"*.wild.test", "api.example.co.uk", "one.github.io", "two.github.io", "wild.test"});
  CHECK(proposal[0] == ProposalEntry{"*.wild.test", {"a.wild.test", "deep.b.wild.test"}, 5});
  CHECK(proposal[3] == ProposalEntry{"two.github.io", {"two.github.io"}, 4});
  for (const ProposalEntry& e : proposal) {
    CAPTURE(e.pattern);
    CHECK(e.pattern != "*.github.io");
    CHECK(e.pattern != "*.test");
    CHECK(e.pattern != "*.co.uk");
  }
  // Two siblings below a public suffix's registrable domains never make
  // the suffix a wildcard, even through the fake (where the suffix is its
  // own "registrable domain" of nothing).
  FakeDomains fake;
  fake.table = {{"x.pages.dev", "x.pages.dev"}, {"y.pages.dev", "y.pages.dev"}};
  CHECK(patterns(propose_allowlist({{"x.pages.dev", 1}, {"y.pages.dev", 1}, {"pages.dev", 1}}, {}, fake)) ==
        std::vector<std::string>{"pages.dev", "x.pages.dev", "y.pages.dev"});
  CHECK(propose_allowlist({}, {"a.test"}, psl).empty());
}

TEST_CASE("proposal: printed for review with counts and what a wildcard stands for, then how to save it") {
  const std::vector<ProposalEntry> proposal{{"*.wild.test", {"a.wild.test", "deep.b.wild.test"}, 5},
                                            {"one.github.io", {"one.github.io"}, 1}};
  const auto lines = proposal_lines(proposal, 0);
  REQUIRE(lines.size() == 4);
  CHECK(lines[0] == "learn mode proposes 2 entries for the allowlist:");
  CHECK(lines[1] == "  *.wild.test  \xC3\x97" "5  (a.wild.test, deep.b.wild.test)");
  CHECK(lines[2] == "  one.github.io  \xC3\x97" "1");
  CHECK(lines[3].find("cagent allow --save --from-learned") != std::string::npos);
  CHECK(proposal_lines({}, 0) ==
        std::vector<std::string>{"learn mode: every name looked up was already allowed; nothing to propose"});
  CHECK(proposal_lines(proposal, 3)[3].find("3 more lookups were past the record's bound") != std::string::npos);
}

TEST_CASE("proposal: kept in cagent's home per workspace, read back validated") {
  TempDir dir;
  const auto file = proposal_path(dir.path() / ".cagent", "/w/project");
  CHECK(file.parent_path() == dir.path() / ".cagent" / "learned");
  CHECK(file != proposal_path(dir.path() / ".cagent", "/w/other"));
  CHECK_THROWS_WITH_AS(load_proposal(file), doctest::Contains("run cagent --learn first"), UsageError);
  store_proposal(file, "/w/project", "ab12",
                 {{"*.wild.test", {"a.wild.test", "b.wild.test"}, 2}, {"one.github.io", {"one.github.io"}, 1}});
  CHECK(load_proposal(file) == std::vector<std::string>{"*.wild.test", "one.github.io"});
  store_proposal(file, "/w/project", "cd34", {});
  CHECK_THROWS_WITH_AS(load_proposal(file), doctest::Contains("proposed nothing"), UsageError);
  {
    std::ofstream out(file);
    out << "# edited\n*.*.bad\n";
  }
  CHECK_THROWS_WITH_AS(load_proposal(file), doctest::Contains(":2: "), UsageError);
}

TEST_CASE("cagent allow --from-learned: parsed with or without names and --save, and deny has no such option") {
  auto c = parse_live_command({"allow", "--save", "--from-learned"});
  REQUIRE(c);
  CHECK(c->from_learned);
  CHECK(c->names.empty());
  CHECK(c->save == LiveCommand::Save::workspace);
  c = parse_live_command({"allow", "--from-learned", "extra.test"});
  REQUIRE(c);
  CHECK(c->names == std::vector<std::string>{"extra.test"});
  CHECK_THROWS_AS(parse_live_command({"deny", "--from-learned"}), UsageError);
  CHECK_THROWS_AS(parse_live_command({"allow"}), UsageError);
}

TEST_CASE("cagent --learn: a flag of the command line's config layer") {
  const CliOptions o = parse_cli({"--learn", "--", "true"});
  REQUIRE(o.flags.learn);
  CHECK(o.flags.learn->value == "true");
  CHECK_FALSE(parse_cli({"--", "true"}).flags.learn);
}
