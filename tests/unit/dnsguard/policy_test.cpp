// dnsguard/policy.hpp: the session policy schema, its defaults, its writer.
// The reader's error messages per key are in config_test.cpp (dnsguard's
// view) and in tests/unit/policy (the contract: host writer, dnsguard and
// cage-init readers).
#include <doctest/doctest.h>

#include <string>

#include "dnsguard/policy.hpp"

using namespace cagent::dnsguard;

namespace {
IpEndpoint ep(const char* text) { return *parse_endpoint(text, 53); }
Cidr cidr(const char* text) { return *parse_cidr(text); }

// Every key set to something other than its default.
Policy everything_set() {
  Policy p;
  p.listen = {ep("127.0.0.1:5353"), ep("[::1]:5353")};
  p.upstreams = {ep("192.0.2.53:53"), ep("[2001:db8::53]:5300")};
  p.allow = {"example.com", "*.example.org"};
  p.allow_cidrs = {cidr("203.0.113.0/24"), cidr("2001:db8:1::/48")};
  p.inbound = {{Transport::tcp, 8080, 8080}, {Transport::udp, 6000, 6010}, {Transport::sctp, 9, 9}};
  p.deny_rcode = DenyRcode::refused;
  p.ttl_min = 2;
  p.ttl_max = 7200;
  p.refresh_interval = 0;
  p.cache_size = 0;
  p.nft_table = "t1";
  p.nft_set4 = "a4";
  p.nft_set6 = "a6";
  p.log_file = "/tmp/cagent-log/dnsguard.log";
  p.log_level = LogLevel::debug;
  p.gate_enabled = true;
  p.relay_hosts = {"example.com"};
  p.relay_port = 997;
  p.relay_uid = 4545;
  return p;
}
}  // namespace

TEST_CASE("policy defaults match the policy contract (cmd/README.md)") {
  const Policy p = parse_policy("", "empty.toml");
  CHECK(p == Policy{});
  REQUIRE(p.listen.size() == 1);
  CHECK(to_string(p.listen[0]) == "127.0.0.1:53");
  CHECK(p.upstreams.empty());  // absent: resolv.conf's nameservers
  CHECK(p.allow.empty());
  CHECK(p.inbound.empty());    // nothing comes in unless published
  CHECK(p.deny_rcode == DenyRcode::nxdomain);
  CHECK(p.ttl_min == 30);
  CHECK(p.ttl_max == 3600);
  CHECK(p.refresh_interval == 60);
  CHECK(p.cache_size == 10000);
  CHECK(p.nft_table == "cagent");
  CHECK(p.nft_set4 == "allow4");
  CHECK(p.nft_set6 == "allow6");
  CHECK(p.log_file == "/var/log/cagent/dnsguard.log");
  CHECK(p.log_level == LogLevel::info);
}

TEST_CASE("write_policy then parse_policy gives back every key") {
  const Policy p = everything_set();
  const std::string text = write_policy(p, "a comment");
  CAPTURE(text);
  CHECK(text.rfind("# a comment\n", 0) == 0);
  CHECK(parse_policy(text, "w.toml") == p);
  // Every key of the schema is in the text (none is silently dropped).
  for (const std::string& key : policy_keys()) {
    CAPTURE(key);
    const auto dot = key.find('.');
    if (dot == std::string::npos) {
      CHECK(text.find("\n" + key + " = ") != std::string::npos);
    } else {
      CHECK(text.find("[" + key.substr(0, dot) + "]") != std::string::npos);
      CHECK(text.find(key.substr(dot + 1) + " = ") != std::string::npos);
    }
  }
  CHECK(parse_policy(write_policy(Policy{}), "d.toml") == Policy{});
}

TEST_CASE("write_policy: basic strings, escapes, empty lists left out") {
  Policy p;
  p.log_file = "/tmp/a \"quoted\"\tpath\x01";
  const std::string text = write_policy(p);
  CAPTURE(text);
  CHECK(text.find('\'') == std::string::npos);  // no literal strings
  CHECK(text.find("\"127.0.0.1:53\"") != std::string::npos);
  CHECK(text.find("upstreams") == std::string::npos);  // absent: resolv.conf's
  CHECK(text.find("inbound") == std::string::npos);
  CHECK(text.find("allow_cidrs") == std::string::npos);
  CHECK(parse_policy(text, "e.toml").log_file == p.log_file);
}

TEST_CASE("policy_keys lists the schema in order") {
  CHECK(policy_keys() == std::vector<std::string>{"listen", "upstreams", "allow", "allow_cidrs", "inbound",
                                                  "deny_rcode", "ttl.min", "ttl.max", "refresh.interval",
                                                  "cache.size", "nft.table", "nft.set4", "nft.set6", "log.file",
                                                  "log.level", "gate.enabled", "gate.port", "gate.tls_ports",
                                                  "gate.http_ports", "relay.hosts", "relay.port", "relay.uid", "learn",
                                                  "ask.enabled", "ask.timeout"});
}

TEST_CASE("parse_port_range: PORT[-PORT]/PROTO, nothing else") {
  CHECK(parse_port_range("80/tcp") == PortRange{Transport::tcp, 80, 80});
  CHECK(parse_port_range("53/udp") == PortRange{Transport::udp, 53, 53});
  CHECK(parse_port_range("9/sctp") == PortRange{Transport::sctp, 9, 9});
  CHECK(parse_port_range("5000-5010/tcp") == PortRange{Transport::tcp, 5000, 5010});
  CHECK(static_cast<int>(Transport::tcp) == 6);  // IP protocol numbers, handed to nft as they are
  CHECK(static_cast<int>(Transport::udp) == 17);
  CHECK(static_cast<int>(Transport::sctp) == 132);
  CHECK(to_string(PortRange{Transport::udp, 6000, 6010}) == "6000-6010/udp");
  CHECK(to_string(PortRange{Transport::sctp, 9, 9}) == "9/sctp");
  for (const char* bad : {"80", "80/icmp", "0/tcp", "65536/tcp", "x/tcp", "90-80/tcp", "80-/tcp", "/tcp", "80 /tcp",
                          "-1/tcp", "80/TCP", ""}) {
    CAPTURE(bad);
    CHECK_FALSE(parse_port_range(bad));
  }
}

TEST_CASE("parse_resolv_conf keeps nameservers in order and skips the rest") {
  const auto servers = parse_resolv_conf(
      "# generated\nsearch example.com\nnameserver 192.0.2.53\noptions ndots:0\n"
      "nameserver   2001:db8::53  \nnameserver fe80::1%eth0\nnameserver\nnameserver 198.51.100.53");
  REQUIRE(servers.size() == 3);
  CHECK(to_string(servers[0]) == "192.0.2.53:53");
  CHECK(to_string(servers[1]) == "[2001:db8::53]:53");
  CHECK(to_string(servers[2]) == "198.51.100.53:53");
  CHECK(parse_resolv_conf("").empty());
}

TEST_CASE("read_policy: a missing file is unreadable, a TOML error too, a schema error is invalid") {
  try {
    read_policy("/nonexistent/policy.toml");
    FAIL("no error");
  } catch (const PolicyError& e) {
    CHECK(e.kind() == PolicyError::Kind::unreadable);
  }
  try {
    parse_policy("allow = [\"a.test\"", "s.toml");
    FAIL("no error");
  } catch (const PolicyError& e) {
    CHECK(e.kind() == PolicyError::Kind::unreadable);
    CHECK(std::string(e.what()).rfind("s.toml:1:", 0) == 0);
  }
  try {
    parse_policy("bogus = 1", "s.toml");
    FAIL("no error");
  } catch (const PolicyError& e) {
    CHECK(e.kind() == PolicyError::Kind::invalid);
    CHECK(std::string(e.what()) == "s.toml:1: bogus: unknown key");
  }
}
