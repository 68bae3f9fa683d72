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

TEST_CASE("exact summary from the decision record: types merged, probe left out, unlisted counted") {
  std::string json =
      "{\"version\":1,\"updated\":1800000010,\"denied_total\":311,\"denied_unlisted\":5,\"denied\":["
      "{\"name\":\"pypi.org\",\"type\":1,\"count\":200,\"first\":1,\"last\":2},"
      "{\"name\":\"cagent-probe.invalid\",\"type\":1,\"count\":1,\"first\":1,\"last\":1},"
      "{\"name\":\"example.net\",\"type\":1,\"count\":3,\"first\":1,\"last\":2},"
      "{\"name\":\"pypi.org\",\"type\":28,\"count\":100,\"first\":1,\"last\":2},"
      "{\"name\":\"a\\\"b\",\"type\":1,\"count\":2,\"first\":1,\"last\":2}],"
      "\"gate_refused_total\":3,\"gate_refused_unlisted\":0,\"gate_refused\":["
      "{\"name\":\"b.example\",\"dst\":\"\",\"reason\":\"not bound\",\"count\":2,\"first\":1,\"last\":1},"
      "{\"name\":\"\",\"dst\":\"192.0.2.1:443\",\"reason\":\"no SNI\",\"count\":1,\"first\":1,\"last\":1}]}\n";
  const auto d = parse_decisions(json);
  REQUIRE(d);
  CHECK(d->denied_total == 310);
  CHECK(exact_blocked_summary(*d) == "blocked 310 lookups: pypi.org \xC3\x97" "300, example.net \xC3\x97" "3, a\"b \xC3\x97" "2, +5 more not listed"
                                 " \xE2\x80\x94 add to domains in .cagent.yaml to allow");
  CHECK(exact_gate_summary(*d) ==
        "the connection gate refused 3 connections: b.example \xC3\x97" "2, 192.0.2.1:443 \xE2\x80\x94 TLS/HTTP to a "
        "name that did not resolve to that address (details: dnsguard.log)");
  // A record from before the firewall part: nothing to say about it.
  CHECK(d->firewall_total == 0);
  CHECK(exact_firewall_summary(*d).empty());
}

TEST_CASE("exact summary: the firewall's own refusals, itemized ones and the rest") {
  const std::string json =
      "{\"version\":1,\"updated\":1800000010,\"denied_total\":0,\"denied_unlisted\":0,\"denied\":[],"
      "\"gate_refused_total\":0,\"gate_refused_unlisted\":0,\"gate_refused\":[],"
      "\"firewall_refused_total\":12,\"firewall_refused_unlisted\":2,\"firewall_refused\":["
      "{\"dst\":\"198.51.100.19:80\",\"proto\":\"tcp\",\"count\":9,\"first\":1,\"last\":2},"
      "{\"dst\":\"[2001:db8::7]:53\",\"proto\":\"udp\",\"count\":1,\"first\":1,\"last\":1}],"
      "\"changes_dropped\":0,\"changes\":[]}\n";
  const auto d = parse_decisions(json);
  REQUIRE(d);
  CHECK(d->firewall_total == 12);
  CHECK(exact_firewall_summary(*d) ==
        "the firewall refused 12 packets: 198.51.100.19:80/tcp \xC3\x97" "9, [2001:db8::7]:53/udp, +2 more not listed "
        "\xE2\x80\x94 connections to addresses no allowed name resolved to");
  CHECK(exact_blocked_summary(*d).empty());
}

TEST_CASE("exact summary: refusals of which none is itemized read as a count, not an empty list") {
  const std::string json =
      "{\"version\":1,\"updated\":1800000010,\"denied_total\":0,\"denied_unlisted\":0,\"denied\":[],"
      "\"gate_refused_total\":0,\"gate_refused_unlisted\":0,\"gate_refused\":[],"
      "\"firewall_refused_total\":3,\"firewall_refused_unlisted\":3,\"firewall_refused\":[],"
      "\"changes_dropped\":0,\"changes\":[]}\n";
  const auto d = parse_decisions(json);
  REQUIRE(d);
  CHECK(exact_firewall_summary(*d) ==
        "the firewall refused 3 packets: 3 not itemized \xE2\x80\x94 connections to addresses no allowed name resolved to");
}

TEST_CASE("exact summary: hundreds of distinct names are all counted, nothing when nothing was refused") {
  std::string json = "{\"version\":1,\"updated\":1,\"denied_total\":300,\"denied_unlisted\":0,\"denied\":[";
  for (int i = 0; i < 300; ++i)
    json += std::string(i ? "," : "") + "{\"name\":\"n" + std::to_string(i) + ".example\",\"type\":1,\"count\":1,\"first\":1,\"last\":1}";
  json += "],\"gate_refused_total\":0,\"gate_refused_unlisted\":0,\"gate_refused\":[]}";
  const auto d = parse_decisions(json);
  REQUIRE(d);
  CHECK(exact_blocked_summary(*d, 2).rfind("blocked 300 lookups: n0.example, n1.example, +298 more \xE2\x80\x94", 0) == 0);
  CHECK(exact_gate_summary(*d).empty());
  const auto none = parse_decisions("{\"version\":1,\"updated\":1,\"denied_total\":0,\"denied_unlisted\":0,\"denied\":[],"
                                    "\"gate_refused_total\":0,\"gate_refused_unlisted\":0,\"gate_refused\":[]}");
  REQUIRE(none);
  CHECK(exact_blocked_summary(*none).empty());
}

TEST_CASE("a decision record that cannot be read means: fall back to the log") {
  CHECK(!parse_decisions(""));
  CHECK(!parse_decisions("{\"version\":2}"));
  CHECK(!parse_decisions("{\"version\":1,\"denied_total\":\"x\"}"));
  CHECK(!parse_decisions("{\"version\":1,"));
}
