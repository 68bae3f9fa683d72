// The option table, the parsers, --help, the man page and both completions
// agree: every option and subcommand the table has is parsed and appears in
// each rendering. (tests/unit/cli_docs/ runs the rendered scripts in the
// shells themselves.)
#include <doctest/doctest.h>

#include <set>
#include <string>
#include <vector>

#include "launcher/host/cli.hpp"
#include "launcher/host/cli_docs.hpp"
#include "launcher/host/image.hpp"
#include "launcher/host/live.hpp"

using namespace cagent::launcher::host;

namespace {

bool contains(const std::string& text, const std::string& what) {
  return text.find(what) != std::string::npos;
}

// `word` stands alone in a shell word list: between spaces or quotes.
bool has_word(const std::string& text, const std::string& word) {
  const auto bound = [](char c) { return c == ' ' || c == '\''; };
  for (std::size_t at = text.find(word); at != std::string::npos; at = text.find(word, at + 1)) {
    const std::size_t end = at + word.size();
    if (at > 0 && bound(text[at - 1]) && end < text.size() && bound(text[end])) return true;
  }
  return false;
}

// The words of a command line that use `o` with a value where it takes one.
std::vector<std::string> use(const OptionSpec& o, bool short_form) {
  std::vector<std::string> words{short_form ? std::string("-") + o.short_name
                                            : "--" + std::string(o.name)};
  if (o.arg == ArgKind::required)
    words.emplace_back(o.metavar == "FILE" ? "/x.pem" : "value.example");
  return words;
}

// A valid command line of subcommand `s` with `o` in it.
std::vector<std::string> live_use(const SubcommandSpec& s, const OptionSpec& o, bool short_form) {
  std::vector<std::string> args{std::string(s.name)};
  if (s.operands == "NAME…") args.emplace_back("pypi.org");
  for (std::string& w : use(o, short_form)) args.push_back(std::move(w));
  return args;
}

}  // namespace

TEST_CASE("cli table: every main option parses, long and short, and nothing else does") {
  for (const OptionSpec& o : option_table()) {
    if ((o.commands & kMain) == 0) {
      CAPTURE(o.name);
      CHECK_THROWS_AS(parse_cli(use(o, false)), UsageError);  // a subcommand's option only
      continue;
    }
    CAPTURE(o.name);
    CHECK((o.apply != nullptr));
    CHECK_NOTHROW(parse_cli(use(o, false)));
    if (o.short_name != 0) CHECK_NOTHROW(parse_cli(use(o, true)));
    if (o.arg == ArgKind::optional) CHECK((o.accepts_next != nullptr));
    CHECK_FALSE(o.help.empty());
  }
}

TEST_CASE("cli table: every subcommand option parses with parse_live_command") {
  for (const SubcommandSpec& s : subcommand_table()) {
    CAPTURE(s.name);
    for (const OptionSpec& o : option_table()) {
      if ((o.commands & s.id) == 0) continue;
      CAPTURE(o.name);
      CHECK((o.apply == nullptr));  // live.cpp parses these
      std::optional<LiveCommand> c;
      CHECK_NOTHROW(c = parse_live_command(live_use(s, o, false)));
      CHECK(c.has_value());
      if (o.short_name != 0) CHECK_NOTHROW(parse_live_command(live_use(s, o, true)));
      if (o.arg == ArgKind::optional) {
        // --save=global: the optional value attached.
        std::vector<std::string> args = live_use(s, o, false);
        args.back() += "=" + std::string(o.words.substr(o.words.rfind(' ') + 1));
        CHECK_NOTHROW(parse_live_command(args));
      }
    }
  }
}

TEST_CASE("cli table: names are unique per command line") {
  const unsigned commands[] = {kMain, kAllow, kDeny, kPs, kLog, kCheck, kKube, kWatch};
  for (const unsigned command : commands) {
    std::set<std::string> longs;
    std::set<char> shorts;
    for (const OptionSpec& o : option_table()) {
      if ((o.commands & command) == 0) continue;
      CAPTURE(o.name);
      CHECK(longs.insert(std::string(o.name)).second);
      if (o.short_name != 0) CHECK(shorts.insert(o.short_name).second);
    }
  }
}

TEST_CASE("cli docs: --help, the man page and both completions name every option and subcommand") {
  const std::string help = usage_text();
  const std::string man = render_man_page();
  const std::string bash = render_bash_completion();
  const std::string zsh = render_zsh_completion();
  for (const OptionSpec& o : option_table()) {
    CAPTURE(o.name);
    const std::string name(o.name);
    CHECK(contains(help, long_form(o)));
    CHECK(contains(help, std::string(o.help.substr(0, 20))));
    std::string man_name;
    for (const char c : name) man_name += c == '-' ? std::string("\\-") : std::string(1, c);
    CHECK(contains(man, "\\fB\\-\\-" + man_name + "\\fR"));
    CHECK(has_word(bash, "--" + name));
    CHECK(contains(zsh, "--" + name));
    if (o.short_name != 0) {
      CHECK(contains(help, std::string("-") + o.short_name + ", --" + name));
      CHECK(contains(man, std::string("\\fB\\-") + o.short_name + "\\fR"));
      CHECK(has_word(bash, std::string("-") + o.short_name));
      CHECK(contains(zsh, std::string("-") + o.short_name));
    }
    if (!o.example.empty()) CHECK(contains(help + man, std::string(o.example.substr(0, 6))));
    if (!o.words.empty()) {
      CHECK(contains(bash, "'" + std::string(o.words) + "'"));
      CHECK(contains(zsh, std::string(o.words)));
    }
  }
  for (const SubcommandSpec& s : subcommand_table()) {
    CAPTURE(s.name);
    const std::string name(s.name);
    CHECK(contains(help, "cagent " + name));
    CHECK(contains(man, "\\fBcagent " + name + "\\fR"));
    CHECK(contains(bash, name + ")"));
    CHECK(contains(zsh, "'" + name + ":"));
  }
  for (const EnvironmentSpec& e : environment_table()) {
    CAPTURE(e.name);
    CHECK(contains(help, std::string(e.name)));
    CHECK(contains(man, ".B " + std::string(e.name)));
  }
}

TEST_CASE("cli docs: the documented defaults are the code's") {
  const std::string help = usage_text();
  CHECK(contains(help, kDefaultBase));
  CHECK(contains(help, kDefaultNpmPackages));
  CHECK(contains(help, std::string("(default: ") + kDefaultReset + ")"));
}

TEST_CASE("cli docs: --help fits a terminal: the man page has no stray roff control lines") {
  const std::string help = usage_text();
  std::size_t start = 0;
  while (start < help.size()) {
    const std::size_t end = help.find('\n', start);
    const std::string line = help.substr(start, end - start);
    std::size_t columns = 0;
    for (const char c : line) columns += (static_cast<unsigned char>(c) & 0xC0U) != 0x80U ? 1 : 0;
    CAPTURE(line);
    CHECK(columns <= 79);
    start = end + 1;
  }
  const std::string man = render_man_page();
  CHECK(man.starts_with(".\\\""));
  CHECK(contains(man, ".TH CAGENT 1"));
  start = 0;
  while (start < man.size()) {
    const std::size_t end = man.find('\n', start);
    const std::string line = man.substr(start, end - start);
    CAPTURE(line);
    // A text line starting with ' or . would be read as a request.
    if (!line.empty() && (line[0] == '.' || line[0] == '\'')) {
      const std::string request = line.substr(1, line.find(' ') - 1);
      static const std::set<std::string> known = {"\\\"", "TH", "SH", "B",  "I",  "BR", "TP", "PP",
                                                  "RS",   "RE", "br", "nf", "fi", "ad", "nh"};
      CHECK(known.count(request) == 1);
    }
    start = end + 1;
  }
}
