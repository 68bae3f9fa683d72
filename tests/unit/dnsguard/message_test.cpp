#include <doctest/doctest.h>

#include <algorithm>
#include <random>

#include "tests/unit/dnsguard/ldns_fixtures.hpp"
#include "dnsguard/ldns_message.hpp"
#include "dnsguard/message.hpp"
#include "tests/unit/dnsguard/wire_helpers.hpp"

using namespace cagent::dnsguard;
using test_wire::query;
using test_wire::QuerySpec;

namespace {
const AllowList& allow() {
  static const AllowList list({"www.example.test", "*.cdn.test"});
  return list;
}
Verdict classify(const std::vector<std::uint8_t>& wire, Query& q) {
  return classify_query(wire, allow(), q);
}
WireName wn(std::string_view name) { return *wire_name(name); }
std::vector<std::string> addrs(const ResponseInfo& info) {
  std::vector<std::string> out;
  for (const auto& a : info.addresses) out.push_back(to_string(a.addr) + "/" + std::to_string(a.ttl));
  std::sort(out.begin(), out.end());
  return out;
}
}  // namespace

TEST_CASE("request classification") {
  Query q;
  struct Row {
    const char* what;
    QuerySpec spec;
    Verdict verdict;
  };
  std::vector<Row> rows = {
      {"allowed A", {}, Verdict::forward},
      {"allowed, mixed case, trailing dot", {.name = "WWW.Example.TEST"}, Verdict::forward},
      {"wildcard depth 2", {.name = "a.b.cdn.test"}, Verdict::forward},
      {"wildcard apex", {.name = "cdn.test"}, Verdict::deny},
      {"not allowed", {.name = "evil.test"}, Verdict::deny},
      {"bad label byte", {.name = "a=b.cdn.test"}, Verdict::deny},
      {"space in label", {.name = "a b.cdn.test"}, Verdict::deny},
      {"root", {.name = ""}, Verdict::deny},
      {"QDCOUNT 0", {.qdcount = 0}, Verdict::formerr},
      {"QDCOUNT 2", {.qdcount = 2}, Verdict::formerr},
      {"opcode NOTIFY", {.flags = 4u << 11}, Verdict::notimp},
      {"opcode UPDATE", {.flags = 5u << 11}, Verdict::notimp},
      {"class CH", {.cls = 3}, Verdict::refused},
      {"ANY", {.type = 255}, Verdict::notimp},
      {"AXFR", {.type = 252}, Verdict::refused},
      {"a response", {.flags = 0x8100}, Verdict::drop},
      {"HTTPS allowed", {.type = 65}, Verdict::forward},
      {"TXT allowed", {.type = 16}, Verdict::forward},
      // A type nobody asks for: its number would be 16 bits of data to
      // whoever sees the allowed name's queries upstream.
      {"type 26725", {.type = 26725}, Verdict::notimp},
      {"NULL (type 10)", {.type = 10}, Verdict::notimp},
  };
  for (const auto& row : rows) {
    CAPTURE(row.what);
    CHECK(classify(query(row.spec), q) == row.verdict);
  }
  REQUIRE(classify(query({.name = "WWW.Example.TEST"}), q) == Verdict::forward);
  CHECK(q.name() == "www.example.test");
  CHECK(q.qtype == 1);
  CHECK_FALSE(q.edns);
  CHECK(q.udp_size == 512);
}

TEST_CASE("malformed queries are dropped") {
  Query q;
  auto good = query({.edns = true});
  // Every strict prefix that cuts into the question or the OPT record.
  for (std::size_t n = 0; n < good.size(); ++n) {
    CAPTURE(n);
    std::vector<std::uint8_t> cut(good.begin(), good.begin() + static_cast<std::ptrdiff_t>(n));
    auto v = classify(cut, q);
    CHECK((v == Verdict::drop || (n < 12 && v == Verdict::drop)));
  }
  // A compression pointer in the question (nothing before it can be a name).
  std::vector<std::uint8_t> ptr = {0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xC0, 12, 0, 1, 0, 1};
  CHECK(classify(ptr, q) == Verdict::drop);
  // A label longer than the packet.
  std::vector<std::uint8_t> longlabel = {0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 60, 'a', 0, 0, 1, 0, 1};
  CHECK(classify(longlabel, q) == Verdict::drop);
}

TEST_CASE("EDNS of the client is read: ECS never goes upstream") {
  Query q;
  auto wire = query({.edns = true, .udp = 4000, .do_bit = true, .options = test_wire::ecs_option()});
  REQUIRE(classify(wire, q) == Verdict::forward);
  CHECK(q.edns);
  CHECK(q.do_bit);
  CHECK(q.udp_size == 4000);
  std::array<std::uint8_t, 512> out{};
  auto n = build_upstream_query(wire, q, 0x4242, out);
  REQUIRE(n == q.question_end + 11);
  std::span<const std::uint8_t> up(out.data(), n);
  CHECK(read16(up, 0) == 0x4242);
  CHECK(read16(up, 10) == 1);                 // one additional: our OPT
  CHECK(read16(up, n - 2) == 0);              // with no options at all
  CHECK(read32(up, n - 6) == 0x8000u);        // DO copied
  CHECK(std::equal(wire.begin() + 12, wire.begin() + static_cast<std::ptrdiff_t>(q.question_end),
                   up.begin() + 12));
  // No byte sequence of the ECS option survives.
  auto ecs = test_wire::ecs_option();
  CHECK(std::search(up.begin(), up.end(), ecs.begin(), ecs.end()) == up.end());
}

TEST_CASE("the upstream question is the parsed name, lowercase: the client's case never leaves") {
  Query q;
  auto wire = query({.name = "WwW.eXaMpLe.TeSt", .type = 16});
  REQUIRE(classify(wire, q) == Verdict::forward);
  std::array<std::uint8_t, 512> out{};
  const std::size_t n = build_upstream_query(wire, q, 1, out);
  REQUIRE(n == q.question_end + 11);
  auto lower = query({.name = "www.example.test", .type = 16});
  // Same bytes as the same query written in lower case.
  CHECK(std::equal(lower.begin() + 12, lower.begin() + static_cast<std::ptrdiff_t>(q.question_end),
                   out.begin() + 12));
  CHECK_FALSE(std::equal(wire.begin() + 12, wire.begin() + static_cast<std::ptrdiff_t>(q.question_end),
                         out.begin() + 12));  // control: the client's own bytes differ
}

TEST_CASE("local answers echo ID, question and case") {
  Query q;
  auto wire = query({.name = "EvIl.test", .id = 0x1357, .edns = true});
  REQUIRE(classify(wire, q) == Verdict::deny);
  std::array<std::uint8_t, 512> out{};
  auto n = build_error_response(wire, q.question_end, q.edns, rcode::NXDOMAIN, out);
  REQUIRE(n == q.question_end + 11);
  std::span<const std::uint8_t> r(out.data(), n);
  CHECK(read16(r, 0) == 0x1357);
  CHECK((read16(r, 2) & 0x8000) != 0);
  CHECK((read16(r, 2) & 0x0100) != 0);  // RD echoed
  CHECK((read16(r, 2) & 0xF) == rcode::NXDOMAIN);
  CHECK(read16(r, 4) == 1);
  CHECK(std::equal(wire.begin() + 12, wire.begin() + static_cast<std::ptrdiff_t>(q.question_end), r.begin() + 12));
  // FORMERR: header only.
  auto bad = query({.qdcount = 2});
  REQUIRE(classify(bad, q) == Verdict::formerr);
  CHECK(build_error_response(bad, 0, false, rcode::FORMERR, out) == 12);
  CHECK(read16(out, 4) == 0);
}

TEST_CASE("extended DNS error (RFC 8914): the option's wire bytes in the OPT record") {
  Query q;
  auto wire = query({.name = "evil.test", .edns = true});
  REQUIRE(classify(wire, q) == Verdict::deny);
  std::array<std::uint8_t, 512> out{};
  const auto n = build_error_response(wire, q.question_end, q.edns, rcode::NXDOMAIN, out);
  const auto m = append_extended_error(out, n, 512, ede::kBlocked, "why");
  REQUIRE(m == n + 9);
  std::span<const std::uint8_t> r(out.data(), m);
  CHECK(read16(r, 10) == 1);                    // ARCOUNT: the one OPT
  const std::size_t opt = n - 11;
  CHECK(r[opt] == 0);                           // root owner
  CHECK(read16(r, opt + 1) == 41);              // TYPE OPT
  CHECK(read16(r, opt + 9) == 9);               // RDLENGTH: one option
  const std::vector<std::uint8_t> option(r.begin() + static_cast<std::ptrdiff_t>(n), r.end());
  CHECK(option == std::vector<std::uint8_t>{0, 15, 0, 5, 0, 15, 'w', 'h', 'y'});
  // It never pushes an answer past what the client can take, nor adds a
  // second option, nor goes where there is no OPT record.
  CHECK(append_extended_error(out, n, n + 8, ede::kBlocked, "why") == n);
  CHECK(append_extended_error(out, m, 512, ede::kBlocked, "why") == m);
  auto plain = query({.name = "evil.test"});
  REQUIRE(classify(plain, q) == Verdict::deny);
  const auto p = build_error_response(plain, q.question_end, q.edns, rcode::NXDOMAIN, out);
  CHECK(append_extended_error(out, p, 512, ede::kBlocked, "why") == p);
}

TEST_CASE("read_name: compression pointers and their abuse") {
  WireName name;
  std::size_t pos = 0;
  // Name at 12, then a pointer to it at 30.
  std::vector<std::uint8_t> msg(12, 0);
  test_wire::put_name(msg, "Foo.Test");
  msg.resize(30, 0);
  msg.insert(msg.end(), {3, 'w', 'w', 'w', 0xC0, 12});
  pos = 30;
  REQUIRE(read_name(msg, pos, name));
  CHECK(pos == 36);
  CHECK(name == wn("www.foo.test"));
  // Pointer to itself / forward / into the header / truncated pointer.
  std::vector<std::uint8_t> self(12, 0);
  self.insert(self.end(), {0xC0, 12});
  pos = 12;
  CHECK_FALSE(read_name(self, pos, name));
  std::vector<std::uint8_t> fwd(12, 0);
  fwd.insert(fwd.end(), {0xC0, 14, 0});
  pos = 12;
  CHECK_FALSE(read_name(fwd, pos, name));
  std::vector<std::uint8_t> hdr(12, 0);
  hdr.insert(hdr.end(), {1, 'a', 0xC0, 2});
  pos = 12;
  CHECK_FALSE(read_name(hdr, pos, name));
  std::vector<std::uint8_t> half(12, 0);
  half.insert(half.end(), {1, 'a', 0xC0});
  pos = 12;
  CHECK_FALSE(read_name(half, pos, name));
  // A two-pointer loop: 12 -> 16 is forward, so rejected; 16 -> 12 -> (label) -> 16 is caught.
  std::vector<std::uint8_t> loop(12, 0);
  loop.insert(loop.end(), {1, 'a', 0xC0, 16, 1, 'b', 0xC0, 12});
  pos = 16;
  CHECK_FALSE(read_name(loop, pos, name));
  // Over 255 bytes.
  std::vector<std::uint8_t> big(12, 0);
  for (int i = 0; i < 5; ++i) {
    big.push_back(63);
    big.insert(big.end(), 63, 'a');
  }
  big.push_back(0);
  pos = 12;
  CHECK_FALSE(read_name(big, pos, name));
  // Extended label types 0x40/0x80.
  std::vector<std::uint8_t> ext(12, 0);
  ext.insert(ext.end(), {0x41, 0});
  pos = 12;
  CHECK_FALSE(read_name(ext, pos, name));
}

TEST_CASE("response analysis follows the CNAME chain only") {
  ResponseAnalyzer analyzer;
  ResponseInfo info;
  auto wire = build_response_wire(
      "www.example.test", 1, 0,
      {"www.example.test. 300 IN CNAME a.cdn.test.", "a.cdn.test. 200 IN CNAME b.cdn.test.",
       "b.cdn.test. 100 IN A 198.51.100.1", "b.cdn.test. 50 IN A 198.51.100.2",
       "evil.test. 999 IN A 203.0.113.66",           // off-chain
       "a.cdn.test.evil. 999 IN A 203.0.113.67",     // off-chain, similar name
       "c.cdn.test. 300 IN CNAME d.cdn.test.",      // a second, unrelated chain
       "d.cdn.test. 300 IN A 203.0.113.68"},
      {"example.test. 600 IN NS ns.example.test."}, {"ns.example.test. 700 IN A 203.0.113.69"});
  REQUIRE(analyzer.analyze(wire, wn("www.example.test"), 1, info) == ResponseAnalyzer::Result::ok);
  CHECK(addrs(info) == std::vector<std::string>{"198.51.100.1/100", "198.51.100.2/50"});
  CHECK(info.rcode == 0);
  CHECK(info.min_ttl == 50);
  CHECK(info.ttl_offsets.size() == 10);
  // The question name is matched case-insensitively; a different one is a mismatch.
  CHECK(analyzer.analyze(wire, wn("WWW.EXAMPLE.TEST"), 1, info) == ResponseAnalyzer::Result::ok);
  CHECK(analyzer.analyze(wire, wn("other.example.test"), 1, info) == ResponseAnalyzer::Result::mismatch);
  CHECK(analyzer.analyze(wire, wn("www.example.test"), 28, info) == ResponseAnalyzer::Result::mismatch);
}

TEST_CASE("response analysis: records in any order, AAAA, loops") {
  ResponseAnalyzer analyzer;
  ResponseInfo info;
  auto reordered = build_response_wire(
      "x.cdn.test", 28, 0,
      {"y.cdn.test. 60 IN AAAA 2001:db8::2", "x.cdn.test. 60 IN CNAME y.cdn.test."});
  REQUIRE(analyzer.analyze(reordered, wn("x.cdn.test"), 28, info) == ResponseAnalyzer::Result::ok);
  CHECK(addrs(info) == std::vector<std::string>{"2001:db8::2/60"});
  auto loop = build_response_wire(
      "x.cdn.test", 1, 0,
      {"x.cdn.test. 60 IN CNAME y.cdn.test.", "y.cdn.test. 60 IN CNAME x.cdn.test.",
       "y.cdn.test. 60 IN A 198.51.100.9"});
  REQUIRE(analyzer.analyze(loop, wn("x.cdn.test"), 1, info) == ResponseAnalyzer::Result::ok);
  CHECK(addrs(info) == std::vector<std::string>{"198.51.100.9/60"});
  auto nx = build_response_wire("x.cdn.test", 1, 3, {}, {"cdn.test. 30 IN SOA ns.cdn.test. h.cdn.test. 1 2 3 4 5"});
  REQUIRE(analyzer.analyze(nx, wn("x.cdn.test"), 1, info) == ResponseAnalyzer::Result::ok);
  CHECK(info.rcode == 3);
  CHECK(info.addresses.empty());
  CHECK(info.min_ttl == 30);
}

TEST_CASE("HTTPS/SVCB hints on the chain are collected like A/AAAA") {
  ResponseAnalyzer analyzer;
  ResponseInfo info;
  auto wire = build_response_wire(
      "svc.cdn.test", 65, 0,
      {"svc.cdn.test. 300 IN HTTPS 1 . alpn=h2 ipv4hint=198.51.100.30,198.51.100.31 ipv6hint=2001:db8::30",
       "other.test. 300 IN HTTPS 1 . ipv4hint=203.0.113.70"});
  REQUIRE(analyzer.analyze(wire, wn("svc.cdn.test"), 65, info) == ResponseAnalyzer::Result::ok);
  CHECK(addrs(info) == std::vector<std::string>{"198.51.100.30/300", "198.51.100.31/300", "2001:db8::30/300"});
}

TEST_CASE("truncated and garbage responses never crash and never yield addresses") {
  ResponseAnalyzer analyzer;
  ResponseInfo info;
  auto wire = build_response_wire("www.example.test", 1, 0,
                                  {"www.example.test. 300 IN CNAME a.cdn.test.",
                                   "a.cdn.test. 100 IN A 198.51.100.1"});
  for (std::size_t n = 0; n < wire.size(); ++n) {
    CAPTURE(n);
    std::vector<std::uint8_t> cut(wire.begin(), wire.begin() + static_cast<std::ptrdiff_t>(n));
    CHECK(analyzer.analyze(cut, wn("www.example.test"), 1, info) != ResponseAnalyzer::Result::ok);
  }
  // A with a bad RDATA length is malformed, not silently skipped.
  auto bad = wire;
  bad[bad.size() - 5] = 5;  // RDLENGTH low byte of the last record
  bad.push_back(0);
  CHECK(analyzer.analyze(bad, wn("www.example.test"), 1, info) == ResponseAnalyzer::Result::malformed);
  std::mt19937 rng(1234);
  for (int i = 0; i < 2000; ++i) {
    std::vector<std::uint8_t> junk(rng() % 200);
    for (auto& b : junk) b = static_cast<std::uint8_t>(rng());
    (void)analyzer.analyze(junk, wn("www.example.test"), 1, info);
    // Bit flips in a valid answer.
    auto flipped = wire;
    flipped[rng() % flipped.size()] ^= static_cast<std::uint8_t>(1u << (rng() % 8));
    // Whatever a flipped bit does, no address may come from outside the packet.
    if (analyzer.analyze(flipped, wn("www.example.test"), 1, info) == ResponseAnalyzer::Result::ok)
      for (const auto& a : info.addresses)
        CHECK(std::search(flipped.begin(), flipped.end(), a.addr.bytes.begin(),
                          a.addr.bytes.begin() + (a.addr.v6 ? 16 : 4)) != flipped.end());
  }
}

TEST_CASE("TTL rewrite and client adaptation") {
  ResponseAnalyzer analyzer;
  ResponseInfo info;
  auto wire = build_response_wire("www.example.test", 1, 0,
                                  {"www.example.test. 7200 IN A 198.51.100.1",
                                   "www.example.test. 40 IN A 198.51.100.2"});
  // ldns adds no OPT here; append one by hand to test stripping.
  wire[11] = 1;
  wire.insert(wire.end(), {0, 0, 41, 0x04, 0xD0, 0, 0, 0, 0, 0, 0});
  REQUIRE(analyzer.analyze(wire, wn("www.example.test"), 1, info) == ResponseAnalyzer::Result::ok);
  CHECK(info.opt_offset == wire.size() - 11);
  rewrite_ttls(wire, info, 3600, 0);
  CHECK(read32(wire, info.ttl_offsets[0]) == 3600);
  CHECK(read32(wire, info.ttl_offsets[1]) == 40);
  rewrite_ttls(wire, info, 3600, 45);
  CHECK(read32(wire, info.ttl_offsets[0]) == 3555);
  CHECK(read32(wire, info.ttl_offsets[1]) == 0);

  Query q;
  auto client = query({.name = "wWw.ExAmple.test", .id = 0x0A0B});
  REQUIRE(classify_query(client, AllowList({"www.example.test"}), q) == Verdict::forward);
  auto size = adapt_for_client(wire, wire.size(), info, client, q, 512);
  CHECK(size == wire.size() - 11);  // OPT dropped: the client did not use EDNS
  CHECK(read16(wire, 0) == 0x0A0B);
  CHECK(read16(wire, 10) == 0);
  CHECK(std::equal(client.begin() + 12, client.begin() + static_cast<std::ptrdiff_t>(q.question_end),
                   wire.begin() + 12));
  // Too big for the client's UDP limit: TC=1 with the question only.
  REQUIRE(analyzer.analyze(std::span(wire.data(), size), wn("www.example.test"), 1, info) ==
          ResponseAnalyzer::Result::ok);
  auto tc = adapt_for_client(wire, size, info, client, q, 40);
  CHECK(tc == q.question_end);
  CHECK((read16(wire, 2) & 0x0200) != 0);
  CHECK(read16(wire, 6) == 0);
}
