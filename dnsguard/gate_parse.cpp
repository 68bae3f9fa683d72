#include "dnsguard/gate_parse.hpp"

#include <algorithm>
#include <cstring>

namespace cagent::dnsguard {
namespace {

constexpr std::uint8_t kTlsChangeCipherSpec = 20;
constexpr std::uint8_t kTlsAlert = 21;
constexpr std::uint8_t kTlsHandshake = 22;
constexpr std::uint8_t kClientHello = 1;
constexpr std::uint8_t kServerHello = 2;
constexpr std::uint8_t kAlertWarning = 1;
constexpr std::uint8_t kAlertFatal = 2;
// RFC 8446 4.1.3: a ServerHello with this random is a HelloRetryRequest
// (SHA-256 of "HelloRetryRequest").
constexpr std::array<std::uint8_t, 32> kRetryRandom = {
    0xCF, 0x21, 0xAD, 0x74, 0xE5, 0x9A, 0x61, 0x11, 0xBE, 0x1D, 0x8C, 0x02, 0x1E, 0x65, 0xB8, 0x91,
    0xC2, 0xA2, 0x11, 0x16, 0x7A, 0xBB, 0x8C, 0x5E, 0x07, 0x9E, 0x09, 0xE2, 0xC8, 0xA8, 0x33, 0x9C};
// The one ChangeCipherSpec record TLS 1.3 allows (RFC 8446 5, D.4).
constexpr std::array<std::uint8_t, 6> kChangeCipherSpecRecord = {20, 3, 3, 0, 1, 1};
// The smallest ServerHello body: version, random, empty session id,
// cipher suite, compression method.
constexpr std::size_t kMinServerHelloBody = 2 + 32 + 1 + 2 + 1;
constexpr std::size_t kRecordHeader = 5;
constexpr std::size_t kMaxRecord = 16384 + 256;  // TLSPlaintext bound, with slack for TLS 1.2 stacks
constexpr std::uint16_t kExtServerName = 0;
constexpr std::uint16_t kExtEch = 0xfe0d;   // Encrypted Client Hello (RFC 9849)
constexpr std::uint16_t kExtEsni = 0xffce;  // its draft predecessor, encrypted_server_name
constexpr std::size_t kMaxExtensions = 128;

GateVerdict reject(const char* reason) noexcept {
  GateVerdict v;
  v.status = GateParse::reject;
  v.reason = reason;
  return v;
}
GateVerdict need_more() noexcept { return {}; }
// A refusal for a name's form, naming the site it was meant for.
GateVerdict reject_named(const GateName& name, const char* reason) noexcept {
  GateVerdict v = reject(reason);
  v.name = name;
  return v;
}
ServerVerdict server_reject(const char* reason) noexcept {
  ServerVerdict v;
  v.status = GateParse::reject;
  v.reason = reason;
  return v;
}

std::uint16_t be16(const std::uint8_t* p) noexcept { return static_cast<std::uint16_t>((p[0] << 8) | p[1]); }

char lower(char c) noexcept { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; }

// The ClientHello body (after the 4-byte handshake header): the one
// host_name of server_name, and whether ECH is offered.
GateVerdict parse_hello_body(std::span<const std::uint8_t> b) noexcept {
  std::size_t p = 2 + 32;  // legacy_version, random
  if (b.size() < p + 1) return reject("malformed ClientHello");
  const std::size_t session_id = b[p];
  if (session_id > 32) return reject("malformed ClientHello");
  p += 1 + session_id;
  if (b.size() < p + 2) return reject("malformed ClientHello");
  const std::size_t suites = be16(&b[p]);
  if (suites < 2 || suites % 2 != 0) return reject("malformed ClientHello");
  p += 2 + suites;
  if (b.size() < p + 1) return reject("malformed ClientHello");
  const std::size_t compression = b[p];
  if (compression < 1) return reject("malformed ClientHello");
  p += 1 + compression;
  if (p > b.size()) return reject("malformed ClientHello");
  if (p == b.size()) return reject("no server name");  // no extensions at all
  if (b.size() < p + 2 || be16(&b[p]) != b.size() - p - 2) return reject("malformed ClientHello");
  p += 2;

  GateVerdict v;
  bool have_name = false;
  bool ech = false;
  std::array<std::uint16_t, kMaxExtensions> seen{};
  std::size_t n_seen = 0;
  while (p < b.size()) {
    if (b.size() - p < 4) return reject("malformed ClientHello");
    const std::uint16_t type = be16(&b[p]);
    const std::size_t len = be16(&b[p + 2]);
    p += 4;
    if (b.size() - p < len) return reject("malformed ClientHello");
    // RFC 8446 4.2: no extension type twice (which SNI would a server take?).
    if (std::find(seen.begin(), seen.begin() + static_cast<std::ptrdiff_t>(n_seen), type) !=
        seen.begin() + static_cast<std::ptrdiff_t>(n_seen))
      return reject("duplicate extension");
    if (n_seen == seen.size()) return reject("too many extensions");
    seen[n_seen++] = type;
    const std::span<const std::uint8_t> data = b.subspan(p, len);
    p += len;
    if (type == kExtEch || type == kExtEsni) ech = true;
    if (type != kExtServerName) continue;
    // ServerNameList: exactly one entry, of type host_name (RFC 6066 3).
    if (data.size() < 2 || be16(data.data()) != data.size() - 2) return reject("malformed server name");
    if (data.size() < 5 || data[2] != 0) return reject("malformed server name");
    const std::size_t name_len = be16(&data[3]);
    if (name_len != data.size() - 5) return reject("more than one server name");
    const std::string_view text(reinterpret_cast<const char*>(data.data() + 5), name_len);
    switch (to_gate_name(text, v.name)) {
      case NameForm::canonical:
        break;
      case NameForm::trailing_dot:
        return reject_named(v.name, "server name ends in a dot (RFC 6066 forbids it; a server may route it "
                                    "to another site)");
      case NameForm::upper_case:
        return reject_named(v.name, "server name in upper case (a server may route it to another site; "
                                    "send it in lower case)");
      case NameForm::bad:
        return reject("bad server name");
    }
    have_name = true;
  }
  if (!have_name) return reject("no server name");
  // With Encrypted Client Hello a front end serves the site named in the
  // encrypted inner hello, whatever the visible name: the gate cannot judge
  // it. ECH parameters never reach the cage (dnsguard strips them from
  // HTTPS/SVCB answers), but the agent may know a front end's public ECH
  // key; and browsers send a placeholder (GREASE) indistinguishable from
  // the real thing — they must run with ECH off.
  if (ech)
    return reject_named(v.name, "Encrypted Client Hello offered (the server would serve the site named inside "
                                "it, which the gate cannot read; turn ECH off in the client)");
  v.status = GateParse::done;
  return v;
}

bool is_token_char(char c) noexcept {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         std::strchr("!#$%&'*+-.^_`|~", c) != nullptr;
}

bool ieq(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (lower(a[i]) != lower(b[i])) return false;
  return true;
}

bool is_ows(char c) noexcept { return c == ' ' || c == '\t'; }

// "METHOD SP origin-form SP HTTP/1.x"
GateVerdict check_request_line(std::string_view line) noexcept {
  const std::size_t sp1 = line.find(' ');
  if (sp1 == std::string_view::npos || sp1 == 0) return reject("bad request line");
  const std::string_view method = line.substr(0, sp1);
  if (!std::all_of(method.begin(), method.end(), is_token_char)) return reject("bad request line");
  const std::size_t sp2 = line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || line.find(' ', sp2 + 1) != std::string_view::npos)
    return reject("bad request line");
  const std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  const std::string_view version = line.substr(sp2 + 1);
  if (version != "HTTP/1.1" && version != "HTTP/1.0") return reject("not HTTP/1.x");
  if (method == "CONNECT") return reject("CONNECT");
  const bool origin_form = !target.empty() && target.front() == '/';
  const bool asterisk = target == "*" && method == "OPTIONS";
  if (!origin_form && !asterisk) return reject("absolute-form request");
  for (char c : target)
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) return reject("bad request line");
  return need_more();
}

}  // namespace

NameForm to_gate_name(std::string_view text, GateName& out) noexcept {
  const bool dot = !text.empty() && text.back() == '.';
  if (dot) text.remove_suffix(1);
  if (text.empty() || text.size() > out.text.size()) return NameForm::bad;
  bool upper = false;
  std::size_t label = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = lower(text[i]);
    upper = upper || c != text[i];
    if (c == '.') {
      if (label == 0) return NameForm::bad;
      label = 0;
    } else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_') {
      if (++label > 63) return NameForm::bad;
    } else {
      return NameForm::bad;
    }
    out.text[i] = c;
  }
  if (label == 0) return NameForm::bad;
  out.size = text.size();
  if (dot) return NameForm::trailing_dot;
  return upper ? NameForm::upper_case : NameForm::canonical;
}

GateVerdict parse_client_hello(std::span<const std::uint8_t> stream, std::span<std::uint8_t> scratch) noexcept {
  if (scratch.size() < kMaxClientHello) return reject("internal: scratch too small");
  std::size_t pos = 0;         // next record header in `stream`
  std::size_t collected = 0;   // handshake bytes reassembled into `scratch`
  std::size_t record_end = 0;  // `collected` once the record being read is whole
  for (;;) {
    // Once the handshake header is in, the message's length says when to stop.
    if (collected >= 4) {
      if (scratch[0] != kClientHello) return reject("not a ClientHello");
      const std::size_t len = (std::size_t{scratch[1]} << 16) | (std::size_t{scratch[2]} << 8) | scratch[3];
      if (4 + len > kMaxClientHello) return reject("ClientHello too large");
      // The server would read what follows in the record as the next
      // message; RFC 8446 5.1 makes a ClientHello end its record.
      if (record_end > 4 + len) return reject("data after the ClientHello in its record");
      if (collected == 4 + len) {
        GateVerdict v = parse_hello_body(scratch.subspan(4, len));
        v.end = pos;
        return v;
      }
    }
    if (pos == stream.size()) return need_more();
    if (stream.size() - pos < kRecordHeader) {
      if (stream[pos] != kTlsHandshake) return reject(pos == 0 ? "not a TLS handshake" : "record interleaved in the ClientHello");
      return need_more();
    }
    const std::uint8_t* h = stream.data() + pos;
    if (h[0] != kTlsHandshake) return reject(pos == 0 ? "not a TLS handshake" : "record interleaved in the ClientHello");
    if (h[1] != 3) return reject("not TLS");
    const std::size_t len = be16(h + 3);
    if (len == 0 || len > kMaxRecord) return reject("bad TLS record length");
    const std::size_t available = std::min(len, stream.size() - pos - kRecordHeader);
    record_end = collected + len;
    // Never more than the scratch holds: a longer message is refused above
    // as soon as its header is in.
    const std::size_t take = std::min(available, kMaxClientHello - collected);
    std::memcpy(scratch.data() + collected, h + kRecordHeader, take);
    collected += take;
    // A record still arriving: what is here may already show a refusal;
    // otherwise the loop asks for more.
    pos = available < len ? stream.size() : pos + kRecordHeader + len;
  }
}

ServerVerdict parse_server_hello(std::span<const std::uint8_t> stream) noexcept {
  std::size_t pos = 0;   // next record header in `stream`
  std::size_t seen = 0;  // bytes of the handshake message so far
  std::array<std::uint8_t, 4 + kMinServerHelloBody> head{};  // its first bytes: header, version, random
  bool skipped_change_cipher_spec = false;
  for (;;) {
    if (pos == stream.size()) return {};
    const std::uint8_t* h = stream.data() + pos;
    const std::size_t left = stream.size() - pos;
    if (seen > 0 && h[0] != kTlsHandshake) return server_reject("record interleaved in the ServerHello");
    if (h[0] != kTlsHandshake && h[0] != kTlsAlert && h[0] != kTlsChangeCipherSpec)
      return server_reject("server did not answer with a TLS handshake");
    if (left < kRecordHeader) return {};
    if (h[1] != 3) return server_reject("server did not answer with TLS");
    const std::size_t len = be16(h + 3);
    if (len == 0 || len > kMaxRecord) return server_reject("bad TLS record length from the server");
    const std::size_t available = std::min(len, left - kRecordHeader);
    const std::uint8_t* body = h + kRecordHeader;
    if (h[0] == kTlsChangeCipherSpec) {
      if (skipped_change_cipher_spec || len != 1 || (available == 1 && body[0] != 1))
        return server_reject("unexpected ChangeCipherSpec from the server");
      if (available < len) return {};
      skipped_change_cipher_spec = true;
      pos += kRecordHeader + len;
      continue;
    }
    if (h[0] == kTlsAlert) {
      // One alert per record (RFC 8446 5.1).
      if (len != 2) return server_reject("malformed alert from the server");
      if (available < len) return {};
      if (body[0] == kAlertFatal) {
        ServerVerdict v;
        v.status = GateParse::done;
        v.alert = true;
        v.end = pos + kRecordHeader + len;
        return v;
      }
      if (body[0] != kAlertWarning) return server_reject("malformed alert from the server");
      // A TLS 1.2 server may warn (e.g. unrecognized_name) and go on.
      pos += kRecordHeader + len;
      continue;
    }
    const std::size_t start = seen;  // the message offset of this record's first byte
    for (std::size_t i = 0; i < available && start + i < head.size(); ++i) head[start + i] = body[i];
    seen += available;
    if (seen >= 4) {
      if (head[0] != kServerHello) return server_reject("server's first message is not a ServerHello");
      const std::size_t size = 4 + ((std::size_t{head[1]} << 16) | (std::size_t{head[2]} << 8) | head[3]);
      if (size < 4 + kMinServerHelloBody) return server_reject("malformed ServerHello");
      if (size > kMaxServerHello) return server_reject("ServerHello too large");
      if (seen >= size) {
        ServerVerdict v;
        v.status = GateParse::done;
        v.retry = std::equal(kRetryRandom.begin(), kRetryRandom.end(), head.begin() + 6);
        if (!v.retry) return v;
        // What followed in its record would be read as the next message,
        // before the client's second hello: nothing may.
        if (start + len != size) return server_reject("data after the HelloRetryRequest in its record");
        v.end = pos + kRecordHeader + len;
        return v;
      }
    }
    if (available < len) return {};
    pos += kRecordHeader + len;
  }
}

GateVerdict parse_retry_client_hello(std::span<const std::uint8_t> stream, std::span<std::uint8_t> scratch,
                                     const GateVerdict& first) noexcept {
  std::size_t skip = 0;
  if (!stream.empty() && stream[0] == kTlsChangeCipherSpec) {
    skip = std::min(stream.size(), kChangeCipherSpecRecord.size());
    if (!std::equal(stream.begin(), stream.begin() + static_cast<std::ptrdiff_t>(skip),
                    kChangeCipherSpecRecord.begin()))
      return reject("malformed ChangeCipherSpec");
    if (skip < kChangeCipherSpecRecord.size()) return need_more();
  }
  if (stream.size() > skip && stream[skip] != kTlsHandshake)
    return reject("no second ClientHello after HelloRetryRequest");
  GateVerdict v = parse_client_hello(stream.subspan(skip), scratch);
  if (v.status != GateParse::done) return v;
  v.end += skip;
  if (v.name.view() != first.name.view()) return reject_named(v.name, "server name changed after HelloRetryRequest");
  return v;
}

GateVerdict parse_http_head(std::span<const std::uint8_t> stream) noexcept {
  const std::string_view s(reinterpret_cast<const char*>(stream.data()), std::min(stream.size(), kMaxHttpHead));
  // The request line can be judged as soon as it is complete.
  const std::size_t first_end = s.find("\r\n");
  if (first_end == std::string_view::npos) {
    if (s.find('\n') != std::string_view::npos) return reject("bare LF");
    if (s.size() >= kMaxHttpHead) return reject("request head too large");
    // An early no for what cannot become HTTP (e.g. a TLS ClientHello).
    for (char c : s)
      if ((static_cast<unsigned char>(c) < 0x20 && c != '\r') || static_cast<unsigned char>(c) >= 0x7f)
        return reject("not HTTP");
    return need_more();
  }
  if (GateVerdict line = check_request_line(s.substr(0, first_end)); line.status == GateParse::reject) return line;
  const std::size_t head_end = s.find("\r\n\r\n");
  if (head_end == std::string_view::npos) {
    if (s.size() >= kMaxHttpHead) return reject("request head too large");
    return need_more();
  }
  GateVerdict v;
  std::size_t hosts = 0;
  std::size_t p = first_end + 2;
  while (p < head_end + 2) {
    const std::size_t eol = s.find("\r\n", p);
    const std::string_view line = s.substr(p, eol - p);
    p = eol + 2;
    if (line.find('\r') != std::string_view::npos || line.find('\n') != std::string_view::npos)
      return reject("bare CR or LF");
    if (line.front() == ' ' || line.front() == '\t') return reject("folded header");
    const std::size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) return reject("bad header");
    const std::string_view name = line.substr(0, colon);
    if (!std::all_of(name.begin(), name.end(), is_token_char)) return reject("bad header");
    if (!ieq(name, "host")) continue;
    if (++hosts > 1) return reject("two Host headers");
    // OWS before the value is syntax (RFC 9110 5.6.3); after it, servers
    // differ: some keep it as part of the name.
    std::string_view value = line.substr(colon + 1);
    while (!value.empty() && is_ows(value.front())) value.remove_prefix(1);
    if (!value.empty() && is_ows(value.back()))
      return reject("white space after the Host name (a server may read it as part of the name)");
    if (!value.empty() && value.front() == '[') return reject("IP literal in Host");
    if (const std::size_t c = value.rfind(':'); c != std::string_view::npos) {
      const std::string_view port = value.substr(c + 1);
      if (port.empty() || port.size() > 5 || !std::all_of(port.begin(), port.end(), [](char d) { return d >= '0' && d <= '9'; }))
        return reject("bad Host");
      value = value.substr(0, c);
    }
    const NameForm form = to_gate_name(value, v.name);
    if (form == NameForm::bad) return reject("bad Host");
    if (std::all_of(value.begin(), value.end(), [](char d) { return (d >= '0' && d <= '9') || d == '.'; }))
      return reject("IP literal in Host");
    if (form == NameForm::trailing_dot)
      return reject_named(v.name, "Host ends in a dot (a server may route it to another site)");
    if (form == NameForm::upper_case)
      return reject_named(v.name, "Host in upper case (a server may route it to another site; send it in "
                                  "lower case)");
  }
  if (hosts == 0) return reject("no Host header");
  v.status = GateParse::done;
  return v;
}

}  // namespace cagent::dnsguard
