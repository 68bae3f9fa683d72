// printable(): every way a workspace-chosen name could act on the user's
// terminal, and the places that print such names (shell_quote for --dry-run,
// ConfigError for config messages).
#include <doctest/doctest.h>

#include <cstddef>
#include <string>

#include "launcher/host/config.hpp"
#include "launcher/host/paths.hpp"
#include "launcher/host/text.hpp"

using namespace cagent::launcher::host;
using namespace std::string_literals;

namespace {

// An independent check of the output: no C0 control, no DEL, no C1 control
// in its UTF-8 form, no byte that can never occur in UTF-8, and no stray
// continuation byte after ASCII (what the inputs below could leave behind).
bool has_raw_control(const std::string& s) {
  for (std::size_t i = 0; i < s.size(); ++i) {
    const auto b = static_cast<unsigned char>(s[i]);
    const auto next = i + 1 < s.size() ? static_cast<unsigned char>(s[i + 1]) : 0;
    const auto prev = i > 0 ? static_cast<unsigned char>(s[i - 1]) : 0;
    if (b < 0x20 || b == 0x7f) return true;
    if (b == 0xc2 && next >= 0x80 && next <= 0x9f) return true;
    if (b == 0xc0 || b == 0xc1 || b >= 0xf5) return true;
    if (b >= 0x80 && b <= 0xbf && prev < 0x80) return true;
  }
  return false;
}

}  // namespace

TEST_CASE("printable: escape table") {
  struct Row {
    std::string in;
    std::string out;
  };
  const Row rows[] = {
      {"", ""},
      {"plain/path.txt", "plain/path.txt"},
      {"with space and 'quotes'", "with space and 'quotes'"},
      {"a\nb", "a\\nb"},
      {"a\rb", "a\\rb"},
      {"a\tb", "a\\tb"},
      {"back\\slash", "back\\\\slash"},  // so "\x1b" typed literally stays distinguishable
      {"nul\0x"s, "nul\\x00x"},
      {"\x01\x07\x08\x0b\x0c\x1f", "\\x01\\x07\\x08\\x0b\\x0c\\x1f"},
      {"\x1b[2J\x1b]0;pwned\x07", "\\x1b[2J\\x1b]0;pwned\\x07"},  // clear screen, set title
      {"del\x7f", "del\\x7f"},
      // C1 controls as code points (valid UTF-8 \xc2\x80-\xc2\x9f): CSI is U+009B
      {"\xc2\x80", "\\u0080"},
      {"x\xc2\x9b" "31mred", "x\\u009b31mred"},
      {"\xc2\x9f", "\\u009f"},
      {"\xc2\xa0nbsp", "\xc2\xa0nbsp"},  // U+00A0 is printable
      // valid UTF-8 text is kept
      {"caf\xc3\xa9", "caf\xc3\xa9"},
      {"\xe6\x97\xa5\xe6\x9c\xac", "\xe6\x97\xa5\xe6\x9c\xac"},
      {"\xf0\x9f\x94\x91key", "\xf0\x9f\x94\x91key"},
      // bidi overrides and line separators ("Trojan source" names)
      {"a\xe2\x80\xae" "b", "a\\u202eb"},
      {"\xe2\x81\xa6", "\\u2066"},
      {"\xe2\x80\xa8", "\\u2028"},
      // invalid UTF-8: each bad byte escaped on its own
      {"\x80", "\\x80"},
      {"\x9b" "31m", "\\x9b31m"},  // a raw 8-bit CSI byte
      {"\xc3", "\\xc3"},           // truncated sequence
      {"\xc3x", "\\xc3x"},
      {"\xc0\xaf", "\\xc0\\xaf"},          // overlong '/'
      {"\xe0\x80\xaf", "\\xe0\\x80\\xaf"}, // overlong, three bytes
      {"\xed\xa0\x80", "\\xed\\xa0\\x80"}, // UTF-16 surrogate
      {"\xf4\x90\x80\x80", "\\xf4\\x90\\x80\\x80"},  // above U+10FFFF
      {"\xff\xfe", "\\xff\\xfe"},
  };
  for (const Row& r : rows) {
    CAPTURE(r.in);
    CHECK(printable(r.in) == r.out);
    CHECK_FALSE(has_raw_control(printable(r.in)));
  }
}

TEST_CASE("printable: no byte value survives raw unless it is printable") {
  for (int b = 0; b < 256; ++b) {
    const std::string in(1, static_cast<char>(b));
    const std::string out = printable(in);
    CAPTURE(b);
    if (b >= 0x20 && b < 0x7f && b != '\\') {
      CHECK(out == in);
    } else {
      CHECK(out.size() > 1);
      CHECK_FALSE(has_raw_control(out));
    }
  }
}

TEST_CASE("needs_escaping") {
  CHECK_FALSE(needs_escaping("a b/c\\d"));
  CHECK_FALSE(needs_escaping("caf\xc3\xa9"));
  CHECK(needs_escaping("a\nb"));
  CHECK(needs_escaping("\xc2\x9b"));
  CHECK(needs_escaping("\xff"));
}

TEST_CASE("shell_quote: control characters never appear raw: $'...' round-trips in bash") {
  struct Row {
    std::string in;
    std::string out;
  };
  const Row rows[] = {
      {"plain", "plain"},
      {"", "''"},
      {"a b", "'a b'"},
      {"it's", "'it'\\''s'"},
      {"caf\xc3\xa9", "'caf\xc3\xa9'"},
      {"a\nb", "$'a\\x0ab'"},
      {"x\x1b[31m", "$'x\\x1b[31m'"},
      {"c1\xc2\x9b", "$'c1\\xc2\\x9b'"},
      {"bad\xff", "$'bad\\xff'"},
      {"it's\t\\", "$'it\\'s\\x09\\\\'"},
  };
  for (const Row& r : rows) {
    CAPTURE(r.in);
    CHECK(shell_quote(r.in) == r.out);
    CHECK_FALSE(has_raw_control(shell_quote(r.in)));
  }
}

TEST_CASE("config errors quote workspace values with escapes") {
  // An unknown key whose name carries an escape sequence and a fake second line.
  const std::string yaml = "\"evil\\e[2J\\ncagent: all good\": [x]\n";
  try {
    (void)load_config(yaml, "/ws/.cagent.yaml", LayerKind::workspace);
    FAIL("no error");
  } catch (const ConfigError& e) {
    const std::string msg = e.what();
    CHECK_FALSE(has_raw_control(msg));
    CHECK(msg.find("evil\\x1b[2J\\ncagent: all good") != std::string::npos);
  }
  // A bad pattern value, and a file name with a newline in it.
  MergedConfig merged;
  merged.domains.push_back(Entry{"example.com", SourcePos{"x", 1, 1}});
  merged.ignore.push_back(Entry{"!neg\x1b]0;t\x07", SourcePos{"/w/a\nb/.cagent.yaml", 3, 5}});
  try {
    (void)validate(merged, "/home/u");
    FAIL("no error");
  } catch (const ConfigError& e) {
    const std::string msg = e.what();
    CAPTURE(msg);
    CHECK_FALSE(has_raw_control(msg));
    CHECK(msg.rfind("/w/a\\nb/.cagent.yaml:3:5: bad ignore pattern '!neg\\x1b]0;t\\x07'", 0) == 0);
  }
}
