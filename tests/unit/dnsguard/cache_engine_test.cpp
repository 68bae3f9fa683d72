#include <doctest/doctest.h>

#include <chrono>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "dnsguard/engine.hpp"
#include "tests/unit/dnsguard/ldns_fixtures.hpp"
#include "dnsguard/ldns_message.hpp"
#include "tests/unit/dnsguard/wire_helpers.hpp"

using namespace cagent::dnsguard;
using namespace std::chrono_literals;
using Clock = AnswerCache::Clock;

namespace {
WireName wn(std::string_view name) { return *wire_name(name); }

// Records every allow() call; can be told to fail.
class RecordingSink : public AnswerSink {
 public:
  bool allow(std::span<const AllowedAddress> addresses) noexcept override {
    calls.emplace_back(addresses.begin(), addresses.end());
    return succeed;
  }
  bool evict(std::span<const IpAddress> addresses) noexcept override {
    for (const auto& a : addresses) evicted.push_back(to_string(a));
    return succeed;
  }
  std::vector<std::vector<AllowedAddress>> calls;
  std::vector<std::string> evicted;
  bool succeed = true;
};

std::string show(const AllowedAddress& a) {
  IpAddress ip{a.v6, a.bytes};
  return to_string(ip) + "@" + std::to_string(a.timeout_s);
}
std::vector<std::string> show(const std::vector<AllowedAddress>& v) {
  std::vector<std::string> out;
  for (const auto& a : v) out.push_back(show(a));
  return out;
}
}  // namespace

TEST_CASE("cache: expiry, countdown rounding up, LRU, disabled") {
  AnswerCache cache(2);
  auto t0 = Clock::time_point{} + 1000s;
  std::vector<std::uint8_t> a{1}, b{2}, c{3};
  cache.store(wn("a.test"), 1, a, 10, t0);
  auto hit = cache.lookup(wn("A.TEST"), 1, t0);
  REQUIRE(hit);
  CHECK(hit->elapsed_s == 0);
  CHECK_FALSE(cache.lookup(wn("a.test"), 28, t0));  // keyed by type too
  CHECK(cache.lookup(wn("a.test"), 1, t0 + 1ms)->elapsed_s == 1);  // never hand out more than is left
  CHECK(cache.lookup(wn("a.test"), 1, t0 + 9s)->elapsed_s == 9);
  CHECK_FALSE(cache.lookup(wn("a.test"), 1, t0 + 9001ms));  // would hand out TTL 0: expired
  CHECK(cache.size() == 0);

  cache.store(wn("a.test"), 1, a, 100, t0);
  cache.store(wn("b.test"), 1, b, 100, t0);
  CHECK(cache.lookup(wn("a.test"), 1, t0));  // a is now most recently used
  cache.store(wn("c.test"), 1, c, 100, t0);  // evicts b
  CHECK(cache.size() == 2);
  CHECK_FALSE(cache.lookup(wn("b.test"), 1, t0));
  CHECK(cache.lookup(wn("a.test"), 1, t0)->wire[0] == 1);
  CHECK(cache.lookup(wn("c.test"), 1, t0)->wire[0] == 3);
  cache.store(wn("c.test"), 1, a, 100, t0 + 50s);  // replace in place
  CHECK(cache.lookup(wn("c.test"), 1, t0 + 50s)->wire[0] == 1);
  cache.store(wn("z.test"), 1, a, 0, t0);  // TTL 0: not cached
  CHECK_FALSE(cache.lookup(wn("z.test"), 1, t0));

  AnswerCache off(0);
  off.store(wn("a.test"), 1, a, 100, t0);
  CHECK_FALSE(off.lookup(wn("a.test"), 1, t0));
}

TEST_CASE("cache: bounded by the bytes it keeps, not only by count") {
  AnswerCache cache(100, 1000);  // room for 100 answers, but only 1000 bytes of them
  auto t0 = Clock::time_point{} + 1000s;
  const std::vector<std::uint8_t> big(400, 7), small(10, 1);
  cache.store(wn("a.test"), 1, big, 100, t0);
  cache.store(wn("b.test"), 1, big, 100, t0);
  CHECK(cache.bytes() == 800);
  CHECK(cache.lookup(wn("a.test"), 1, t0));  // a is now most recently used
  cache.store(wn("c.test"), 1, big, 100, t0);  // 1200 > 1000: the least recently used (b) goes
  CHECK(cache.size() == 2);
  CHECK(cache.bytes() == 800);
  CHECK_FALSE(cache.lookup(wn("b.test"), 1, t0));
  CHECK(cache.lookup(wn("a.test"), 1, t0));
  CHECK(cache.lookup(wn("c.test"), 1, t0));
  // Replacing an entry counts its new size, not both.
  cache.store(wn("c.test"), 1, small, 100, t0);
  CHECK(cache.bytes() == 410);
  CHECK(cache.lookup(wn("c.test"), 1, t0)->wire.size() == 10);
  // An answer larger than the whole bound is not kept, and takes nothing out.
  cache.store(wn("huge.test"), 1, std::vector<std::uint8_t>(1001, 0), 100, t0);
  CHECK_FALSE(cache.lookup(wn("huge.test"), 1, t0));
  CHECK(cache.size() == 2);
  // Expiry gives the bytes back.
  CHECK_FALSE(cache.lookup(wn("a.test"), 1, t0 + 200s));
  CHECK(cache.bytes() == 10);
}

struct EngineFixture {
  Config config;
  RecordingSink sink;
  Counters counters;
  Logger log{"/dev/null", LogLevel::debug};
  std::unique_ptr<QueryEngine> engine;
  std::array<std::uint8_t, 65535> out{};
  Query q;

  EngineFixture() {
    config.allow = {"www.example.test", "*.cdn.test"};
    config.ttl_min = 30;
    config.ttl_max = 3600;
    config.allow_cidrs = {*parse_cidr("10.9.0.0/16")};
    engine = std::make_unique<QueryEngine>(config, sink, log, counters);
  }
  QueryEngine::Local ask(const std::vector<std::uint8_t>& wire, Clock::time_point now) {
    return engine->handle_local(wire, q, IpEndpoint{}, false, out, now);
  }
  std::span<const std::uint8_t> answer(std::size_t n) const { return {out.data(), n}; }
};

TEST_CASE("engine: miss -> sink with clamped timeouts -> answer: then cache hit counts down") {
  EngineFixture f;
  auto t0 = Clock::time_point{} + 5000s;
  auto client = test_wire::query({.name = "WWW.example.test", .id = 0x1111});
  auto local = f.ask(client, t0);
  REQUIRE(local.action == QueryEngine::Action::needs_upstream);
  CHECK(f.sink.calls.empty());

  auto upstream = build_response_wire(
      "www.example.test", 1, 0,
      {"www.example.test. 10 IN A 198.51.100.1",      // below ttl.min
       "www.example.test. 7200 IN A 198.51.100.2",    // above ttl.max
       "www.example.test. 300 IN A 10.1.1.1",         // private: never inserted
       "www.example.test. 300 IN A 10.9.1.1",         // private but in allow_cidrs
       "evil.test. 300 IN A 203.0.113.5"});           // off-chain
  auto n = f.engine->finish(client, f.q, false, upstream, f.out, t0);
  REQUIRE(n > 12);
  REQUIRE(f.sink.calls.size() == 1);
  CHECK(show(f.sink.calls[0]) ==
        std::vector<std::string>{"198.51.100.1@30", "198.51.100.2@3600", "10.9.1.1@300"});
  CHECK(f.counters.filtered == 1);
  CHECK(f.counters.inserts == 3);
  // The private address and the off-chain record are not in the set, so
  // they are not in the answer either: no client connects to be refused.
  CHECK(f.counters.stripped == 2);
  auto ans = f.answer(n);
  CHECK(read16(ans, 6) == 3);
  {
    ResponseAnalyzer a;
    ResponseInfo seen;
    REQUIRE(a.analyze(ans, wn("www.example.test"), 1, seen) == ResponseAnalyzer::Result::ok);
    std::vector<std::string> addrs;
    for (const auto& found : seen.addresses) addrs.push_back(to_string(found.addr));
    CHECK(addrs == std::vector<std::string>{"198.51.100.1", "198.51.100.2", "10.9.1.1"});
    CHECK(seen.strays.empty());
  }
  CHECK(read16(ans, 0) == 0x1111);
  CHECK((read16(ans, 2) & 0xF) == 0);
  CHECK(std::equal(client.begin() + 12, client.begin() + 30, ans.begin() + 12));  // case kept

  // The hit 100.4 s later: TTLs counted down (rounded up to 101 s), the
  // sink re-asked for exactly what is handed out, nothing else changes.
  f.sink.calls.clear();
  local = f.ask(client, t0 - 10s);  // sanity: a clock going backwards is treated as 0 elapsed
  REQUIRE(local.action == QueryEngine::Action::answer);
  f.sink.calls.clear();
  // lifetime = min capped TTL = 10 s; at +9.5 s it is still served with TTL 0..1
  local = f.ask(client, t0 + 8500ms);
  REQUIRE(local.action == QueryEngine::Action::answer);
  REQUIRE(f.sink.calls.size() == 1);
  CHECK(show(f.sink.calls[0]) ==
        std::vector<std::string>{"198.51.100.1@1", "198.51.100.2@3591", "10.9.1.1@291"});
  ResponseAnalyzer analyzer;
  ResponseInfo info;
  REQUIRE(analyzer.analyze(f.answer(local.size), wn("www.example.test"), 1, info) ==
          ResponseAnalyzer::Result::ok);
  std::vector<std::uint32_t> ttls;
  for (auto off : info.ttl_offsets) ttls.push_back(read32(f.answer(local.size), off));
  CHECK(ttls == std::vector<std::uint32_t>{1, 3591, 291});
  CHECK(f.counters.cache_hits == 2);
  // At +10 s the entry is gone: back to the upstream.
  CHECK(f.ask(client, t0 + 10s).action == QueryEngine::Action::needs_upstream);
}

TEST_CASE("engine: answers without addresses (negative, TTL 0) are kept at least ttl.min, whatever the case") {
  EngineFixture f;
  auto t0 = Clock::time_point{} + 5000s;
  // NODATA with no SOA (min TTL 0) and a TXT with TTL 0: without a floor
  // every repetition would reach the upstream.
  for (const auto& [type, records] :
       {std::pair{std::uint16_t{28}, std::vector<std::string>{}},
        std::pair{std::uint16_t{16}, std::vector<std::string>{"www.example.test. 0 IN TXT \"x\""}}}) {
    CAPTURE(type);
    auto client = test_wire::query({.name = "www.example.test", .type = type});
    REQUIRE(f.ask(client, t0).action == QueryEngine::Action::needs_upstream);
    auto upstream = build_response_wire("www.example.test", type, 0, records);
    REQUIRE(f.engine->finish(client, f.q, false, upstream, f.out, t0) > 12);
    // Another spelling of the same name, later: answered here.
    auto other_case = test_wire::query({.name = "WWW.Example.TEST", .type = type});
    CHECK(f.ask(other_case, t0 + 29s).action == QueryEngine::Action::answer);
    CHECK(f.ask(other_case, t0 + 31s).action == QueryEngine::Action::needs_upstream);  // control: it does expire
  }
}

TEST_CASE("engine: sink failure means SERVFAIL, never the answer: not cached") {
  EngineFixture f;
  f.sink.succeed = false;
  auto t0 = Clock::time_point{} + 100s;
  auto client = test_wire::query({});
  REQUIRE(f.ask(client, t0).action == QueryEngine::Action::needs_upstream);
  auto upstream = build_response_wire("www.example.test", 1, 0, {"www.example.test. 300 IN A 198.51.100.1"});
  auto n = f.engine->finish(client, f.q, false, upstream, f.out, t0);
  REQUIRE(n >= 12);
  CHECK((read16(f.answer(n), 2) & 0xF) == rcode::SERVFAIL);
  CHECK(read16(f.answer(n), 6) == 0);  // no records leak out
  CHECK(f.counters.insert_failures == 1);
  CHECK(f.ask(client, t0).action == QueryEngine::Action::needs_upstream);
}

TEST_CASE("engine: upstream failure and mismatched answers -> SERVFAIL") {
  EngineFixture f;
  auto t0 = Clock::time_point{} + 100s;
  auto client = test_wire::query({});
  REQUIRE(f.ask(client, t0).action == QueryEngine::Action::needs_upstream);
  auto n = f.engine->finish(client, f.q, false, {}, f.out, t0);
  CHECK((read16(f.answer(n), 2) & 0xF) == rcode::SERVFAIL);
  auto other = build_response_wire("other.test", 1, 0, {"other.test. 300 IN A 198.51.100.1"});
  n = f.engine->finish(client, f.q, false, other, f.out, t0);
  CHECK((read16(f.answer(n), 2) & 0xF) == rcode::SERVFAIL);
  CHECK(f.sink.calls.empty());
}

TEST_CASE("engine: denied and local answers never ask the sink or the upstream") {
  EngineFixture f;
  auto t0 = Clock::time_point{} + 100s;
  auto local = f.ask(test_wire::query({.name = "evil.test"}), t0);
  REQUIRE(local.action == QueryEngine::Action::answer);
  CHECK((read16(f.answer(local.size), 2) & 0xF) == rcode::NXDOMAIN);
  f.config.deny_rcode = DenyRcode::refused;  // the engine reads the (frozen) config by reference
  local = f.ask(test_wire::query({.name = "cdn.test"}), t0);
  CHECK((read16(f.answer(local.size), 2) & 0xF) == rcode::REFUSED);
  CHECK(f.ask(test_wire::query({.type = 255}), t0).action == QueryEngine::Action::answer);
  CHECK(f.ask({1, 2, 3}, t0).action == QueryEngine::Action::drop);
  CHECK(f.counters.denied == 2);
  CHECK(f.counters.malformed == 1);
  CHECK(f.sink.calls.empty());
}

TEST_CASE("engine: a denied EDNS query says why (EDE Blocked) and how to allow it: plain DNS gets the rcode") {
  EngineFixture f;
  DecisionRecord decisions;
  f.engine->set_decisions(&decisions);
  auto t0 = Clock::time_point{} + 100s;
  auto local = f.ask(test_wire::query({.name = "Evil.test", .edns = true}), t0);
  REQUIRE(local.action == QueryEngine::Action::answer);
  const auto r = f.answer(local.size);
  CHECK((read16(r, 2) & 0xF) == rcode::NXDOMAIN);
  const std::string text = "blocked by cagent policy; to allow it, run on the host: cagent allow evil.test";
  // The OPT record ends the message; its one option is the EDE.
  const std::size_t option = local.size - 6 - text.size();
  CHECK(read16(r, option - 2) == 6 + text.size());  // OPT RDLENGTH
  CHECK(read16(r, option) == 15);                   // EDE
  CHECK(read16(r, option + 2) == 2 + text.size());
  CHECK(read16(r, option + 4) == 15);               // Blocked
  CHECK(std::string(r.begin() + static_cast<std::ptrdiff_t>(option + 6), r.end()) == text);
  const auto plain = f.ask(test_wire::query({.name = "evil.test"}), t0);
  CHECK(read16(f.answer(plain.size), 10) == 0);     // no OPT: nothing added
  // Both denials are in the exact record, case folded.
  CHECK(decisions.denied_count("evil.test", 1) == 2);
  CHECK(decisions.denied_total() == 2);
}

// cage-init's readiness probe is such a query (class CHAOS): any answer
// proves dnsguard serves, and the record of what the agent was refused,
// which the host summarizes, never counts it.
TEST_CASE("engine: a query of another class is REFUSED at once and is no policy decision") {
  EngineFixture f;
  DecisionRecord decisions;
  f.engine->set_decisions(&decisions);
  const auto local = f.ask(test_wire::query({.name = "cagent-probe.invalid", .cls = 3}), Clock::time_point{} + 100s);
  REQUIRE(local.action == QueryEngine::Action::answer);
  CHECK((read16(f.answer(local.size), 2) & 0xF) == rcode::REFUSED);
  CHECK(decisions.denied_total() == 0);
  CHECK(f.counters.denied == 0);
  CHECK(f.sink.calls.empty());
  // The positive control: the same name in class IN is a denial, recorded.
  f.ask(test_wire::query({.name = "cagent-probe.invalid"}), Clock::time_point{} + 100s);
  CHECK(decisions.denied_total() == 1);
}

TEST_CASE("refresh absorb feeds the sink with clamped timeouts") {
  EngineFixture f;
  auto answer = build_response_wire("www.example.test", 28, 0,
                                    {"www.example.test. 5 IN AAAA 2001:db8::5",
                                     "www.example.test. 5 IN AAAA fe80::1"});
  CHECK(f.engine->absorb(wn("www.example.test"), 28, answer));
  REQUIRE(f.sink.calls.size() == 1);
  CHECK(show(f.sink.calls[0]) == std::vector<std::string>{"2001:db8::5@30"});
  CHECK_FALSE(f.engine->absorb(wn("www.example.test"), 1, answer));  // wrong type: mismatch
}

namespace {
// A sink that already holds some addresses: hold() reports `held` for those
// (when it meets the floor) and the full timeout for the rest, like
// nft::SetUpdater does.
class HoldingSink : public AnswerSink {
 public:
  bool allow(std::span<const AllowedAddress>) noexcept override { return false; }
  bool hold(std::span<const AllowedAddress> addresses, std::span<std::uint32_t> held_s) noexcept override {
    calls.emplace_back(addresses.begin(), addresses.end());
    for (std::size_t i = 0; i < addresses.size(); ++i) {
      const auto& a = addresses[i];
      std::uint32_t floor = a.min_timeout_s ? a.min_timeout_s : a.timeout_s;
      IpAddress ip{a.v6, a.bytes};
      auto it = held.find(to_string(ip));
      held_s[i] = it != held.end() && it->second >= floor ? it->second : a.timeout_s;
    }
    return true;
  }
  std::map<std::string, std::uint32_t> held;
  std::vector<std::vector<AllowedAddress>> calls;
};
}  // namespace

TEST_CASE("engine: floors — the sink may keep an address held long enough: its TTL is capped at that") {
  Config config;
  config.allow = {"*.cdn.test"};
  config.ttl_min = 30;
  config.ttl_max = 3600;
  HoldingSink sink;
  sink.held = {{"198.51.100.1", 2000}, {"198.51.100.2", 10}};
  Counters counters;
  Logger log{"/dev/null", LogLevel::debug};
  QueryEngine engine(config, sink, log, counters);
  std::array<std::uint8_t, 65535> out{};
  Query q;
  auto t0 = Clock::time_point{} + 5000s;
  auto client = test_wire::query({.name = "a.cdn.test"});
  REQUIRE(engine.handle_local(client, q, IpEndpoint{}, false, out, t0).action ==
          QueryEngine::Action::needs_upstream);
  auto upstream = build_response_wire("a.cdn.test", 1, 0,
                                      {"a.cdn.test. 3600 IN A 198.51.100.1",   // held 2000 >= floor 1800
                                       "a.cdn.test. 3600 IN A 198.51.100.2",   // held 10 < floor: inserted
                                       "a.cdn.test. 100 IN A 198.51.100.3",    // new: inserted
                                       "a.cdn.test. 20 IN A 198.51.100.4"});   // clamp 30 = floor
  auto n = engine.finish(client, q, false, upstream, out, t0);
  REQUIRE(n > 12);
  REQUIRE(sink.calls.size() == 1);
  std::vector<std::uint32_t> floors;
  for (const auto& a : sink.calls[0]) floors.push_back(a.min_timeout_s);
  // Half the timeout, at least ttl.min; 0 when that is the timeout itself.
  CHECK(floors == std::vector<std::uint32_t>{1800, 1800, 50, 0});
  ResponseAnalyzer analyzer;
  ResponseInfo info;
  auto ans = std::span<const std::uint8_t>(out.data(), n);
  REQUIRE(analyzer.analyze(ans, wn("a.cdn.test"), 1, info) == ResponseAnalyzer::Result::ok);
  std::vector<std::uint32_t> ttls;
  for (auto off : info.ttl_offsets) ttls.push_back(read32(ans, off));
  // .1 is held only 2000 s: its record says 2000, never the 3600 asked for.
  CHECK(ttls == std::vector<std::uint32_t>{2000, 3600, 100, 20});
  // The cache entry lives no longer than the shortest held time.
  CHECK(engine.handle_local(client, q, IpEndpoint{}, false, out, t0 + 19s).action ==
        QueryEngine::Action::answer);
  CHECK(engine.handle_local(client, q, IpEndpoint{}, false, out, t0 + 20s).action ==
        QueryEngine::Action::needs_upstream);
}

TEST_CASE("engine: cache hits are capped at what the sink holds as well") {
  Config config;
  config.allow = {"*.cdn.test"};
  config.ttl_min = 30;
  config.ttl_max = 3600;
  HoldingSink sink;
  Counters counters;
  Logger log{"/dev/null", LogLevel::debug};
  QueryEngine engine(config, sink, log, counters);
  std::array<std::uint8_t, 65535> out{};
  Query q;
  auto t0 = Clock::time_point{} + 5000s;
  auto client = test_wire::query({.name = "b.cdn.test"});
  REQUIRE(engine.handle_local(client, q, IpEndpoint{}, false, out, t0).action ==
          QueryEngine::Action::needs_upstream);
  auto upstream = build_response_wire("b.cdn.test", 1, 0, {"b.cdn.test. 1000 IN A 198.51.100.9"});
  REQUIRE(engine.finish(client, q, false, upstream, out, t0) > 12);
  // Later the set holds the address only 600 s (e.g. another answer's
  // insert was remembered that way); the hit at +100 s wants 900 s, floor 450.
  sink.held = {{"198.51.100.9", 600}};
  auto local = engine.handle_local(client, q, IpEndpoint{}, false, out, t0 + 100s);
  REQUIRE(local.action == QueryEngine::Action::answer);
  REQUIRE(sink.calls.size() == 2);
  CHECK(sink.calls[1][0].timeout_s == 900);
  CHECK(sink.calls[1][0].min_timeout_s == 450);
  ResponseAnalyzer analyzer;
  ResponseInfo info;
  auto ans = std::span<const std::uint8_t>(out.data(), local.size);
  REQUIRE(analyzer.analyze(ans, wn("b.cdn.test"), 1, info) == ResponseAnalyzer::Result::ok);
  CHECK(read32(ans, info.ttl_offsets[0]) == 600);
}

TEST_CASE("engine with the gate on: answers lose ECH, inserted addresses are bound to the question's name") {
  EngineFixture f;
  f.config.gate_enabled = true;
  auto t0 = Clock::now();
  // svc.cdn.test HTTPS 1 . alpn=h2 ech=… ipv4hint=198.51.100.9
  auto client = test_wire::query({.name = "svc.cdn.test", .type = 65, .id = 0x2222});
  REQUIRE(f.ask(client, t0).action == QueryEngine::Action::needs_upstream);
  std::vector<std::uint8_t> up;
  test_wire::put16(up, 0x2222);
  test_wire::put16(up, 0x8180);
  test_wire::put16(up, 1);
  test_wire::put16(up, 1);
  test_wire::put16(up, 0);
  test_wire::put16(up, 0);
  test_wire::put_name(up, "svc.cdn.test");
  test_wire::put16(up, 65);
  test_wire::put16(up, 1);
  std::vector<std::uint8_t> rdata;
  test_wire::put16(rdata, 1);
  rdata.push_back(0);
  test_wire::put16(rdata, 1);  // alpn
  test_wire::put16(rdata, 3);
  rdata.insert(rdata.end(), {2, 'h', '2'});
  test_wire::put16(rdata, 5);  // ech
  test_wire::put16(rdata, 6);
  rdata.insert(rdata.end(), 6, 0xEC);
  test_wire::put16(rdata, 4);  // ipv4hint
  test_wire::put16(rdata, 4);
  rdata.insert(rdata.end(), {198, 51, 100, 9});
  test_wire::put16(up, 0xC00C);
  test_wire::put16(up, 65);
  test_wire::put16(up, 1);
  test_wire::put32(up, 300);
  test_wire::put16(up, static_cast<unsigned>(rdata.size()));
  up.insert(up.end(), rdata.begin(), rdata.end());

  const std::size_t n = f.engine->finish(client, f.q, false, up, f.out, t0);
  REQUIRE(n > 12);
  const auto ans = f.answer(n);
  CHECK(n == up.size() - 10);  // the 10 bytes of the ech parameter are gone
  CHECK(std::find(ans.begin(), ans.end(), std::uint8_t{0xEC}) == ans.end());
  REQUIRE(f.sink.calls.size() == 1);
  CHECK(show(f.sink.calls[0]) == std::vector<std::string>{"198.51.100.9@300"});
  // Bound to the name asked for, for as long as the set holds it.
  IpAddress hint;
  hint.bytes = {198, 51, 100, 9};
  CHECK(f.engine->admit("svc.cdn.test", hint, Clock::now()));
  CHECK_FALSE(f.engine->admit("other.cdn.test", hint, Clock::now()));     // allowed, but not resolved to it
  CHECK_FALSE(f.engine->admit("svc.elsewhere.test", hint, Clock::now())); // not allowed at all
  IpAddress other = hint;
  other.bytes[3] = 10;
  CHECK_FALSE(f.engine->admit("svc.cdn.test", other, Clock::now()));
  CHECK(f.engine->bindings() == 1);
}

TEST_CASE("engine with the gate off: nothing admitted, ECH passes") {
  EngineFixture f;
  auto t0 = Clock::now();
  auto client = test_wire::query({.name = "www.example.test", .id = 0x3333});
  REQUIRE(f.ask(client, t0).action == QueryEngine::Action::needs_upstream);
  auto upstream = build_response_wire("www.example.test", 1, 0, {"www.example.test. 300 IN A 198.51.100.1"});
  REQUIRE(f.engine->finish(client, f.q, false, upstream, f.out, t0) > 12);
  // Bound all the same: a run-time deny evicts by the bindings.
  CHECK(f.engine->bindings() == 1);
  IpAddress a;
  a.bytes = {198, 51, 100, 1};
  CHECK_FALSE(f.engine->admit("www.example.test", a, Clock::now()));  // nothing is ever admitted without the gate's bindings
}

namespace {
// One lookup through the engine: the client's query, the upstream's answer
// (`records` for `name`), and the engine's answer size (0: none).
std::size_t resolve(EngineFixture& f, const std::string& name, const std::vector<std::string>& records,
                    Clock::time_point now) {
  auto client = test_wire::query({.name = name, .id = 0x4444});
  const auto local = f.ask(client, now);
  if (local.action != QueryEngine::Action::needs_upstream) return 0;
  auto upstream = build_response_wire(name, 1, 0, records);
  return f.engine->finish(client, f.q, false, upstream, f.out, now);
}
}  // namespace

TEST_CASE("engine: a name taken back at run time evicts the addresses only it held") {
  EngineFixture f;
  const auto t0 = Clock::now();
  // Run-time additions, as LivePolicy builds them: base + two names.
  f.engine->replace_allow_list(AllowList({"www.example.test", "*.cdn.test", "api.extra.test", "cdn.extra.test"}));
  // api.extra.test has one address of its own and one it shares with
  // www.example.test (a name that stays); cdn.extra.test shares one with
  // api.extra.test only.
  REQUIRE(resolve(f, "api.extra.test",
                  {"api.extra.test. 300 IN A 198.51.100.1", "api.extra.test. 300 IN A 198.51.100.2",
                   "api.extra.test. 300 IN A 198.51.100.3"},
                  t0) > 12);
  REQUIRE(resolve(f, "www.example.test", {"www.example.test. 300 IN A 198.51.100.2"}, t0) > 12);
  REQUIRE(resolve(f, "cdn.extra.test", {"cdn.extra.test. 300 IN A 198.51.100.3"}, t0) > 12);
  // A binding of a name that stays, but expired: it does not keep its address.
  REQUIRE(resolve(f, "img.cdn.test", {"img.cdn.test. 1 IN A 198.51.100.4"}, t0 - 3600s) > 12);
  f.sink.evicted.clear();

  // Take back api.extra.test only: .1 was its alone; .2 stays for www; .3
  // stays for cdn.extra.test (still a run-time addition).
  f.engine->replace_allow_list(AllowList({"www.example.test", "*.cdn.test", "cdn.extra.test"}));
  CHECK(f.engine->release_denied(t0 + 1s) == std::optional<std::size_t>(1));
  CHECK(f.sink.evicted == std::vector<std::string>{"198.51.100.1"});
  // Its bindings are gone, the others' stay (the gate asks them).
  f.config.gate_enabled = true;
  IpAddress two;
  two.bytes = {198, 51, 100, 2};
  CHECK(f.engine->admit("www.example.test", two, Clock::now()));
  CHECK_FALSE(f.engine->admit("api.extra.test", two, Clock::now()));

  // Then cdn.extra.test: .3 is now nobody's.
  f.sink.evicted.clear();
  f.engine->replace_allow_list(AllowList({"www.example.test", "*.cdn.test"}));
  CHECK(f.engine->release_denied(t0 + 2s) == std::optional<std::size_t>(1));
  CHECK(f.sink.evicted == std::vector<std::string>{"198.51.100.3"});
  // Nothing more to release the second time.
  f.sink.evicted.clear();
  CHECK(f.engine->release_denied(t0 + 3s) == std::optional<std::size_t>(0));
  CHECK(f.sink.evicted.empty());

  // A sink that cannot evict: reported, not hidden — and the next deny
  // tries the same addresses again.
  f.engine->replace_allow_list(AllowList({"*.cdn.test"}));
  f.sink.succeed = false;
  f.sink.evicted.clear();
  CHECK_FALSE(f.engine->release_denied(t0 + 4s).has_value());
  CHECK(f.sink.evicted == std::vector<std::string>{"198.51.100.2"});
  f.sink.succeed = true;
  f.sink.evicted.clear();
  CHECK(f.engine->release_denied(t0 + 5s) == std::optional<std::size_t>(1));
  CHECK(f.sink.evicted == std::vector<std::string>{"198.51.100.2"});
}

TEST_CASE("engine: an answer that arrives after its name was taken back is a denial and inserts nothing") {
  EngineFixture f;
  const auto t0 = Clock::now();
  auto client = test_wire::query({.name = "www.example.test", .id = 0x5555, .edns = true});
  REQUIRE(f.ask(client, t0).action == QueryEngine::Action::needs_upstream);
  // The deny lands while the upstream is asked.
  f.engine->replace_allow_list(AllowList({"*.cdn.test"}));
  auto upstream = build_response_wire("www.example.test", 1, 0, {"www.example.test. 300 IN A 198.51.100.1"});
  const std::size_t n = f.engine->finish(client, f.q, false, upstream, f.out, t0);
  REQUIRE(n > 12);
  CHECK((read16(f.answer(n), 2) & 0xF) == static_cast<unsigned>(f.config.deny_rcode));
  CHECK(read16(f.answer(n), 6) == 0);  // no answer records
  CHECK(f.sink.calls.empty());
  CHECK(f.engine->bindings() == 0);
  // The refresh's answer for it is not absorbed either.
  CHECK_FALSE(f.engine->absorb(wn("www.example.test"), 1, upstream));
  CHECK(f.sink.calls.empty());
}

TEST_CASE("engine: with the name bindings full, an answer inserts nothing, so a run-time deny misses no address") {
  EngineFixture f;
  const auto t0 = Clock::now();
  f.engine->replace_allow_list(AllowList({"www.example.test", "*.cdn.test", "api.extra.test"}));
  // The agent fills the table through a wildcard whose zone answers any
  // name: 8192 names x 16 addresses = 131072 live bindings (the engine's bound).
  std::vector<std::string> records;
  for (int i = 0; i < 16; ++i) records.push_back("x. 300 IN A 198.51.100." + std::to_string(10 + i));
  for (int n = 0; n < 8192; ++n) {
    const std::string name = "n" + std::to_string(n) + ".cdn.test";
    std::vector<std::string> rr;
    for (const auto& r : records) rr.push_back(name + r.substr(1));
    REQUIRE(resolve(f, name, rr, t0) > 12);
  }
  REQUIRE(f.engine->bindings() == 131072);
  f.sink.calls.clear();

  // A name the user allowed at run time, with an address of its own.
  const std::size_t n1 = resolve(f, "api.extra.test", {"api.extra.test. 300 IN A 198.51.100.1"}, t0 + 1s);
  REQUIRE(n1 > 12);
  CHECK((read16(f.answer(n1), 2) & 0xF) == 2);  // SERVFAIL: no room to bind it
  CHECK(f.sink.calls.empty());                  // so it never entered a set
  // Taken back: nothing of it is left in the sets.
  f.engine->replace_allow_list(AllowList({"www.example.test", "*.cdn.test"}));
  CHECK(f.engine->release_denied(t0 + 2s) == std::optional<std::size_t>(0));

  // Once the wildcard's bindings expired there is room again.
  f.engine->replace_allow_list(AllowList({"www.example.test", "*.cdn.test", "api.extra.test"}));
  const std::size_t n2 = resolve(f, "api.extra.test", {"api.extra.test. 300 IN A 198.51.100.1"}, t0 + 400s);
  REQUIRE(n2 > 12);
  CHECK((read16(f.answer(n2), 2) & 0xF) == 0);
  REQUIRE(f.sink.calls.size() == 1);
  f.sink.evicted.clear();
  f.engine->replace_allow_list(AllowList({"www.example.test", "*.cdn.test"}));
  CHECK(f.engine->release_denied(t0 + 401s) == std::optional<std::size_t>(1));
  CHECK(f.sink.evicted == std::vector<std::string>{"198.51.100.1"});
}

TEST_CASE("engine: a full binding journal is compacted to the live bindings, each with its latest expiry") {
  EngineFixture f;
  f.config.gate_enabled = true;
  char dir_template[] = "/tmp/cagent-journal-XXXXXX";
  REQUIRE(::mkdtemp(dir_template) != nullptr);
  const std::filesystem::path file = binding_journal_path(dir_template);
  // Room for a handful of lines: answers that extend the same binding fill it.
  BindingJournal journal(file, true, 400);
  f.engine->set_binding_journal(&journal);
  // Whole milliseconds, as the journal writes them.
  const Clock::time_point t = std::chrono::time_point_cast<std::chrono::milliseconds>(Clock::now());
  const auto resolve = [&](int ttl, Clock::time_point now) {
    auto client = test_wire::query({.name = "www.example.test", .id = 0x3333});
    REQUIRE(f.engine->handle_local(client, f.q, IpEndpoint{}, false, f.out, now).action ==
            QueryEngine::Action::needs_upstream);
    auto up = build_response_wire("www.example.test", 1, 0,
                                  {"www.example.test. " + std::to_string(ttl) + " IN A 198.51.100.7"});
    REQUIRE(f.engine->finish(client, f.q, false, up, f.out, now) > 12);
  };
  // Each answer comes after the last one ran out (so it is no cache hit)
  // and extends the binding: a line each.
  for (int i = 0; i < 20; ++i) resolve(300, t + std::chrono::seconds(1000 * i));
  const auto entries = read_binding_journal(file);
  REQUIRE_FALSE(entries.empty());
  CHECK(entries.size() < 20);  // compacted at least once
  CHECK(journal.size() <= 400);
  // Its last line is the binding's latest expiry (+ the slack): nothing a
  // restart would need is lost, and no line is older than the compaction.
  IpAddress a;
  a.bytes = {198, 51, 100, 7};
  CHECK(entries.back().name == "www.example.test");
  CHECK(entries.back().addr == a);
  CHECK(entries.back().until == t + std::chrono::seconds(19000 + 300) + kBindingGrace + kJournalSlack);
  std::filesystem::remove_all(dir_template);
}


TEST_CASE("engine in learn mode: an unlisted name resolves through the same checks, and is recorded as learned") {
  EngineFixture f;
  DecisionRecord record;
  f.engine->set_decisions(&record);
  auto t0 = Clock::now();
  auto client = test_wire::query({.name = "Api.Unlisted.test", .id = 0x4444});
  // Control: without learn mode the name is denied and never forwarded.
  REQUIRE(f.ask(client, t0).action == QueryEngine::Action::answer);
  CHECK(f.counters.denied == 1);
  CHECK(record.denied_count("api.unlisted.test", 1) == 1);
  CHECK(record.learned_total() == 0);

  f.config.learn = true;
  f.config.gate_enabled = true;
  REQUIRE(f.ask(client, t0).action == QueryEngine::Action::needs_upstream);
  CHECK(f.counters.learned == 1);
  CHECK(record.learned_count("api.unlisted.test") == 1);
  CHECK(record.denied_total() == 1);  // the control's, nothing new
  auto upstream = build_response_wire("api.unlisted.test", 1, 0,
                                      {"api.unlisted.test. 300 IN A 198.51.100.7",
                                       "api.unlisted.test. 300 IN A 169.254.169.254",  // metadata: never inserted
                                       "api.unlisted.test. 300 IN A 10.1.1.1"});       // private: never inserted
  REQUIRE(f.engine->finish(client, f.q, false, upstream, f.out, t0) > 12);
  REQUIRE(f.sink.calls.size() == 1);
  CHECK(show(f.sink.calls[0]) == std::vector<std::string>{"198.51.100.7@300"});
  CHECK(f.counters.filtered == 2);
  // Name-bound as ever: the gate admits the name to the address it
  // resolved to, not another name to it, nor the name to another address.
  IpAddress addr;
  addr.bytes = {198, 51, 100, 7};
  CHECK(f.engine->admit("api.unlisted.test", addr, Clock::now()));
  CHECK_FALSE(f.engine->admit("other.unlisted.test", addr, Clock::now()));
  IpAddress elsewhere = addr;
  elsewhere.bytes[3] = 8;
  CHECK_FALSE(f.engine->admit("api.unlisted.test", elsewhere, Clock::now()));
  // A cache hit counts again; an allowed name is not "learned".
  REQUIRE(f.ask(client, t0).action == QueryEngine::Action::answer);
  CHECK(record.learned_count("api.unlisted.test") == 2);
  REQUIRE(f.ask(test_wire::query({.name = "www.example.test", .id = 0x4445}), t0).action ==
          QueryEngine::Action::needs_upstream);
  CHECK(record.learned_total() == 2);
  const Decisions d = record.snapshot(DecisionRecord::WallClock::now());
  REQUIRE(d.learned.size() == 1);
  CHECK(d.learned[0].name == "api.unlisted.test");
  CHECK(d.learned[0].count == 2);
}

TEST_CASE("engine: ask mode holds a denied name and records nothing until it ends") {
  EngineFixture f;
  DecisionRecord decisions;
  f.engine->set_decisions(&decisions);
  auto t0 = Clock::time_point{} + 100s;
  f.engine->set_holding(true);
  const auto wire = test_wire::query({.name = "Later.test", .edns = true});
  auto local = f.ask(wire, t0);
  CHECK(local.action == QueryEngine::Action::hold);
  CHECK(f.q.name() == "later.test");
  CHECK(decisions.denied_total() == 0);
  CHECK(f.counters.held == 1);
  CHECK(f.counters.denied == 0);
  // Nobody decided in time: denied, recorded, and the EDE says so.
  const std::size_t n = f.engine->deny_held(wire, f.q, IpEndpoint{}, false, QueryEngine::HeldEnd::timed_out, f.out);
  const auto r = f.answer(n);
  CHECK((read16(r, 2) & 0xF) == rcode::NXDOMAIN);
  const std::string timed_out = "pending approval timed out; blocked by cagent policy; to allow it, run on the host: "
                                "cagent allow later.test";
  CHECK(std::string(r.end() - static_cast<std::ptrdiff_t>(timed_out.size()), r.end()) == timed_out);
  CHECK(decisions.denied_count("later.test", 1) == 1);
  CHECK(f.counters.denied == 1);
  // Kept denied by the approver: the policy's own text.
  f.ask(wire, t0);
  const std::size_t m = f.engine->deny_held(wire, f.q, IpEndpoint{}, false, QueryEngine::HeldEnd::kept_denied, f.out);
  const std::string policy = "blocked by cagent policy; to allow it, run on the host: cagent allow later.test";
  const auto r2 = f.answer(m);
  CHECK(std::string(r2.end() - static_cast<std::ptrdiff_t>(policy.size()), r2.end()) == policy);

  // An allowed name is not held (the control), nor is a malformed query.
  CHECK(f.ask(test_wire::query({.name = "www.example.test"}), t0).action == QueryEngine::Action::needs_upstream);
  CHECK(f.ask({1, 2, 3}, t0).action == QueryEngine::Action::drop);

  // Holding off again (the last watcher left): denied at once, flagged for the watchers.
  f.engine->set_holding(false);
  local = f.ask(wire, t0);
  CHECK(local.action == QueryEngine::Action::answer);
  CHECK(local.denied);
  CHECK(f.sink.calls.empty());
}
