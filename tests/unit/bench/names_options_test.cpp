#include <doctest/doctest.h>

#include "bench/dns_wire.hpp"
#include "bench/names.hpp"
#include "bench/options.hpp"

#include <array>
#include <set>
#include <stdexcept>

using namespace cagent::bench;

namespace {
Command parse(std::initializer_list<std::string_view> args) { return parse_command(std::vector(args)); }
}  // namespace

TEST_CASE("generated names: unique within N, repeat after N, valid wire form") {
  const auto s = NameSource::generated(1000, "bench.test", "salt");
  CHECK(s.size() == 1000);
  CHECK(s.name(0) == "salt-0.bench.test");
  CHECK(s.name(999) == "salt-999.bench.test");
  CHECK(s.name(1000) == s.name(0));
  std::set<std::string> seen;
  for (std::uint64_t i = 0; i < 1000; ++i) seen.insert(s.name(i));
  CHECK(seen.size() == 1000);
  std::array<std::uint8_t, 255> wire{};
  const auto len = s.wire_name(42, wire);
  std::array<std::uint8_t, 255> expected{};
  const auto expected_len = encode_name("salt-42.bench.test", expected);
  CHECK(len == expected_len);
  CHECK(std::equal(wire.begin(), wire.begin() + static_cast<long>(len), expected.begin()));
  std::array<std::uint8_t, 8> small{};
  CHECK(s.wire_name(42, small) == 0);
  CHECK_THROWS(NameSource::generated(1, "bench..test", "s"));
  CHECK_THROWS(NameSource::generated(1, "bench.test", std::string(50, 's')));
}

TEST_CASE("two random salts differ") { CHECK(random_salt() != random_salt()); }

TEST_CASE("list names cycle in order") {
  const auto s = NameSource::from_list({"a.example", "B.example.", "c.example"});
  CHECK(s.size() == 3);
  CHECK(s.name(0) == "a.example");
  CHECK(s.name(1) == "B.example");
  CHECK(s.name(5) == "c.example");
  CHECK_THROWS_AS(NameSource::from_list({"ok.example", "bad..example"}), std::invalid_argument);
  CHECK_THROWS_AS(NameSource::from_list({}), std::invalid_argument);
  CHECK_THROWS_AS(NameSource::from_file("/nonexistent/names.txt"), std::runtime_error);
}

TEST_CASE("host:port parsing") {
  const auto v4 = parse_host_port("192.0.2.53:53", "--server");
  CHECK(v4.host == "192.0.2.53");
  CHECK(v4.port == 53);
  const auto v6 = parse_host_port("[2001:db8::1]:5353", "--server");
  CHECK(v6.host == "2001:db8::1");
  CHECK(v6.port == 5353);
  CHECK_THROWS_AS(parse_host_port("2001:db8::1:53", "--server"), UsageError);
  CHECK_THROWS_AS(parse_host_port("example.com:53", "--server"), UsageError);
  CHECK_THROWS_AS(parse_host_port("192.0.2.53:70000", "--server"), UsageError);
  CHECK_THROWS_AS(parse_host_port("192.0.2.53", "--server"), UsageError);
  CHECK_THROWS_AS(parse_host_port("[2001:db8::1]", "--server"), UsageError);  // the port is required
  CHECK_THROWS_AS(parse_host_port("[192.0.2.53]:53", "--server"), UsageError);
}

TEST_CASE("query options") {
  const auto c = parse({"query", "--server", "127.0.0.1:53", "--generate", "100", "--zone", "bench.test",
                        "--outstanding", "8", "--count", "500", "--json", "--connect-after-answer",
                        "--qtype", "AAAA", "--timeout-ms", "250", "--label", "x"});
  const auto& q = std::get<QueryOptions>(c);
  CHECK(q.server.port == 53);
  CHECK(q.generate == 100);
  CHECK(q.outstanding == 8);
  CHECK(*q.count == 500);
  CHECK_FALSE(q.duration);
  CHECK(q.json);
  CHECK(q.connect_after_answer);
  CHECK(q.qtype == kTypeAAAA);
  CHECK(q.timeout.count() == 250);
  CHECK(q.label == "x");

  const auto r = parse({"query", "--server", "127.0.0.1:53", "--names", "f", "--rate", "1500.5", "--duration", "2"});
  CHECK(*std::get<QueryOptions>(r).rate == doctest::Approx(1500.5));
}

TEST_CASE("query options: the run must be bounded and the source unambiguous") {
  CHECK_THROWS_AS(parse({"query", "--server", "127.0.0.1:53", "--names", "f"}), UsageError);
  CHECK_THROWS_AS(parse({"query", "--generate", "5", "--zone", "z", "--count", "5"}), UsageError);
  CHECK_THROWS_AS(parse({"query", "--server", "127.0.0.1:53", "--count", "5"}), UsageError);
  CHECK_THROWS_AS(parse({"query", "--server", "127.0.0.1:53", "--names", "f", "--generate", "5", "--zone", "z",
                         "--count", "5"}), UsageError);
  CHECK_THROWS_AS(parse({"query", "--server", "127.0.0.1:53", "--generate", "5", "--count", "5"}), UsageError);
  CHECK_THROWS_AS(parse({"query", "--server", "127.0.0.1:53", "--names", "f", "--count", "5", "--rate", "10",
                         "--outstanding", "3"}), UsageError);
  CHECK_THROWS_AS(parse({"query", "--server", "127.0.0.1:53", "--names", "f", "--count", "5", "--rate", "-1"}),
                  UsageError);
  CHECK_THROWS_AS(parse({"query", "--server", "127.0.0.1:53", "--names", "f", "--count", "0"}), UsageError);
  CHECK_THROWS_AS(parse({"query", "--server", "127.0.0.1:53", "--names", "f", "--count", "5", "--bogus"}),
                  UsageError);
  CHECK_THROWS_AS(parse({"query", "--server"}), UsageError);
}

TEST_CASE("serve options and help") {
  const auto c = parse({"serve", "--listen", "192.0.2.53:53", "--ttl", "5", "--v4-prefix", "203.0.113.0/25",
                        "--threads", "2", "--tcp-sink", "0.0.0.0:80"});
  const auto& s = std::get<ServeOptions>(c);
  CHECK(s.listen.host == "192.0.2.53");
  CHECK(s.ttl == 5);
  CHECK(s.v4.len == 25);
  CHECK(s.threads == 2);
  REQUIRE(s.sink);
  CHECK(s.sink->port == 80);
  CHECK(s.zone == "bench.test");
  CHECK_THROWS_AS(parse({"serve", "--listen", "192.0.2.53:53", "--v4-prefix", "nope"}), UsageError);
  CHECK_THROWS_AS(parse({"serve"}), UsageError);
  CHECK_THROWS_AS(parse({"frobnicate"}), UsageError);
  CHECK_THROWS_AS(parse_command({}), UsageError);
  CHECK(std::holds_alternative<HelpRequest>(parse({"query", "--help"})));
  CHECK(std::holds_alternative<HelpRequest>(parse({"--help"})));
}

TEST_CASE("ruleset options") {
  const auto c = parse({"ruleset", "--upstream", "192.0.2.53:53", "--upstream", "[2001:db8::53]:53",
                        "--resolver-uid", "64000", "--listen-port", "5353"});
  const auto& r = std::get<RulesetOptions>(c);
  CHECK(r.upstreams.size() == 2);
  CHECK(r.resolver_uid == 64000);
  CHECK(r.listen_port == 5353);
  CHECK(r.table == "cagent");
  CHECK_THROWS_AS(parse({"ruleset", "--resolver-uid", "1"}), UsageError);
  CHECK_THROWS_AS(parse({"ruleset", "--upstream", "192.0.2.53:53"}), UsageError);
}

TEST_CASE("ruleset options with the connection gate") {
  const auto c = parse({"ruleset", "--upstream", "192.0.2.53:53", "--resolver-uid", "65534", "--gate-port", "999",
                        "--gated", "443", "--gated", "80"});
  const auto& r = std::get<RulesetOptions>(c);
  CHECK(r.gate_port == 999);
  CHECK(r.gated == std::vector<std::uint16_t>{443, 80});
  CHECK_THROWS_AS(parse({"ruleset", "--upstream", "192.0.2.53:53", "--resolver-uid", "1", "--gated", "443"}), UsageError);
  CHECK_THROWS_AS(parse({"ruleset", "--upstream", "192.0.2.53:53", "--resolver-uid", "1", "--gate-port", "9"}),
                  UsageError);
}

TEST_CASE("http and http-serve options") {
  const auto s = std::get<HttpServeOptions>(parse({"http-serve", "--listen", "198.51.100.10:80"}));
  CHECK(s.listen.port == 80);
  CHECK_THROWS_AS(parse({"http-serve"}), UsageError);
  const auto h = std::get<HttpOptions>(parse({"http", "--target", "198.51.100.10:80", "--host", "a.bench.test",
                                              "--latency", "100", "--bulk", "1000000", "--rounds", "3", "--hold",
                                              "1000", "--hold-seconds", "2.5", "--label", "gate"}));
  CHECK(h.target.host == "198.51.100.10");
  CHECK(h.host == "a.bench.test");
  CHECK(h.latency == 100);
  CHECK(h.bulk == 1000000);
  CHECK(h.rounds == 3);
  CHECK(h.hold == 1000);
  CHECK(h.hold_seconds == doctest::Approx(2.5));
  CHECK(h.label == "gate");
  // Unbounded or without a Host: refused.
  CHECK_THROWS_AS(parse({"http", "--target", "198.51.100.10:80", "--host", "a.test"}), UsageError);
  CHECK_THROWS_AS(parse({"http", "--target", "198.51.100.10:80", "--latency", "5"}), UsageError);
  CHECK_THROWS_AS(parse({"http", "--host", "a.test", "--latency", "5"}), UsageError);
}
