#include <doctest/doctest.h>

#include "launcher/host/yaml_edit.hpp"

using namespace cagent::launcher::host;

TEST_CASE("yaml editor: appends to the domains block, keeping everything else as written") {
  const std::string text =
      "# project config\n"
      "domains:\n"
      "    - github.com   # code\n"
      "    # mirrors below\n"
      "    - '*.pythonhosted.org'\n"
      "\n"
      "readonly:   # keep .git safe\n"
      "  - .git\n";
  const std::string out = add_domains(text, {"pypi.org", "github.com"});
  CHECK(out ==
        "# project config\n"
        "domains:\n"
        "    - github.com   # code\n"
        "    # mirrors below\n"
        "    - '*.pythonhosted.org'\n"
        "    - \"pypi.org\"\n"
        "\n"
        "readonly:   # keep .git safe\n"
        "  - .git\n");
  CHECK(add_domains(out, {"pypi.org"}) == out);  // idempotent
}

TEST_CASE("yaml editor: a file without domains, an empty file, a missing final newline") {
  CHECK(add_domains("ignore:\n  - secrets/\n", {"a.example"}) == "ignore:\n  - secrets/\ndomains:\n  - \"a.example\"\n");
  CHECK(add_domains("", {"a.example", "*.b.example"}) == "domains:\n  - \"a.example\"\n  - \"*.b.example\"\n");
  CHECK(add_domains("# nothing yet\n", {"a.example"}) == "# nothing yet\ndomains:\n  - \"a.example\"\n");
  CHECK(add_domains("domains:\n- a.example", {"b.example"}) == "domains:\n- a.example\n- \"b.example\"");
  CHECK(add_domains("domains:   # none yet\nreadonly: [.git]\n", {"b.example"}) ==
        "domains:   # none yet\n  - \"b.example\"\nreadonly: [.git]\n");
}

TEST_CASE("yaml editor: refuses what it cannot parse or extend safely") {
  CHECK_THROWS_AS(add_domains("domains: [a.example\n", {"b.example"}), YamlEditError);
  CHECK_THROWS_AS(add_domains("- a\n- b\n", {"b.example"}), YamlEditError);
  CHECK_THROWS_AS(add_domains("domains: a.example\n", {"b.example"}), YamlEditError);
  CHECK_THROWS_AS(add_domains("domains: [a.example]\n", {"b.example"}), YamlEditError);
  CHECK_THROWS_AS(add_domains("domains:\n  - a.example\n  -\n    - nested\n", {"b.example"}), YamlEditError);
  // Already there in flow style: nothing to do, nothing refused.
  CHECK(add_domains("domains: [a.example]\n", {"a.example"}) == "domains: [a.example]\n");
}
