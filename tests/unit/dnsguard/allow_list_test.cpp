#include <doctest/doctest.h>

#include "dnsguard/address_filter.hpp"
#include "dnsguard/allow_list.hpp"
#include "dnsguard/ip.hpp"

using namespace cagent::dnsguard;

TEST_CASE("AllowList matching table") {
  AllowList list({"github.com", "*.githubusercontent.com", "Example.ORG.", "*.a.b.test"});
  struct Row {
    const char* name;
    bool allowed;
  };
  const Row rows[] = {
      {"github.com", true},
      {"api.github.com", false},  // exact names do not cover subdomains
      {"gitHub.com", false},      // the parser lowercases; allows() expects lowercase input
      {"githubusercontent.com", false},  // a wildcard never matches its apex
      {"raw.githubusercontent.com", true},
      {"a.b.c.githubusercontent.com", true},  // any depth below
      {"xgithubusercontent.com", false},      // not a label boundary
      {"githubusercontent.com.evil.test", false},
      {"example.org", true},
      {"www.example.org", false},
      {"b.test", false},
      {"a.b.test", false},
      {"x.a.b.test", true},
      {"", false},
      {"com", false},
  };
  for (const auto& row : rows) {
    CAPTURE(row.name);
    CHECK(list.allows(row.name) == row.allowed);
  }
  CHECK(list.exact_names() == std::vector<std::string>{"github.com", "example.org"});
}

TEST_CASE("pattern validation at load") {
  CHECK(normalize_pattern("WWW.Example.COM.") == "www.example.com");
  CHECK(normalize_pattern("*.Example.com") == "*.example.com");
  CHECK(normalize_pattern("_dmarc.example.com") == "_dmarc.example.com");
  for (const char* bad : {"", ".", "*", "*.", "a..b", "a.*.b", "**.a", "*a.b", "a b.c", "a/b.c",
                          "exa$mple.com", "-.-..", ".leading.dot"}) {
    CAPTURE(bad);
    CHECK_THROWS_AS(normalize_pattern(bad), PatternError);
  }
  CHECK_THROWS_AS(normalize_pattern(std::string(64, 'a') + ".com"), PatternError);
  CHECK_NOTHROW(normalize_pattern(std::string(63, 'a') + ".com"));
  CHECK_THROWS_AS(AllowList({"ok.test", "bad..test"}), PatternError);
}

TEST_CASE("address filter") {
  struct Row {
    const char* addr;
    bool special;
  };
  const Row rows[] = {
      {"0.0.0.0", true},          {"127.0.0.1", true},        {"10.1.2.3", true},
      {"172.16.0.1", true},       {"172.31.255.255", true},   {"172.32.0.1", false},
      {"192.168.1.1", true},      {"100.64.0.1", true},       {"100.127.255.255", true},
      {"100.128.0.1", false},     {"169.254.169.254", true},  {"224.0.0.1", true},
      {"255.255.255.255", true},  {"8.8.8.8", false},         {"198.51.100.7", false},
      {"203.0.113.9", false},     {"::", true},               {"::1", true},
      {"fe80::1", true},          {"fc00::1", true},          {"fd00:ec2::254", true},
      {"ff02::1", true},          {"::ffff:10.0.0.1", true},  {"::ffff:8.8.8.8", true},
      {"2001:db8::1", false},     {"2606:4700::1111", false},
      // Addresses with an IPv4 address inside are judged by it.
      {"64:ff9b::10.0.0.1", true},        {"64:ff9b::169.254.169.254", true},
      {"64:ff9b::127.0.0.1", true},       {"64:ff9b::8.8.8.8", false},
      {"64:ff9b:1::a00:1", true},         {"64:ff9b:1:2::1", true},   // local-use NAT64: whole prefix
      {"2002:a00:1::1", true},            {"2002:c0a8:101::", true},  // 6to4 of 10.0.0.1 / 192.168.1.1
      {"2002:808:808::1", false},                                      // 6to4 of 8.8.8.8
      {"2001:0:a00:1::1", true},                                       // Teredo server 10.0.0.1
      {"2001:0:808:808::f5ff:fffe", true},                             // Teredo client 10.0.0.1 (inverted)
      {"2001:0:808:808::f7f7:f7f7", false},                            // Teredo client 8.8.8.8
      {"::ffff:0:a00:1", true},                                        // SIIT v4-translated
  };
  for (const auto& row : rows) {
    CAPTURE(row.addr);
    auto ip = parse_ip(row.addr);
    REQUIRE(ip);
    CHECK(is_special_purpose(*ip) == row.special);
    CHECK(may_insert(*ip, {}) == !row.special);
  }
  std::vector<Cidr> allowed{*parse_cidr("10.1.0.0/16"), *parse_cidr("fd00:ec2::/32")};
  CHECK(may_insert(*parse_ip("10.1.2.3"), allowed));
  CHECK_FALSE(may_insert(*parse_ip("10.2.0.1"), allowed));
  CHECK(may_insert(*parse_ip("fd00:ec2::254"), allowed));
  CHECK_FALSE(may_insert(*parse_ip("169.254.169.254"), allowed));
}
