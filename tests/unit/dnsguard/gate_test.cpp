// The connection gate's pure parts: ClientHello, ServerHello and HTTP head
// parsers on canned bytes (split at every offset, across records, no SNI,
// ECH, garbage, oversize, a HelloRetryRequest and the second hello after it,
// names in other forms than the canonical one) and the name → address
// binding table.

#include <doctest/doctest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "dnsguard/gate_bindings.hpp"
#include "dnsguard/gate_parse.hpp"

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
  std::uint16_t extra_extension = 0;  // one more extension of this type (0: none)
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
  if (s.extra_extension != 0) put_ext(exts, s.extra_extension, Bytes(24, 0x44));
  put16(body, exts.size());
  body.insert(body.end(), exts.begin(), exts.end());
  Bytes msg = {1, static_cast<std::uint8_t>(body.size() >> 16), static_cast<std::uint8_t>(body.size() >> 8),
               static_cast<std::uint8_t>(body.size())};
  msg.insert(msg.end(), body.begin(), body.end());
  return msg;
}

// The message in TLS records of at most `per_record` bytes each.
Bytes records(const Bytes& msg, std::size_t per_record = 16384, std::uint8_t type = 22) {
  Bytes out;
  for (std::size_t at = 0; at < msg.size(); at += per_record) {
    const std::size_t n = std::min(per_record, msg.size() - at);
    out.push_back(type);
    put16(out, 0x0301);
    put16(out, n);
    out.insert(out.end(), msg.begin() + static_cast<std::ptrdiff_t>(at), msg.begin() + static_cast<std::ptrdiff_t>(at + n));
  }
  return out;
}

Bytes operator+(Bytes a, const Bytes& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// RFC 8446 4.1.3.
const Bytes kRetryRandom = {0xCF, 0x21, 0xAD, 0x74, 0xE5, 0x9A, 0x61, 0x11, 0xBE, 0x1D, 0x8C,
                            0x02, 0x1E, 0x65, 0xB8, 0x91, 0xC2, 0xA2, 0x11, 0x16, 0x7A, 0xBB,
                            0x8C, 0x5E, 0x07, 0x9E, 0x09, 0xE2, 0xC8, 0xA8, 0x33, 0x9C};
const Bytes kChangeCipherSpec = {20, 3, 3, 0, 1, 1};

// A ServerHello handshake message: TLS 1.3 (supported_versions, key_share),
// or a HelloRetryRequest (its random, a key_share naming the group), or
// TLS 1.2 (no extensions).
enum class Hello : std::uint8_t { tls13, retry, tls12 };
Bytes server_hello_message(Hello kind) {
  Bytes body;
  put16(body, 0x0303);
  if (kind == Hello::retry) body.insert(body.end(), kRetryRandom.begin(), kRetryRandom.end());
  else body.insert(body.end(), 32, 0x44);
  body.push_back(32);
  body.insert(body.end(), 32, 0x22);  // the client's session id, echoed
  put16(body, kind == Hello::tls12 ? 0xc02f : 0x1301);
  body.push_back(0);
  if (kind != Hello::tls12) {
    Bytes exts;
    put_ext(exts, 0x002b, {0x03, 0x04});
    if (kind == Hello::retry) put_ext(exts, 0x0033, {0x00, 0x17});  // key_share: secp256r1, please
    else put_ext(exts, 0x0033, Bytes(36, 0x55));
    put16(body, exts.size());
    body.insert(body.end(), exts.begin(), exts.end());
  }
  Bytes msg = {2, 0, static_cast<std::uint8_t>(body.size() >> 8), static_cast<std::uint8_t>(body.size())};
  return msg + body;
}

GateVerdict hello(const Bytes& stream) {
  static Bytes scratch(kMaxClientHello);
  return parse_client_hello(stream, scratch);
}
GateVerdict retry_hello(const Bytes& stream, const GateVerdict& first) {
  static Bytes scratch(kMaxClientHello);
  return parse_retry_client_hello(stream, scratch, first);
}
Bytes prefix(const Bytes& b, std::size_t n) { return Bytes(b.begin(), b.begin() + static_cast<std::ptrdiff_t>(n)); }
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
    CHECK(v.end == stream.size());
  }
}

TEST_CASE("gate: a ClientHello ends its record; what follows the record is left for later") {
  const Bytes message = hello_message({});
  // Another record after it (a ChangeCipherSpec, a second hello sent early):
  // not part of this decision; `end` says where it starts.
  const Bytes hello_record = records(message);
  const GateVerdict v = hello(hello_record + kChangeCipherSpec + records(message));
  REQUIRE(v.status == GateParse::done);
  CHECK(v.end == hello_record.size());
  // More handshake bytes in the hello's own last record: the server would
  // read them as the next message at once.
  for (const Bytes& tail : {Bytes{1}, records(message)}) {
    const Bytes coalesced = records(message + tail);
    const GateVerdict c = hello(coalesced);
    CHECK(c.status == GateParse::reject);
    CHECK(std::string(c.reason) == "data after the ClientHello in its record");
    // Refused as soon as the record's length shows it, not only once whole.
    CHECK(hello(prefix(coalesced, 5 + message.size())).status == GateParse::reject);
  }
}

TEST_CASE("gate: large (post-quantum sized) ClientHellos, ECH, name normalisation") {
  HelloSpec big;
  big.padding = 1800;
  const GateVerdict v = hello(records(hello_message(big)));
  REQUIRE(v.status == GateParse::done);
  CHECK(v.name.view() == "www.example.test");
  // Encrypted Client Hello: the site served would be the one named inside
  // it, which the gate cannot read — refused, naming the visible name.
  HelloSpec ech;
  ech.ech = true;
  ech.names = {"public.example.test"};
  const GateVerdict e = hello(records(hello_message(ech)));
  REQUIRE(e.status == GateParse::reject);
  CHECK(std::string(e.reason).starts_with("Encrypted Client Hello offered"));
  CHECK(e.name.view() == "public.example.test");
  HelloSpec esni = ech;  // the draft's encrypted_server_name, too
  esni.ech = false;
  esni.extra_extension = 0xffce;
  CHECK(hello(records(hello_message(esni))).status == GateParse::reject);
  HelloSpec plain = ech;  // control: the same hello without it is admitted
  plain.ech = false;
  CHECK(hello(records(hello_message(plain))).status == GateParse::done);
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

TEST_CASE("gate: the server's first message, at every split and across records") {
  struct Case {
    const char* what;
    Bytes stream;
    bool retry;
    std::size_t after = 0;  // bytes of the stream after the message's end
  };
  const Bytes certificate = {11, 0, 0, 3, 0, 0, 0};
  const Bytes retry = records(server_hello_message(Hello::retry));
  const std::vector<Case> cases = {
      {"HelloRetryRequest", retry, true},
      {"HelloRetryRequest in 7-byte records", records(server_hello_message(Hello::retry), 7), true},
      {"TLS 1.3 ServerHello", records(server_hello_message(Hello::tls13)), false},
      {"TLS 1.3 ServerHello in 1-byte records", records(server_hello_message(Hello::tls13), 1), false},
      // TLS 1.2: the rest of the flight (here a Certificate) shares the record.
      {"TLS 1.2 ServerHello with more in its record", records(server_hello_message(Hello::tls12) + certificate),
       false, certificate.size()},
      // After a retry request and its ChangeCipherSpec, the answer to the
      // second hello (what the gate reads next).
      {"ChangeCipherSpec, then a ServerHello", kChangeCipherSpec + records(server_hello_message(Hello::tls13)), false},
      {"a warning alert, then a ServerHello",
       Bytes{21, 3, 3, 0, 2, 1, 112} + records(server_hello_message(Hello::tls12)), false},
  };
  for (const Case& c : cases) {
    CAPTURE(c.what);
    for (std::size_t cut = 0; cut < c.stream.size() - c.after; ++cut) {
      const ServerVerdict v = parse_server_hello(prefix(c.stream, cut));
      if (v.status != GateParse::need_more) {
        FAIL_CHECK("decided early at byte " << cut << ": " << std::string(v.reason));
        break;
      }
    }
    const ServerVerdict v = parse_server_hello(c.stream);
    REQUIRE(v.status == GateParse::done);
    CHECK(v.retry == c.retry);
    CHECK_FALSE(v.alert);
    if (c.retry) CHECK(v.end == c.stream.size());
  }
  // What follows a retry request (its ChangeCipherSpec) is not part of it.
  const ServerVerdict r = parse_server_hello(retry + kChangeCipherSpec);
  REQUIRE(r.status == GateParse::done);
  CHECK(r.retry);
  CHECK(r.end == retry.size());
}

TEST_CASE("gate: server answers that end the handshake or are refused") {
  // A fatal alert: done, nothing more can be asked of the server.
  const ServerVerdict fatal = parse_server_hello(Bytes{21, 3, 3, 0, 2, 2, 40});
  REQUIRE(fatal.status == GateParse::done);
  CHECK(fatal.alert);
  CHECK_FALSE(fatal.retry);
  CHECK(fatal.end == 7);
  CHECK(parse_server_hello(Bytes{21, 3, 3, 0, 2, 2}).status == GateParse::need_more);
  const auto reason = [](const Bytes& stream) {
    const ServerVerdict v = parse_server_hello(stream);
    return v.status == GateParse::reject ? std::string(v.reason) : std::string("(not refused)");
  };
  CHECK(reason({'H', 'T', 'T', 'P', '/'}) == "server did not answer with a TLS handshake");
  CHECK(reason({'H'}) == "server did not answer with a TLS handshake");
  CHECK(reason({23, 3, 3, 0, 1, 0}) == "server did not answer with a TLS handshake");
  CHECK(reason({22, 2, 0, 0, 1, 2}) == "server did not answer with TLS");
  CHECK(reason({22, 3, 3, 0, 0}) == "bad TLS record length from the server");
  CHECK(reason({21, 3, 3, 0, 3, 2, 40, 0}) == "malformed alert from the server");
  CHECK(reason({21, 3, 3, 0, 2, 7, 40}) == "malformed alert from the server");
  CHECK(reason(kChangeCipherSpec + kChangeCipherSpec) == "unexpected ChangeCipherSpec from the server");
  CHECK(reason({20, 3, 3, 0, 1, 2}) == "unexpected ChangeCipherSpec from the server");
  CHECK(reason(records({11, 0, 0, 3, 0, 0, 0})) == "server's first message is not a ServerHello");
  CHECK(reason(records({2, 0, 0, 3, 3, 3, 0})) == "malformed ServerHello");
  CHECK(reason(records({2, 0, 0x40, 0x01})) == "ServerHello too large");
  // Another record type inside the message's records.
  Bytes split = records(server_hello_message(Hello::tls13), 20);
  split.insert(split.begin() + 25, {21, 3, 3, 0, 2, 2, 40});
  CHECK(reason(split) == "record interleaved in the ServerHello");
  // A retry request with more in its record: read before any second hello.
  const Bytes retry = server_hello_message(Hello::retry);
  CHECK(reason(records(retry + server_hello_message(Hello::tls13))) ==
        "data after the HelloRetryRequest in its record");
  // Every byte flipped: never a crash, an overread or an `end` past the bytes.
  const Bytes stream = records(retry, 30) + kChangeCipherSpec;
  for (std::size_t i = 0; i < stream.size(); ++i) {
    Bytes flipped = stream;
    flipped[i] ^= 0x5a;
    const ServerVerdict v = parse_server_hello(flipped);
    if (v.status == GateParse::done) CHECK(v.end <= flipped.size());
  }
}

TEST_CASE("gate: the second ClientHello after a HelloRetryRequest") {
  const GateVerdict first = hello(records(hello_message({})));
  REQUIRE(first.status == GateParse::done);
  const Bytes second = records(hello_message({}));
  // With middlebox compatibility mode's ChangeCipherSpec first, or without;
  // need_more until the hello is whole, then done at its end.
  for (const Bytes& stream : {kChangeCipherSpec + second, second, kChangeCipherSpec + records(hello_message({}), 9)}) {
    for (std::size_t cut = 0; cut < stream.size(); ++cut) {
      const GateVerdict v = retry_hello(prefix(stream, cut), first);
      if (v.status != GateParse::need_more) {
        FAIL_CHECK("decided early at byte " << cut << ": " << std::string(v.reason));
        break;
      }
    }
    const GateVerdict v = retry_hello(stream + Bytes{23, 3, 3}, first);  // what follows is left for later
    REQUIRE(v.status == GateParse::done);
    CHECK(v.name.view() == "www.example.test");
    CHECK(v.end == stream.size());
  }
  const auto reason = [&](const Bytes& stream, const GateVerdict& against) {
    const GateVerdict v = retry_hello(stream, against);
    return v.status == GateParse::reject ? std::string(v.reason) : std::string("(not refused)");
  };
  // Another tenant's name: the attack. Refused, naming the new name.
  HelloSpec other;
  other.names = {"other.example.test"};
  const GateVerdict switched = retry_hello(kChangeCipherSpec + records(hello_message(other)), first);
  CHECK(switched.status == GateParse::reject);
  CHECK(std::string(switched.reason) == "server name changed after HelloRetryRequest");
  CHECK(switched.name.view() == "other.example.test");
  // The same name in another form is not the same bytes.
  HelloSpec upper;
  upper.names = {"WWW.example.test"};
  CHECK(reason(records(hello_message(upper)), first).starts_with("server name in upper case"));
  HelloSpec none;
  none.names.clear();
  CHECK(reason(records(hello_message(none)), first) == "no server name");
  HelloSpec ech;
  ech.ech = true;
  CHECK(reason(records(hello_message(ech)), first).starts_with("Encrypted Client Hello offered"));
  // Anything but the optional ChangeCipherSpec and a hello.
  CHECK(reason({20, 3, 3, 0, 1, 2}, first) == "malformed ChangeCipherSpec");
  CHECK(reason({20, 3, 1}, first) == "malformed ChangeCipherSpec");
  CHECK(retry_hello({20, 3, 3}, first).status == GateParse::need_more);
  // Early data (0-RTT) records, an alert, a second ChangeCipherSpec.
  for (const Bytes& before : {Bytes{23, 3, 3, 0, 1, 0}, kChangeCipherSpec + Bytes{21, 3, 3, 0, 2, 2, 40},
                              kChangeCipherSpec + kChangeCipherSpec}) {
    CHECK(reason(before + second, first) == "no second ClientHello after HelloRetryRequest");
  }
  Bytes server_hello = hello_message({});
  server_hello[0] = 2;
  CHECK(reason(records(server_hello), first) == "not a ClientHello");
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

TEST_CASE("gate bindings: the journal is told of a new pair and of an extension past what it holds, not of a hit") {
  using Clock = NameBindings::Clock;
  const Clock::time_point t0{1000s};
  IpAddress a;
  a.bytes = {192, 0, 2, 1};
  NameBindings table(4);
  Clock::time_point to_journal;
  REQUIRE(table.bind("www.example.test", a, t0 + 60s, t0, &to_journal, 2s));
  CHECK(to_journal == t0 + 62s);  // new: with the slack
  // A cache hit re-binds with an expiry within the slack: no write.
  REQUIRE(table.bind("www.example.test", a, t0 + 61s, t0 + 30s, &to_journal, 2s));
  CHECK(to_journal == Clock::time_point{});
  REQUIRE(table.bind("www.example.test", a, t0 + 10s, t0 + 30s, &to_journal, 2s));
  CHECK(to_journal == Clock::time_point{});
  // A new answer extends it past the journal: written again.
  REQUIRE(table.bind("www.example.test", a, t0 + 120s, t0 + 60s, &to_journal, 2s));
  CHECK(to_journal == t0 + 122s);
  std::vector<std::pair<std::string, Clock::time_point>> live;
  table.for_each_live(t0 + 100s, [&](std::string_view name, const IpAddress& addr, Clock::time_point journalled) {
    CHECK(addr == a);
    live.emplace_back(std::string(name), journalled);
  });
  CHECK(live == std::vector<std::pair<std::string, Clock::time_point>>{{"www.example.test", t0 + 122s}});
  live.clear();
  table.for_each_live(t0 + 120s, [&](std::string_view name, const IpAddress&, Clock::time_point j) {
    live.emplace_back(std::string(name), j);
  });
  CHECK(live.empty());  // expired bindings are not journalled again
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
