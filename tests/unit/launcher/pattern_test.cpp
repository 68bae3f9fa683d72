#include <doctest/doctest.h>

#include <algorithm>

#include "launcher/host/pattern.hpp"

using cagent::launcher::host::Pattern;
using cagent::launcher::host::PatternError;

namespace {
struct Case {
  const char* pattern;
  const char* path;
  bool is_dir;
  bool expected;
};
}  // namespace

TEST_CASE("gitignore-style matching table") {
  const Case cases[] = {
      // no slash: basename at any depth, files and directories
      {".env", ".env", false, true},
      {".env", "app/config/.env", false, true},
      {".env", "app/.env", true, true},
      {".env", ".envrc", false, false},
      {".env", "x.env", false, false},
      {"*.key", "deep/a/b/server.key", false, true},
      {"*.key", ".hidden.key", false, true},  // '*' matches a leading dot
      {"*.key", "key", false, false},
      {".env.*", ".env.local", false, true},
      {".env.*", ".env", false, false},
      {"id_?sa", "id_rsa", false, true},
      {"[ab].txt", "a.txt", false, true},
      {"[ab].txt", "c.txt", false, false},
      {"[!ab].txt", "c.txt", false, true},
      // leading slash: anchored at the root
      {"/secrets", "secrets", true, true},
      {"/secrets", "app/secrets", true, false},
      // a slash in the middle anchors too
      {"config/prod.yaml", "config/prod.yaml", false, true},
      {"config/prod.yaml", "app/config/prod.yaml", false, false},
      {"config/*.yaml", "config/prod.yaml", false, true},
      {"config/*.yaml", "config/sub/prod.yaml", false, false},  // '*' stays within a segment
      // trailing slash: directories only
      {"node_modules/", "node_modules", true, true},
      {"node_modules/", "node_modules", false, false},
      {"node_modules/", "web/node_modules", true, true},
      {"/build/", "build", true, true},
      {"/build/", "src/build", true, false},
      // ** across directories
      {"**/logs", "logs", true, true},
      {"**/logs", "a/b/logs", true, true},
      {"**/logs/*.log", "x/logs/today.log", false, true},
      {"a/**/b", "a/b", false, true},
      {"a/**/b", "a/x/y/b", false, true},
      {"a/**/b", "a/x/y/c", false, false},
      {"secrets/**", "secrets/a/b", false, true},
      {"secrets/**", "secrets", true, false},  // "inside", not the directory itself
      // other consecutive asterisks are a plain '*'
      {"***.pem", "a.pem", false, true},
      // escapes
      {"\\#notes", "#notes", false, true},
      {"\\!important", "!important", false, true},
      // spaces and odd characters are literal
      {"my secrets.txt", "docs/my secrets.txt", false, true},
      {"weird:name,with=chars", "weird:name,with=chars", false, true},
  };
  for (const Case& c : cases) {
    CAPTURE(c.pattern);
    CAPTURE(c.path);
    CAPTURE(c.is_dir);
    CHECK(Pattern::parse(c.pattern).matches(c.path, c.is_dir) == c.expected);
  }
}

TEST_CASE("bad patterns are rejected with a reason") {
  const char* bad[] = {"", "/", "!negated", "#comment", "[unclosed", "a//b", "**", "/**/", "a/../b",
                       "./x", "trailing\\"};
  for (const char* p : bad) {
    CAPTURE(p);
    CHECK_THROWS_AS(Pattern::parse(p), PatternError);
  }
}

TEST_CASE("pattern flags") {
  const Pattern p = Pattern::parse("/out/");
  CHECK(p.anchored());
  CHECK(p.directory_only());
  CHECK_FALSE(Pattern::parse(".env").anchored());
}

TEST_CASE("could_match_below: false only where nothing below can match") {
  struct Row {
    const char* pattern;
    const char* directory;
    bool could;
  };
  const Row rows[] = {
      {".env", "any/where", true},  // a basename matches at every depth
      {"*.key", "", true},
      {"/secrets/", "", true},
      {"/secrets/", "secrets", false},  // the directory itself matches, nothing below
      {"/secrets/", "src", false},
      {"config/*.key", "config", true},
      {"config/*.key", "config/prod", false},  // too deep: the pattern has no segment left
      {"config/*.key", "app", false},
      {"[ab]/x", "a", true},
      {"[ab]/x", "c", false},
      {"a/**", "", true},
      {"a/**", "a", true},
      {"a/**", "a/b/c", true},
      {"a/**", "b", false},
      {"a/**/b", "a/x/y", true},
      {"a/**/b", "b", false},
      {"**/logs", "deep/down/here", true},
      {"src/**/.env", "lib", false},
  };
  for (const Row& r : rows) {
    CAPTURE(r.pattern);
    CAPTURE(r.directory);
    CHECK(Pattern::parse(r.pattern).could_match_below(r.directory) == r.could);
  }
  // Never false above a path that matches: every proper ancestor of every
  // matching path of the matching table's kind.
  const char* paths[] = {"a/b", "a/x/y/b", "config/prod.yaml", "secrets/a/b", "x/logs/today.log", "lib/x/id_rsa"};
  const char* patterns[] = {"a/**/b", "config/*.yaml", "secrets/**", "**/logs/*.log", "lib/x/id_rsa", "?/b", "*/*/*"};
  for (const char* text : patterns) {
    const Pattern p = Pattern::parse(text);
    for (const std::string path : paths) {
      if (!p.matches(path, false)) continue;
      for (std::size_t slash = 0; slash != std::string::npos; slash = path.find('/', slash + 1)) {
        CAPTURE(text);
        CAPTURE(path);
        CHECK(p.could_match_below(path.substr(0, slash)));
      }
    }
  }
}
