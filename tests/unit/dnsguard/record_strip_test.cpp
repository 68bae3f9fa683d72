// strip_records(): removing records from a message keeps every kept name
// intact, whatever the compression pointers pointed at.

#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <string>
#include <vector>

#include "dnsguard/message.hpp"
#include "dnsguard/record_strip.hpp"
#include "tests/unit/dnsguard/wire_helpers.hpp"

using namespace cagent::dnsguard;
using test_wire::put16;
using test_wire::put32;
using test_wire::put_name;

namespace {

std::string text(const WireName& n) {
  std::array<char, 256> buf{};
  std::size_t len = 0;
  REQUIRE(name_to_text(n, buf, len));
  return std::string(buf.data(), len);
}

// "owner type rdata" per record, names decoded through read_name() (which
// checks every pointer), other RDATA as its length.
std::vector<std::string> decode(std::span<const std::uint8_t> m) {
  std::vector<std::string> out;
  std::size_t pos = kHeaderSize;
  WireName n;
  REQUIRE(read_name(m, pos, n));
  pos += 4;
  const std::size_t total = std::size_t{read16(m, 6)} + read16(m, 8) + read16(m, 10);
  for (std::size_t i = 0; i < total; ++i) {
    REQUIRE(read_name(m, pos, n));
    REQUIRE(pos + 10 <= m.size());
    const std::uint16_t type = read16(m, pos);
    const std::size_t rdlen = read16(m, pos + 8);
    const std::size_t rdata = pos + 10;
    REQUIRE(rdata + rdlen <= m.size());
    std::string line = text(n) + " " + std::to_string(type) + " ";
    if (type == rrtype::CNAME || type == 2 /* NS */) {
      std::size_t p = rdata;
      WireName target;
      REQUIRE(read_name(m, p, target));
      CHECK(p == rdata + rdlen);
      line += text(target);
    } else if (type == 15 /* MX */) {
      std::size_t p = rdata + 2;
      WireName target;
      REQUIRE(read_name(m, p, target));
      CHECK(p == rdata + rdlen);
      line += std::to_string(read16(m, rdata)) + " " + text(target);
    } else {
      line += "len" + std::to_string(rdlen);
    }
    out.push_back(line);
    pos = rdata + rdlen;
  }
  CHECK(pos == m.size());
  return out;
}

void header(std::vector<std::uint8_t>& b, unsigned an, unsigned ns, unsigned ar) {
  put16(b, 0x1234);
  put16(b, 0x8180);
  put16(b, 1);
  put16(b, an);
  put16(b, ns);
  put16(b, ar);
}
void rr_head(std::vector<std::uint8_t>& b, unsigned type, std::uint32_t ttl, unsigned rdlen) {
  put16(b, type);
  put16(b, 1);
  put32(b, ttl);
  put16(b, rdlen);
}
void pointer(std::vector<std::uint8_t>& b, std::size_t to) { put16(b, 0xC000u | static_cast<unsigned>(to)); }

}  // namespace

TEST_CASE("strip_records: pointers into removed records are expanded, later ones re-targeted") {
  std::vector<std::uint8_t> m;
  header(m, 3, 0, 2);
  put_name(m, "www.example.test");  // question at 12
  put16(m, 1);
  put16(m, 1);
  // 1: evil.example.test A (off-chain; removed). Its owner name is written
  // out, and a later kept record points into it.
  const std::size_t evil = m.size();
  m.push_back(4);
  m.insert(m.end(), {'e', 'v', 'i', 'l'});
  pointer(m, 16);  // -> example.test of the question
  rr_head(m, 1, 300, 4);
  m.insert(m.end(), {203, 0, 113, 5});
  const std::size_t evil_end = m.size();
  // 2: www.example.test CNAME mail.evil.example.test — the target's suffix
  // points into the removed record's owner.
  const std::size_t cname = m.size();
  pointer(m, 12);
  rr_head(m, 5, 300, 7);
  m.push_back(4);
  m.insert(m.end(), {'m', 'a', 'i', 'l'});
  pointer(m, evil);
  // 3: mail.evil.example.test MX 10 mail.evil.example.test (owner and
  // target point into the CNAME's RDATA, which moves).
  const std::size_t mx = m.size();
  pointer(m, cname + 12);
  rr_head(m, 15, 300, 4);
  put16(m, 10);
  pointer(m, cname + 12);
  // additional: glue A for mail (removed) and an OPT record.
  const std::size_t glue = m.size();
  pointer(m, cname + 12);
  rr_head(m, 1, 300, 4);
  m.insert(m.end(), {198, 51, 100, 9});
  const std::size_t glue_end = m.size();
  m.push_back(0);
  rr_head(m, rrtype::OPT, 0, 0);

  const std::vector<std::string> before = decode(m);
  REQUIRE(before.size() == 5);
  const RrRange drop[] = {{static_cast<std::uint16_t>(evil), static_cast<std::uint16_t>(evil_end)},
                          {static_cast<std::uint16_t>(glue), static_cast<std::uint16_t>(glue_end)}};
  std::vector<std::uint8_t> out(65535);
  const std::size_t n = strip_records(m, drop, out);
  REQUIRE(n > 0);
  REQUIRE(n < m.size());
  out.resize(n);
  CHECK(read16(out, 6) == 2);
  CHECK(read16(out, 8) == 0);
  CHECK(read16(out, 10) == 1);
  CHECK(decode(out) == std::vector<std::string>{before[1], before[2], before[4]});
  CHECK(before[1] == "www.example.test 5 mail.evil.example.test");
  CHECK(before[2] == "mail.evil.example.test 15 10 mail.evil.example.test");
  (void)mx;
}

TEST_CASE("strip_records: nothing to drop copies the message: bad input and small buffers give 0") {
  std::vector<std::uint8_t> m;
  header(m, 1, 0, 0);
  put_name(m, "a.test");
  put16(m, 1);
  put16(m, 1);
  const std::size_t rr = m.size();
  pointer(m, 12);
  rr_head(m, 1, 60, 4);
  m.insert(m.end(), {192, 0, 2, 1});
  std::vector<std::uint8_t> out(512);
  CHECK(strip_records(m, {}, out) == m.size());
  CHECK(std::equal(m.begin(), m.end(), out.begin()));
  // A range that is not a whole record: refused.
  const RrRange half[] = {{static_cast<std::uint16_t>(rr), static_cast<std::uint16_t>(rr + 3)}};
  CHECK(strip_records(m, half, out) == 0);
  // Output too small.
  std::vector<std::uint8_t> tiny(m.size() - 1);
  CHECK(strip_records(m, {}, tiny) == 0);
  // Every truncation of the input: never a crash, never a partial message.
  for (std::size_t cut = 0; cut < m.size(); ++cut) {
    CAPTURE(cut);
    CHECK(strip_records(std::span(m).first(cut), {}, out) == 0);
  }
  // A pointer loop / forward pointer in a kept name: refused.
  std::vector<std::uint8_t> bad = m;
  bad[rr] = 0xC0;
  bad[rr + 1] = static_cast<std::uint8_t>(rr);
  CHECK(strip_records(bad, {}, out) == 0);
}

TEST_CASE("strip_records: drop_ech removes only the ech parameter of SVCB/HTTPS records") {
  std::vector<std::uint8_t> m;
  header(m, 2, 0, 0);
  put_name(m, "svc.test");
  put16(m, rrtype::HTTPS);
  put16(m, 1);
  // HTTPS 1 . alpn=h2 ech=<8 bytes> ipv4hint=192.0.2.7
  std::vector<std::uint8_t> rdata;
  put16(rdata, 1);
  rdata.push_back(0);  // target "."
  put16(rdata, 1);     // alpn
  put16(rdata, 3);
  rdata.insert(rdata.end(), {2, 'h', '2'});
  put16(rdata, kSvcParamEch);
  put16(rdata, 8);
  rdata.insert(rdata.end(), 8, 0xEC);
  put16(rdata, 4);  // ipv4hint
  put16(rdata, 4);
  rdata.insert(rdata.end(), {192, 0, 2, 7});
  pointer(m, 12);
  rr_head(m, rrtype::HTTPS, 300, static_cast<unsigned>(rdata.size()));
  m.insert(m.end(), rdata.begin(), rdata.end());
  // A record after it (pointer to the question): still intact after the shift.
  pointer(m, 12);
  rr_head(m, 1, 300, 4);
  m.insert(m.end(), {192, 0, 2, 8});

  std::vector<std::uint8_t> out(512);
  // Without the flag: unchanged.
  CHECK(strip_records(m, {}, out) == m.size());
  const std::size_t n = strip_records(m, {}, out, true);
  REQUIRE(n == m.size() - 12);
  out.resize(n);
  const auto lines = decode(out);
  REQUIRE(lines.size() == 2);
  CHECK(lines[0] == "svc.test 65 len" + std::to_string(rdata.size() - 12));
  CHECK(lines[1] == "svc.test 1 len4");
  // The kept parameters, byte for byte: alpn then ipv4hint.
  const std::vector<std::uint8_t> kept(out.end() - 16 - 23, out.end() - 16);
  const std::vector<std::uint8_t> want = {0, 1, 0, 0, 1, 0, 3, 2, 'h', '2', 0, 4, 0, 4, 192, 0, 2, 7};
  CHECK(std::vector<std::uint8_t>(kept.end() - 18, kept.end()) == want);
  const std::array<std::uint8_t, 2> ech_bytes = {0xEC, 0xEC};
  CHECK(std::search(out.begin(), out.end(), ech_bytes.begin(), ech_bytes.end()) == out.end());
}
