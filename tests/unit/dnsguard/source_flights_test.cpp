// Fair shares of the upstream lookups (dnsguard/source_flights.hpp): one
// socket's flood of misses cannot stand in front of another socket's miss.
#include <doctest/doctest.h>

#include <vector>

#include "dnsguard/source_flights.hpp"

namespace dg = cagent::dnsguard;

namespace {

dg::SourceKey source(std::uint8_t last, std::uint16_t port) {
  dg::SourceKey k;
  k.address = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, 0, last};
  k.port = port;
  return k;
}

}  // namespace

TEST_CASE("source flights: a socket's misses beyond its share wait, in order, and start as its own finish") {
  dg::SourceFlights f(2, 3);
  const auto flood = source(1, 4000);
  CHECK(f.admit(flood, 10) == dg::SourceFlights::Admission::start);
  CHECK(f.admit(flood, 11) == dg::SourceFlights::Admission::start);
  CHECK(f.admit(flood, 12) == dg::SourceFlights::Admission::queued);
  CHECK(f.admit(flood, 13) == dg::SourceFlights::Admission::queued);
  CHECK(f.queued() == 2);
  CHECK(f.waited() == 2);
  // First in, first started: a queued query is not overtaken by a later one.
  CHECK(f.finished(flood) == std::optional<std::uint32_t>(12));
  CHECK(f.finished(flood) == std::optional<std::uint32_t>(13));
  CHECK(f.queued() == 0);
  // Both slots now belong to 12 and 13; their ends free them, and the
  // source is forgotten once nothing of it remains.
  CHECK_FALSE(f.finished(flood).has_value());
  CHECK(f.sources() == 1);
  CHECK_FALSE(f.finished(flood).has_value());
  CHECK(f.sources() == 0);
}

TEST_CASE("source flights: another socket starts at once while a flood waits (and the control: the flood's own does not)") {
  dg::SourceFlights f(2, 100);
  const auto flood = source(1, 4000);
  for (std::uint32_t t = 0; t < 50; ++t) f.admit(flood, t);
  // The control: the same socket's next miss waits behind its own 48.
  CHECK(f.admit(flood, 50) == dg::SourceFlights::Admission::queued);
  // Another process: same address, its own port — starts now.
  CHECK(f.admit(source(1, 4001), 99) == dg::SourceFlights::Admission::start);
  // And another address with the flood's port number.
  CHECK(f.admit(source(2, 4000), 98) == dg::SourceFlights::Admission::start);
  CHECK(f.sources() == 3);
}

TEST_CASE("source flights: a full queue refuses, and the refusal holds no slot") {
  dg::SourceFlights f(1, 2);
  const auto s = source(1, 53000);
  CHECK(f.admit(s, 1) == dg::SourceFlights::Admission::start);
  CHECK(f.admit(s, 2) == dg::SourceFlights::Admission::queued);
  CHECK(f.admit(s, 3) == dg::SourceFlights::Admission::queued);
  CHECK(f.admit(s, 4) == dg::SourceFlights::Admission::refused);
  CHECK(f.queued() == 2);
  CHECK(f.finished(s) == std::optional<std::uint32_t>(2));
  // Room again: the next one queues behind 3.
  CHECK(f.admit(s, 5) == dg::SourceFlights::Admission::queued);
  std::vector<std::uint32_t> order;
  while (auto next = f.finished(s)) order.push_back(*next);
  CHECK(order == std::vector<std::uint32_t>{3, 5});
}

TEST_CASE("source flights: an end for a source with nothing in flight changes nothing") {
  dg::SourceFlights f(1, 1);
  CHECK_FALSE(f.finished(source(9, 9)).has_value());
  CHECK(f.sources() == 0);
  CHECK(f.admit(source(9, 9), 1) == dg::SourceFlights::Admission::start);
  CHECK(f.admit(source(9, 9), 2) == dg::SourceFlights::Admission::queued);
}
