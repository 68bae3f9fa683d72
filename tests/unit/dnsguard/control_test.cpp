#include <doctest/doctest.h>

#include <string>

#include "control.hpp"

using namespace cagent::dnsguard;

TEST_CASE("live policy: allow adds names for the next lookup, deny takes only run-time additions back") {
  LivePolicy live({"github.com", "*.githubusercontent.com"});
  auto out = live.execute("allow PyPI.org. *.pythonhosted.org github.com\n");
  REQUIRE(out.ok);
  CHECK(out.reply == "ok allowed pypi.org *.pythonhosted.org github.com");
  CHECK(out.allowed == std::vector<std::string>{"pypi.org", "*.pythonhosted.org"});  // github.com: already
  REQUIRE(out.next);
  CHECK(out.next->allows("pypi.org"));
  CHECK(out.next->allows("files.pythonhosted.org"));
  CHECK(out.next->allows("github.com"));
  CHECK(out.next->allows("raw.githubusercontent.com"));
  CHECK(!out.next->allows("example.com"));
  CHECK(out.next->exact_names() == std::vector<std::string>{"github.com", "pypi.org"});

  out = live.execute("allow pypi.org");  // idempotent: no new list
  CHECK(out.ok);
  CHECK(!out.next);
  CHECK(out.allowed.empty());

  out = live.execute("deny pypi.org");
  REQUIRE(out.ok);
  CHECK(out.denied == std::vector<std::string>{"pypi.org"});
  REQUIRE(out.next);
  CHECK(!out.next->allows("pypi.org"));
  CHECK(out.next->allows("a.pythonhosted.org"));
  CHECK(live.execute("list").reply == "ok *.pythonhosted.org");
}

TEST_CASE("live policy: errors change nothing") {
  LivePolicy live({"github.com"});
  REQUIRE(live.execute("allow a.example").ok);
  for (const char* bad : {"allow good.example bad..name", "allow *", "allow a.*.example", "deny github.com",
                          "deny never.example", "deny a.example never.example", "allow", "frobnicate x", ""}) {
    CAPTURE(bad);
    auto out = live.execute(bad);
    CHECK(!out.ok);
    CHECK(!out.next);
    CHECK(out.reply.rfind("error ", 0) == 0);
    CHECK(out.reply.find('\n') == std::string::npos);
  }
  CHECK(live.added() == std::vector<std::string>{"a.example"});
  CHECK(live.execute("deny github.com").reply.find("policy file") != std::string::npos);
  CHECK(control_socket_for("/var/log/cagent/dnsguard.log") == "/var/log/cagent/control/dnsguard.sock");
  CHECK(control_socket_for("").empty());
}
