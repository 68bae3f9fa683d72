// The connection gate's pure parts: ClientHello and HTTP head parsers on
// canned bytes (split at every offset, across records, no SNI, ECH, garbage,
// oversize, names in other forms than the canonical one) and the name →
// address binding table.

#include <doctest/doctest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "gate_bindings.hpp"
#include "gate_parse.hpp"

using namespace cagent::dnsguard;
using namespace std::chrono_literals;

namespace {

using Bytes = std::vector<std::uint8_t>;

void put16(Bytes& b, std::size_t v) {
  b.push_back(static_cast<std::uint8_t>(v >> 8));
  b.push_back(static_cast<std::uint8_t>(v));
}
void put_ext(Bytes& b, std::uint16_t type, const Bytes& data) {
  put16(b, type);
  put16(b, data.size());
  b.insert(b.end(), data.begin(), data.end());
}
Bytes sni_ext_data(const std::vector<std::string>& names) {
  Bytes list;
  for (const auto& n : names) {
    list.push_back(0);  // host_name
    put16(list, n.size());
    list.insert(list.end(), n.begin(), n.end());
  }
  Bytes d;
  put16(d, list.size());
  d.insert(d.end(), list.begin(), list.end());
  return d;
}

struct HelloSpec {
  std::vector<std::string> names = {"www.example.test"};
  bool ech = false;
  std::size_t padding = 0;        // a padding extension this large (big hellos)
  bool duplicate_sni = false;
};

// A ClientHello handshake message (type + 24-bit length + body).
Bytes hello_message(const HelloSpec& s) {
  Bytes body;
  put16(body, 0x0303);
  body.insert(body.end(), 32, 0x11);  // random
  body.push_back(32);
  body.insert(body.end(), 32, 0x22);  // session id
  put16(body, 4);
  put16(body, 0x1301);
  put16(body, 0x1302);
  body.push_back(1);
  body.push_back(0);
  Bytes exts;
  put_ext(exts, 0x002b, {0x02, 0x03, 0x04});  // supported_versions
  if (!s.names.empty()) put_ext(exts, 0x0000, sni_ext_data(s.names));
  if (s.duplicate_sni) put_ext(exts, 0x0000, sni_ext_data({"other.test"}));
  if (s.ech) put_ext(exts, 0xfe0d, Bytes(40, 0x33));
  if (s.padding) put_ext(exts, 0x0015, Bytes(s.padding, 0));
  put16(body, exts.size());
  body.insert(body.end(), exts.begin(), exts.end());
  Bytes msg = {1, static_cast<std::uint8_t>(body.size() >> 16), static_cast<std::uint8_t>(body.size() >> 8),
               static_cast<std::uint8_t>(body.size())};
  msg.insert(msg.end(), body.begin(), body.end());
  return msg;
}

// The message in TLS records of at most `per_record` bytes each.
Bytes records(const Bytes& msg, std::size_t per_record = 16384) {
  Bytes out;
  for (std::size_t at = 0; at < msg.size(); at += per_record) {
    const std::size_t n = std::min(per_record, msg.size() - at);
    out.push_back(22);
    put16(out, 0x0301);
    put16(out, n);
    out.insert(out.end(), msg.begin() + static_cast<std::ptrdiff_t>(at), msg.begin() + static_cast<std::ptrdiff_t>(at + n));
  }
  return out;
}

GateVerdict hello(const Bytes& stream) {
  static Bytes scratch(kMaxClientHello);
  return parse_client_hello(stream, scratch);
}
GateVerdict http(const std::string& s) {
  return parse_http_head({reinterpret_cast<const std::uint8_t*>(s.data()), s.size()});
}

}  // namespace

TEST_CASE("gate: ClientHello server name, at every split and across records") {
  for (std::size_t per_record : {std::size_t{16384}, std::size_t{100}, std::size_t{7}, std::size_t{1}}) {
    CAPTURE(per_record);
    const Bytes stream = records(hello_message({}), per_record);
    // Every prefix: need_more until the last byte, never a wrong answer.
    for (std::size_t cut = 0; cut < stream.size(); ++cut) {
      const GateVerdict v = hello(Bytes(stream.begin(), stream.begin() + static_cast<std::ptrdiff_t>(cut)));
      if (v.status != GateParse::need_more) {
        FAIL_CHECK("decided early at byte " << cut << ": " << std::string(v.reason));
        break;
      }
    }
    const GateVerdict v = hello(stream);
    REQUIRE(v.status == GateParse::done);
    CHECK(v.name.view() == "www.example.test");
    CHECK_FALSE(v.ech);
  }
}

TEST_CASE("gate: large (post-quantum sized) ClientHellos, ECH, name normalisation") {
  HelloSpec big;
  big.padding = 1800;
  const GateVerdict v = hello(records(hello_message(big)));
  REQUIRE(v.status == GateParse::done);
  CHECK(v.name.view() == "www.example.test");
  HelloSpec ech;
  ech.ech = true;
  ech.names = {"public.example.test"};
  const GateVerdict e = hello(records(hello_message(ech)));
  REQUIRE(e.status == GateParse::done);
  CHECK(e.ech);
  CHECK(e.name.view() == "public.example.test");  // the visible name is what is judged
}

TEST_CASE("gate: a server name only in its canonical form") {
  const auto verdict = [](const std::string& name) {
    HelloSpec spec;
    spec.names = {name};
    return hello(records(hello_message(spec)));
  };
  // The control: lower case, no trailing dot (digits, '-', '_' too).
  const GateVerdict ok = verdict("a-1_b.example.test");
  REQUIRE(ok.status == GateParse::done);
  CHECK(ok.name.view() == "a-1_b.example.test");
  // A trailing dot (RFC 6066 3 forbids it) or upper case: an exact-match
  // router would send them to another site. Refused, naming the site.
  const GateVerdict dot = verdict("www.example.test.");
  CHECK(dot.status == GateParse::reject);
  CHECK(std::string(dot.reason).starts_with("server name ends in a dot"));
  CHECK(dot.name.view() == "www.example.test");
  for (const char* upper : {"WWW.EXAMPLE.TEST", "www.Example.test", "wwW.example.test"}) {
    CAPTURE(upper);
    const GateVerdict v = verdict(upper);
    CHECK(v.status == GateParse::reject);
    CHECK(std::string(v.reason).starts_with("server name in upper case"));
    CHECK(std::string(v.reason).find("lower case") != std::string::npos);  // says what to do
    CHECK(v.name.view() == "www.example.test");
  }
  CHECK(std::string(verdict("Www.example.test.").reason).starts_with("server name ends in a dot"));
  CHECK(std::string(verdict("www..test.").reason) == "bad server name");
}

TEST_CASE("gate: ClientHellos that are refused") {
  const auto reason = [](const Bytes& stream) {
    const GateVerdict v = hello(stream);
    return v.status == GateParse::reject ? std::string(v.reason) : std::string("(not refused)");
  };
  HelloSpec none;
  none.names.clear();
  CHECK(reason(records(hello_message(none))) == "no server name");
  HelloSpec two;
  two.names = {"a.test", "b.test"};
  CHECK(reason(records(hello_message(two))) == "more than one server name");
  HelloSpec dup;
  dup.duplicate_sni = true;
  CHECK(reason(records(hello_message(dup))) == "duplicate extension");
  HelloSpec odd;
  odd.names = {"bad name.test"};
  CHECK(reason(records(hello_message(odd))) == "bad server name");
  odd.names = {"a..test"};
  CHECK(reason(records(hello_message(odd))) == "bad server name");
  odd.names = {std::string("nul\0.test", 9)};
  CHECK(reason(records(hello_message(odd))) == "bad server name");
  HelloSpec huge;
  huge.padding = kMaxClientHello;
  CHECK(reason(records(hello_message(huge))) == "ClientHello too large");
  // Not TLS at all (plain HTTP on 443), and not a handshake first.
  CHECK(reason({'G', 'E', 'T', ' ', '/'}) == "not a TLS handshake");
  CHECK(reason({'G'}) == "not a TLS handshake");
  CHECK(reason({21, 3, 3, 0, 2, 2, 40}) == "not a TLS handshake");  // an alert
  // A record of another type between two pieces of the hello.
  Bytes split = records(hello_message({}), 50);
  split.insert(split.begin() + 55, {21, 3, 3, 0, 2, 2, 40});
  CHECK(reason(split) == "record interleaved in the ClientHello");
  // Another handshake message first (a ServerHello from a confused peer).
  Bytes server_hello = hello_message({});
  server_hello[0] = 2;
  CHECK(reason(records(server_hello)) == "not a ClientHello");
  // A lying inner length.
  Bytes lying = hello_message({});
  lying[lying.size() - 30] ^= 0xff;
  const GateVerdict v = hello(records(lying));
  CHECK(v.status != GateParse::done);
  CHECK(reason({22, 3, 1, 0, 0}) == "bad TLS record length");
}

TEST_CASE("gate: every truncation and a byte flip anywhere never crash or overread") {
  const Bytes stream = records(hello_message({}), 64);
  for (std::size_t i = 0; i < stream.size(); ++i) {
    Bytes flipped = stream;
    flipped[i] ^= 0x5a;
    const GateVerdict v = hello(flipped);
    if (v.status == GateParse::done) CHECK(v.name.size <= 253);
  }
}

TEST_CASE("gate: HTTP Host of the first request") {
  const std::string req = "GET /x?y=1 HTTP/1.1\r\nUser-Agent: t\r\nHost: www.example.test:8080\r\nAccept: */*\r\n\r\nbody";
  for (std::size_t cut = 0; cut + 4 < req.find("\r\n\r\n") + 4; ++cut) {
    const GateVerdict v = http(req.substr(0, cut));
    if (v.status != GateParse::need_more) {
      FAIL_CHECK("decided early at byte " << cut << ": " << std::string(v.reason));
      break;
    }
  }
  const GateVerdict v = http(req);
  REQUIRE(v.status == GateParse::done);
  CHECK(v.name.view() == "www.example.test");
  CHECK(http("OPTIONS * HTTP/1.1\r\nhost:a.test\r\n\r\n").status == GateParse::done);
  CHECK(http("GET / HTTP/1.0\r\nHost: \t a.test\r\n\r\n").name.view() == "a.test");  // leading OWS
}

TEST_CASE("gate: a Host only in its canonical form") {
  const auto reason = [](const std::string& host) {
    const GateVerdict v = http("GET / HTTP/1.1\r\nHost: " + host + "\r\n\r\n");
    return v.status == GateParse::reject ? std::string(v.reason) : std::string("(not refused)");
  };
  // The controls: as the name is, with a port.
  CHECK(reason("a.test") == "(not refused)");
  CHECK(reason("a.test:80") == "(not refused)");
  CHECK(reason("a.test.").starts_with("Host ends in a dot"));
  CHECK(reason("a.test.:80").starts_with("Host ends in a dot"));
  CHECK(reason("A.test").starts_with("Host in upper case"));
  CHECK(reason("A.TEST:80").starts_with("Host in upper case"));
  CHECK(http("GET / HTTP/1.1\r\nHost: A.test\r\n\r\n").name.view() == "a.test");  // named in the refusal
  // White space after the value: RFC 9110 drops it, some servers keep it.
  for (const char* tail : {"\t", " ", " \t", ":80 "}) {
    CAPTURE(tail);
    CHECK(reason(std::string("a.test") + tail).starts_with("white space after the Host name"));
  }
}

TEST_CASE("gate: HTTP requests that are refused") {
  const auto reason = [](const std::string& s) {
    const GateVerdict v = http(s);
    return v.status == GateParse::reject ? std::string(v.reason) : std::string("(not refused)");
  };
  CHECK(reason("GET http://evil.test/ HTTP/1.1\r\nHost: a.test\r\n\r\n") == "absolute-form request");
  CHECK(reason("CONNECT evil.test:443 HTTP/1.1\r\nHost: a.test\r\n\r\n") == "CONNECT");
  CHECK(reason("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n") == "not HTTP/1.x");
  CHECK(reason("GET /\r\n\r\n") == "bad request line");
  CHECK(reason("GET / HTTP/1.1\r\n\r\n") == "no Host header");
  CHECK(reason("GET / HTTP/1.1\r\nHost: a.test\r\nHost: b.test\r\n\r\n") == "two Host headers");
  CHECK(reason("GET / HTTP/1.1\r\nhOsT: a.test\r\nHOST: a.test\r\n\r\n") == "two Host headers");
  CHECK(reason("GET / HTTP/1.1\r\nX: y\r\n Host: b.test\r\nHost: a.test\r\n\r\n") == "folded header");
  CHECK(reason("GET / HTTP/1.1\r\nHost : a.test\r\n\r\n") == "bad header");
  CHECK(reason("GET / HTTP/1.1\r\nHost: a.test\rX\r\n\r\n") == "bare CR or LF");
  CHECK(reason("GET / HTTP/1.1\nHost: a.test\n\n") == "bare LF");
  CHECK(reason("GET / HTTP/1.1\r\nHost: 203.0.113.5\r\n\r\n") == "IP literal in Host");
  CHECK(reason("GET / HTTP/1.1\r\nHost: [2001:db8::1]:80\r\n\r\n") == "IP literal in Host");
  CHECK(reason("GET / HTTP/1.1\r\nHost: a.test:x\r\n\r\n") == "bad Host");
  CHECK(reason("GET / HTTP/1.1\r\nHost: a test\r\n\r\n") == "bad Host");
  CHECK(reason(std::string("\x16\x03\x01\x02\x00", 5)) == "not HTTP");  // TLS on port 80
  CHECK(reason("GET /" + std::string(kMaxHttpHead, 'a')) == "request head too large");
}

TEST_CASE("gate names: the allowlist's form") {
  GateName n;
  CHECK(to_gate_name("a-b_c.example", n) == NameForm::canonical);
  CHECK(n.view() == "a-b_c.example");
  CHECK(to_gate_name("a-b_c.example.", n) == NameForm::trailing_dot);
  CHECK(n.view() == "a-b_c.example");
  CHECK(to_gate_name("A-b_c.Example", n) == NameForm::upper_case);
  CHECK(n.view() == "a-b_c.example");
  CHECK(to_gate_name("A-b_c.Example.", n) == NameForm::trailing_dot);
  for (const char* bad : {"", ".", "..", "a..b", ".a", "a b", "a/b", "*.a", "a.b..", "A.B "}) {
    CAPTURE(bad);
    CHECK(to_gate_name(bad, n) == NameForm::bad);
  }
  CHECK(to_gate_name(std::string(64, 'a') + ".test", n) == NameForm::bad);
  CHECK(to_gate_name(std::string(63, 'a') + ".test", n) == NameForm::canonical);
  CHECK(to_gate_name(std::string(254, 'a'), n) == NameForm::bad);
  CHECK(to_gate_name(std::string(253, 'a') + ".", n) == NameForm::bad);  // too long even without its dot
}

TEST_CASE("gate bindings: per name and address, expire with the set, bounded") {
  const NameBindings::Clock::time_point t0{1000s};
  IpAddress a;
  a.bytes = {192, 0, 2, 1};
  IpAddress b;
  b.bytes = {192, 0, 2, 2};
  IpAddress a6;
  a6.v6 = true;
  a6.bytes = {192, 0, 2, 1};  // same leading bytes, other family
  NameBindings table(2);
  CHECK(table.bind("www.example.test", a, t0 + 60s, t0));
  CHECK(table.bound("www.example.test", a, t0 + 59s));
  CHECK_FALSE(table.bound("www.example.test", a, t0 + 60s));  // expired with the set element
  CHECK_FALSE(table.bound("other.example.test", a, t0));      // another (allowed) name: not bound here
  CHECK_FALSE(table.bound("www.example.test", b, t0));
  CHECK_FALSE(table.bound("www.example.test", a6, t0));
  // Only ever extended.
  CHECK(table.bind("www.example.test", a, t0 + 10s, t0));
  CHECK(table.bound("www.example.test", a, t0 + 30s));
  CHECK(table.bind("www.example.test", a, t0 + 120s, t0));
  CHECK(table.bound("www.example.test", a, t0 + 100s));
  // Bounded: a full table of live bindings refuses a new one (the gate then
  // refuses that connection); expired ones make room.
  CHECK(table.bind("x.test", b, t0 + 5s, t0));
  CHECK_FALSE(table.bind("y.test", b, t0 + 5s, t0 + 1s));
  // x.test expired at t0 + 5 s, but a full table is swept at most once a
  // second: not yet at t0 + 1.5 s, then at t0 + 6 s.
  CHECK_FALSE(table.bind("y.test", b, t0 + 50s, t0 + 1500ms));
  CHECK(table.bind("y.test", b, t0 + 50s, t0 + 6s));
  CHECK(table.size() == 2);
  table.expire(t0 + 200s);
  CHECK(table.size() == 0);
}

TEST_CASE("gate bindings: release after a run-time deny keeps addresses another allowed name holds") {
  const NameBindings::Clock::time_point t0{1000s};
  auto v4 = [](std::uint8_t last) {
    IpAddress a;
    a.bytes = {192, 0, 2, last};
    return a;
  };
  IpAddress six;
  six.v6 = true;
  six.bytes = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  NameBindings table(16);
  REQUIRE(table.bind("gone.test", v4(1), t0 + 60s, t0));
  REQUIRE(table.bind("gone.test", v4(2), t0 + 60s, t0));
  REQUIRE(table.bind("gone.test", six, t0 + 60s, t0));
  REQUIRE(table.bind("also.gone.test", v4(3), t0 + 60s, t0));
  REQUIRE(table.bind("stays.test", v4(2), t0 + 60s, t0));     // shared, live: kept
  REQUIRE(table.bind("stays.test", v4(3), t0 + 5s, t0));      // shared, expired by then: not kept
  const auto still_allowed = [](std::string_view name) { return name == "stays.test"; };
  std::vector<std::string> orphans;
  for (const IpAddress& a : table.orphans(still_allowed, t0 + 10s)) orphans.push_back(to_string(a));
  std::sort(orphans.begin(), orphans.end());
  CHECK(orphans == std::vector<std::string>{"192.0.2.1", "192.0.2.3", "2001:db8::1"});
  // Listing changes nothing (a failed eviction is retried); forget() drops them.
  CHECK(table.size() == 6);
  CHECK(table.orphans(still_allowed, t0 + 10s).size() == 3);
  table.forget(still_allowed);
  CHECK_FALSE(table.bound("gone.test", v4(2), t0 + 10s));
  CHECK(table.bound("stays.test", v4(2), t0 + 10s));
  CHECK(table.size() == 2);  // the two of stays.test (the expired one goes with expire())
  CHECK(table.orphans(still_allowed, t0 + 10s).empty());
}
