#include <doctest/doctest.h>

#include "bench/dns_wire.hpp"

#include <array>
#include <string>
#include <vector>

using namespace cagent::bench;

namespace {
std::vector<std::uint8_t> bytes(std::initializer_list<int> list) {
  std::vector<std::uint8_t> v;
  for (int b : list) v.push_back(static_cast<std::uint8_t>(b));
  return v;
}
}  // namespace

TEST_CASE("encode_name: labels, trailing dot, root, limits") {
  std::array<std::uint8_t, 300> out{};
  CHECK(encode_name("a.bc", out) == 6);
  CHECK(std::vector<std::uint8_t>(out.begin(), out.begin() + 6) == bytes({1, 'a', 2, 'b', 'c', 0}));
  CHECK(encode_name("a.bc.", out) == 6);
  CHECK(encode_name(".", out) == 1);
  CHECK(out[0] == 0);
  CHECK(encode_name("", out) == 1);
  CHECK(encode_name("a..b", out) == 0);
  CHECK(encode_name(".a", out) == 0);
  CHECK(encode_name(std::string(63, 'x') + ".y", out) == 67);
  CHECK(encode_name(std::string(64, 'x') + ".y", out) == 0);
  // 4 labels of 63 = 256 bytes on the wire with the root: too long.
  const std::string l(63, 'x');
  CHECK(encode_name(l + "." + l + "." + l + "." + std::string(61, 'x'), out) == 255);
  CHECK(encode_name(l + "." + l + "." + l + "." + std::string(62, 'x'), out) == 0);
  std::array<std::uint8_t, 5> small{};
  CHECK(encode_name("a.bc", small) == 0);
}

TEST_CASE("build_query produces a query parse_query accepts") {
  std::array<std::uint8_t, 512> buf{};
  const auto len = build_query(0xbeef, "www.Example.com", kTypeAAAA, buf);
  REQUIRE(len == 12 + 17 + 4);
  const auto q = parse_query(std::span<const std::uint8_t>(buf.data(), len));
  REQUIRE(q);
  CHECK(q->id == 0xbeef);
  CHECK(q->flags == 0x0100);
  CHECK(q->question.qtype == kTypeAAAA);
  CHECK(q->question.qclass == kClassIN);
  CHECK(q->question.name.size() == 17);
  CHECK(q->question.end == len);
  CHECK_FALSE(q->has_opt);
  std::array<std::uint8_t, 64> other{};
  const auto other_len = encode_name("WWW.example.COM", other);
  CHECK(wire_names_equal(q->question.name, std::span<const std::uint8_t>(other.data(), other_len)));
  const auto diff_len = encode_name("www.example.org", other);
  CHECK_FALSE(wire_names_equal(q->question.name, std::span<const std::uint8_t>(other.data(), diff_len)));
}

TEST_CASE("parse_query rejects what the fake upstream must not answer") {
  std::array<std::uint8_t, 512> buf{};
  const auto len = build_query(1, "a.test", kTypeA, buf);
  std::vector<std::uint8_t> m(buf.begin(), buf.begin() + static_cast<long>(len));
  CHECK(parse_query(m));
  for (std::size_t cut = 0; cut < m.size(); ++cut)  // every truncation
    CHECK_FALSE(parse_query(std::span<const std::uint8_t>(m.data(), cut)));
  auto response = m;
  response[2] |= 0x80;
  CHECK_FALSE(parse_query(response));
  auto notify = m;
  notify[2] = static_cast<std::uint8_t>(notify[2] | (4 << 3));  // opcode NOTIFY
  CHECK_FALSE(parse_query(notify));
  auto two_questions = m;
  two_questions[5] = 2;
  CHECK_FALSE(parse_query(two_questions));
  auto compressed = m;
  compressed[12] = 0xc0;  // a pointer where the question name starts
  CHECK_FALSE(parse_query(compressed));
  auto phantom_additional = m;
  phantom_additional[11] = 1;  // ARCOUNT 1 but nothing follows
  CHECK_FALSE(parse_query(phantom_additional));
}

TEST_CASE("parse_query reads the EDNS payload size") {
  std::array<std::uint8_t, 512> buf{};
  auto len = build_query(7, "a.test", kTypeA, buf);
  buf[11] = 1;  // ARCOUNT
  const auto opt = bytes({0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0});  // root, OPT, 1232
  std::copy(opt.begin(), opt.end(), buf.begin() + static_cast<long>(len));
  len += opt.size();
  const auto q = parse_query(std::span<const std::uint8_t>(buf.data(), len));
  REQUIRE(q);
  CHECK(q->has_opt);
  CHECK(q->udp_size == 1232);
}

TEST_CASE("parse_response: compressed answers, A and AAAA, bounds") {
  // Response for a.test A: two answers, owner names compressed to offset 12.
  auto m = bytes({0x12, 0x34, 0x81, 0x80, 0, 1, 0, 3, 0, 0, 0, 0,
                  1, 'a', 4, 't', 'e', 's', 't', 0, 0, 1, 0, 1,
                  0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 198, 51, 100, 7,
                  0xc0, 12, 0, 5, 0, 1, 0, 0, 0, 60, 0, 2, 0xc0, 12,  // a CNAME: skipped
                  0xc0, 12, 0, 28, 0, 1, 0, 0, 0, 60, 0, 16,
                  0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9});
  const auto r = parse_response(m);
  REQUIRE(r);
  CHECK(r->id == 0x1234);
  CHECK(r->rcode == Rcode::noerror);
  CHECK(r->answer_count == 3);
  REQUIRE(r->address_count == 2);
  CHECK_FALSE(r->addresses[0].v6);
  CHECK(r->addresses[0].bytes[0] == 198);
  CHECK(r->addresses[0].bytes[3] == 7);
  CHECK(r->addresses[1].v6);
  CHECK(r->addresses[1].bytes[15] == 9);
  CHECK(r->question.qtype == kTypeA);
  CHECK(r->question.name.size() == 8);

  for (std::size_t cut = 0; cut < m.size(); ++cut)
    CHECK_FALSE(parse_response(std::span<const std::uint8_t>(m.data(), cut)));

  auto wrong_rdlen = m;
  wrong_rdlen[35] = 200;  // first answer's RDLENGTH runs past the end
  CHECK_FALSE(parse_response(wrong_rdlen));
  auto query = m;
  query[2] &= 0x7f;
  CHECK_FALSE(parse_response(query));
}

TEST_CASE("parse_response: rcode and an empty question section") {
  auto m = bytes({0, 9, 0x81, 0x83, 0, 0, 0, 0, 0, 0, 0, 0});
  const auto r = parse_response(m);
  REQUIRE(r);
  CHECK(r->rcode == Rcode::nxdomain);
  CHECK(r->question.name.empty());
  CHECK(r->address_count == 0);
}

TEST_CASE("parse_response keeps at most kMaxAnswerAddresses") {
  std::vector<std::uint8_t> m = bytes({0, 1, 0x81, 0x80, 0, 0, 0, 40, 0, 0, 0, 0});
  for (int i = 0; i < 40; ++i) {
    const auto rr = bytes({0, 0, 1, 0, 1, 0, 0, 0, 1, 0, 4, 192, 0, 2, i});
    m.insert(m.end(), rr.begin(), rr.end());
  }
  const auto r = parse_response(m);
  REQUIRE(r);
  CHECK(r->address_count == kMaxAnswerAddresses);
}
