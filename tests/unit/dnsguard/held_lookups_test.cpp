#include <doctest/doctest.h>

#include <string>

#include "dnsguard/held_lookups.hpp"

using cagent::dnsguard::HeldLookups;
using Outcome = HeldLookups::Outcome;

TEST_CASE("held lookups: the first and the last of a name, and the approver's decision wakes each one") {
  HeldLookups held;
  int woken = 0;
  auto a1 = held.add("a.test", [&] { ++woken; });
  auto a2 = held.add("a.test", [&] { ++woken; });
  auto b = held.add("b.test", [&] { ++woken; });
  REQUIRE(a1);
  REQUIRE(a2);
  REQUIRE(b);
  CHECK(a1->first_of_name);
  CHECK_FALSE(a2->first_of_name);  // one event per name for the watchers
  CHECK(held.pending_names() == std::vector<std::string>{"a.test", "b.test"});

  CHECK(held.decide([](std::string_view n) { return n == "a.test"; }, Outcome::allowed) ==
        std::vector<std::string>{"a.test"});
  CHECK(woken == 2);
  CHECK(held.pending_names() == std::vector<std::string>{"b.test"});
  // Deciding again changes nothing (a decided lookup waits for its waiter).
  CHECK(held.decide([](std::string_view) { return true; }, Outcome::refused) == std::vector<std::string>{"b.test"});
  CHECK(woken == 3);

  auto r = held.remove(a1->handle);
  CHECK(r.outcome == Outcome::allowed);
  r = held.remove(a2->handle);
  CHECK(r.outcome == Outcome::allowed);
  CHECK(held.remove(b->handle).outcome == Outcome::refused);
  CHECK(held.size() == 0);
}

TEST_CASE("held lookups: nobody decided reads as timed out, the last of its name says so") {
  HeldLookups held;
  auto a1 = held.add("a.test", {});
  auto a2 = held.add("a.test", {});
  REQUIRE(a1);
  REQUIRE(a2);
  auto r = held.remove(a1->handle);
  CHECK(r.outcome == Outcome::timed_out);
  CHECK_FALSE(r.last_of_name);
  r = held.remove(a2->handle);
  CHECK(r.last_of_name);
  // A new lookup of the name after the others were decided is news again.
  auto a3 = held.add("a.test", {});
  REQUIRE(a3);
  CHECK(a3->first_of_name);
}

TEST_CASE("held lookups: a flood is bounded by lookups and by distinct names") {
  HeldLookups held;
  std::size_t taken = 0;
  for (int i = 0; i < 1000; ++i) taken += held.add("n" + std::to_string(i) + ".test", {}).has_value();
  CHECK(taken == HeldLookups::kMaxNames);
  // More lookups of a name already held still fit, up to the lookups' bound.
  std::size_t more = 0;
  for (int i = 0; i < 1000; ++i) more += held.add("n0.test", {}).has_value();
  CHECK(held.size() == HeldLookups::kMaxLookups);
  CHECK(more == HeldLookups::kMaxLookups - HeldLookups::kMaxNames);
}
