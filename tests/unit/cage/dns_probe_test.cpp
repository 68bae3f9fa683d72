#include <doctest/doctest.h>

#include "launcher/cage/dns_probe.hpp"

using namespace cagent::cage;

TEST_CASE("the probe is one well-formed query of class CHAOS under .invalid") {
  const auto query = build_probe_query(0xbeef);
  REQUIRE(query.size() == 12 + 1 + 12 + 1 + 7 + 1 + 4);
  CHECK(query[0] == 0xbe);
  CHECK(query[1] == 0xef);
  CHECK(query[2] == 0x01);          // RD, QR=0, opcode QUERY
  CHECK(query[5] == 1);             // QDCOUNT
  CHECK(query[12] == 12);           // "cagent-probe"
  CHECK(query[25] == 7);            // "invalid"
  CHECK(query[33] == 0);            // root
  CHECK(query[35] == 1);            // QTYPE A
  CHECK(query[37] == 3);            // QCLASS CH: dnsguard answers REFUSED and records no denial
}

TEST_CASE("is_probe_answer wants a response with our ID") {
  auto answer = build_probe_query(7);
  CHECK_FALSE(is_probe_answer(answer, 7));   // a query is not an answer
  answer[2] |= 0x80;
  answer[3] = 0x05;                          // REFUSED still proves liveness
  CHECK(is_probe_answer(answer, 7));
  CHECK_FALSE(is_probe_answer(answer, 8));
  CHECK_FALSE(is_probe_answer(std::span(answer).first(11), 7));
}
