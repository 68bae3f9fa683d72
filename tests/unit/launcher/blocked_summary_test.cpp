#include <doctest/doctest.h>

#include <algorithm>

#include "launcher/host/blocked_summary.hpp"

using namespace cagent::launcher::host;

TEST_CASE("denied-query lines in the formats a log may use") {
  const std::string log =
      "2025-01-01T00:00:00Z info started listen=127.0.0.1:53\n"
      "2026-11-27T00:28:35Z denied name=cagent-probe.invalid type=1 client=127.0.0.1:44056\n"
      "2026-11-27T00:28:36Z denied name=files.pythonhosted.org type=28 client=127.0.0.1:44057\n"
      "2025-01-01T00:00:01Z info denied name=pypi.org. type=A client=127.0.0.1:5353\n"
      "2025-01-01T00:00:01Z info denied name=PyPI.org type=AAAA client=127.0.0.1:5353\n"
      "2025-01-01T00:00:02Z info allowed name=github.com type=A\n"
      "{\"event\":\"deny\",\"qname\":\"example.net.\",\"qtype\":\"A\"}\n"
      "deny example.org A from 127.0.0.1\n"
      "2025-01-01T00:00:03Z warn upstream timeout 192.0.2.53\n";
  CHECK(parse_denied_names(log) ==
        std::vector<std::string>{"files.pythonhosted.org", "pypi.org", "pypi.org", "example.net",
                                 "example.org"});
}

TEST_CASE("summary line") {
  CHECK(summarize_blocked({}).empty());
  CHECK(summarize_blocked({"pypi.org", "example.net", "pypi.org"}) ==
        "blocked 3 lookups: pypi.org \xC3\x97" "2, example.net \xE2\x80\x94 add to domains in .cagent.yaml to allow");
  CHECK(summarize_blocked({"a.example"}) ==
        "blocked 1 lookup: a.example \xE2\x80\x94 add to domains in .cagent.yaml to allow");
  const std::string many = summarize_blocked({"a.x", "b.x", "c.x", "d.x"}, 2);
  CHECK(many.find("a.x, b.x, +2 more") != std::string::npos);
}

TEST_CASE("gate refusals: from dnsguard's lines to one summary line") {
  const std::string log =
      "2026-11-28T09:00:00Z info gate refused name=b.other.test dst=198.51.100.10:443 reason=\"name not resolved to this address\"\n"
      "2026-11-28T09:00:01Z info denied name=evil.test type=1 client=127.0.0.1\n"
      "2026-11-28T09:00:02Z info gate refused dst=198.51.100.10:443 reason=\"no server name\"\n"
      "2026-11-28T09:00:03Z info gate refused name=b.other.test dst=198.51.100.10:80 reason=\"name not resolved to this address\"\n"
      "2026-11-28T09:00:04Z info gate refused reason=\"not redirected\"\n";
  const auto targets = parse_gate_refusals(log);
  CHECK(targets == std::vector<std::string>{"b.other.test", "198.51.100.10:443", "b.other.test", "(no name)"});
  CHECK(summarize_gate_refusals(targets) ==
        "the connection gate refused 4 connections: b.other.test \xC3\x97" "2, 198.51.100.10:443, (no name) "
        "\xE2\x80\x94 TLS/HTTP to a name that did not resolve to that address (details: dnsguard.log)");
  CHECK(summarize_gate_refusals({}).empty());
  // Denied lookups are still counted on their own line, not as refusals.
  CHECK(parse_denied_names(log) == std::vector<std::string>{"evil.test"});
}
