// The descriptor budget (dnsguard/fd_budget.hpp): how RLIMIT_NOFILE is
// shared between what must keep working and what a flood can fill.
#include <doctest/doctest.h>

#include "dnsguard/fd_budget.hpp"

namespace dg = cagent::dnsguard;

namespace {

dg::DescriptorNeeds cage_needs(bool gate) {
  dg::DescriptorNeeds n;
  n.listen_addresses = 2;  // 127.0.0.1:53 and [::1]:53
  n.gate_listeners = gate ? 2 : 0;
  return n;
}

}  // namespace

TEST_CASE("descriptor budget: the cage's 20 000 descriptors") {
  const dg::DescriptorBudget b = dg::plan_descriptors(20000, cage_needs(true));
  CHECK(b.reserved == dg::kReservedDescriptors + dg::kControlSessions + 4 + 2);
  CHECK(b.tcp_clients == 128);
  CHECK(b.upstream_queries == 4096);
  CHECK_FALSE(b.reduced);
  // (20000 - 78 - (2·128 + 4096 + 1)) / 6: what is left after DNS at full size.
  CHECK(b.gate_connections == (20000 - 78 - 4353) / 6);
  CHECK(b.planned() <= 20000);
  // The failure the budget prevents: 3 300 relays (6 descriptors each) do not fit.
  CHECK(b.gate_connections < 3300);
}

TEST_CASE("descriptor budget: a large limit stops at the gate's own maximum") {
  const dg::DescriptorBudget b = dg::plan_descriptors(1048576, cage_needs(true));
  CHECK(b.gate_connections == 4096);
  CHECK(b.tcp_clients == 128);
  CHECK(b.upstream_queries == 4096);
  CHECK_FALSE(b.reduced);
}

TEST_CASE("descriptor budget: a small limit scales DNS down and leaves the gate the other half") {
  const dg::DescriptorBudget b = dg::plan_descriptors(1024, cage_needs(true));
  CHECK(b.reduced);
  CHECK(b.planned() <= 1024);
  CHECK(b.tcp_clients >= 1);
  CHECK(b.tcp_clients < 128);
  CHECK(b.upstream_queries >= 1);
  const std::size_t dns = 2 * b.tcp_clients + b.upstream_queries + 1;
  const std::size_t available = 1024 - b.reserved;
  CHECK(dns <= available / 2 + 1);
  CHECK(b.gate_connections == (available - dns) / dg::kDescriptorsPerRelay);
  CHECK(b.gate_connections > 0);
}

TEST_CASE("descriptor budget: without a gate, DNS takes what there is") {
  const dg::DescriptorBudget full = dg::plan_descriptors(20000, cage_needs(false));
  CHECK(full.gate_connections == 0);
  CHECK(full.tcp_clients == 128);
  CHECK(full.upstream_queries == 4096);
  const dg::DescriptorBudget small = dg::plan_descriptors(1024, cage_needs(false));
  CHECK(small.reduced);
  CHECK(small.gate_connections == 0);
  CHECK(small.planned() == 1024);  // every descriptor past the reserve goes to DNS
}

TEST_CASE("descriptor budget: a limit below the reserve still names one of each, and no gate") {
  const dg::DescriptorBudget b = dg::plan_descriptors(50, cage_needs(true));
  CHECK(b.reduced);
  CHECK(b.tcp_clients == 1);
  CHECK(b.upstream_queries == 1);
  CHECK(b.gate_connections == 0);
}

TEST_CASE("descriptor budget: never more than the limit, and more limit never means less gate") {
  std::size_t previous_gate = 0;
  for (std::uint64_t limit = 200; limit <= 200000; limit += 97) {
    CAPTURE(limit);
    const dg::DescriptorBudget b = dg::plan_descriptors(limit, cage_needs(true));
    REQUIRE(b.planned() <= limit);
    REQUIRE(b.gate_connections >= previous_gate);
    previous_gate = b.gate_connections;
  }
}

TEST_CASE("descriptor budget: the start-up line names every part") {
  const std::string line = dg::describe(dg::plan_descriptors(20000, cage_needs(true)));
  CHECK(line == "descriptors: limit 20000, reserved 78, DNS over TCP 128, upstream queries 4096, gate 2594 "
                "connections (19995 planned)");
  CHECK(dg::describe(dg::plan_descriptors(1024, cage_needs(true))).find("below its full size") != std::string::npos);
}
