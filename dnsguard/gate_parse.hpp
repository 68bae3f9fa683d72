#pragma once
// The connection gate's parsers: what name does the first flight
// of a TLS or HTTP connection ask for? Pure functions over the bytes read so
// far — no I/O, no allocation, no exceptions; every read bounds-checked.
// The gate calls them again as more bytes arrive until they say done or
// reject; `max_bytes` bounds how much it ever reads before deciding.
//
//   stream prefix ──parse_client_hello()──▶ need_more | done(server name) | reject(reason)
//   stream prefix ──parse_http_head()─────▶ need_more | done(Host)        | reject(reason)
//   server's bytes ─parse_server_hello()──▶ need_more | done(retry?)      | reject(reason)
//   after a retry ──parse_retry_client_hello()──▶ the second hello, held to the first's name
//
// Strict on purpose: anything a server could read differently from us (two
// names, a name with odd bytes, a fragmented or oversized hello, absolute
// request targets, folded or duplicate Host headers) is refused, because the
// server, not this parser, decides which site answers. Names must come in
// the one form the gate judges — lower case, no trailing dot, no white space
// after a Host — because servers differ in how they compare the other
// forms, and one that matches names byte for byte routes `A.example` or
// `a.example.` to a site other than the one the gate admitted.

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace cagent::dnsguard {

enum class GateParse : std::uint8_t { need_more, done, reject };

// A DNS name as the gate compares it: lowercase, no trailing dot.
struct GateName {
  std::array<char, 253> text{};
  std::size_t size = 0;
  std::string_view view() const noexcept { return {text.data(), size}; }
};

struct GateVerdict {
  GateParse status = GateParse::need_more;
  GateName name;                  // when done (and, lowercased, when refused for its form)
  const char* reason = "";        // when reject: a short, fixed text for logs
  std::size_t end = 0;            // TLS, when done: stream bytes up to the end of the hello's record
};

// The server's first handshake message, as far as the gate needs it.
struct ServerVerdict {
  GateParse status = GateParse::need_more;
  bool retry = false;             // when done: a HelloRetryRequest (RFC 8446 4.1.4)
  bool alert = false;             // when done: a fatal alert instead of a ServerHello
  std::size_t end = 0;            // when done: stream bytes up to the end of the record holding its end
  const char* reason = "";        // when reject
};

// The largest ClientHello the gate reassembles (post-quantum key shares make
// 1.5–2 KB common; this leaves room for padding and many extensions).
inline constexpr std::size_t kMaxClientHello = 16384;
// The most of an HTTP request head the gate reads.
inline constexpr std::size_t kMaxHttpHead = 16384;

// The most of a server's first handshake message the gate reads (a
// ServerHello is a few hundred bytes; TLS 1.2 servers may send the rest of
// their flight in the same records, which the gate does not need).
inline constexpr std::size_t kMaxServerHello = 16384;

// TLS: one or more handshake records whose fragments hold a ClientHello
// (reassembled across records and across however the bytes arrived). The
// server_name extension's single host_name is the answer; no SNI, anything
// but a handshake first, another handshake message (even in the hello's own
// last record, which RFC 8446 5.1 makes end with it), a malformed or
// oversized hello → reject. `scratch` (>= kMaxClientHello bytes) receives the
// reassembled message. `end`: where the bytes after the hello start.
GateVerdict parse_client_hello(std::span<const std::uint8_t> stream, std::span<std::uint8_t> scratch) noexcept;

// TLS, the server's bytes after the ClientHello: its first handshake
// message, which must be a ServerHello (a HelloRetryRequest is one, told
// by its random, RFC 8446 4.1.3). One ChangeCipherSpec record before it is
// skipped (middlebox compatibility mode sends one right after a retry
// request, so it opens the server's bytes after one), and so are warning
// alerts; a fatal alert ends the handshake: done with `alert`. A retry
// request must end its record: the server reads nothing more of it.
ServerVerdict parse_server_hello(std::span<const std::uint8_t> stream) noexcept;

// TLS, the client's bytes after its first ClientHello, once the server
// answered with a HelloRetryRequest: one optional ChangeCipherSpec record
// (middlebox compatibility mode) and the second ClientHello, parsed as the
// first. The server picks its site from this one, so it must name what
// `first` named (a canonical name, so the same bytes) and offer ECH as the
// first did; otherwise reject, with the new name in `name`.
GateVerdict parse_retry_client_hello(std::span<const std::uint8_t> stream, std::span<std::uint8_t> scratch,
                                     const GateVerdict& first) noexcept;

// HTTP/1.x: the request line and headers of the first request. Origin-form
// targets only ("/…", or "*" for OPTIONS); absolute-form, CONNECT, HTTP/2
// prior knowledge, HTTP/0.9 → reject. Exactly one Host header with a name
// (an optional port is dropped; an IP literal is not a name) → done.
GateVerdict parse_http_head(std::span<const std::uint8_t> stream) noexcept;

// How a name's bytes compare with the one form the gate judges.
enum class NameForm : std::uint8_t { canonical, bad, trailing_dot, upper_case };

// `text` as a gate name: letters, digits, '-', '_' and dots between
// non-empty labels of at most 63, at most 253 characters, lower case, no
// trailing dot → canonical. Otherwise valid but for one trailing dot or
// upper-case letters → trailing_dot / upper_case (the dot dropped and the
// letters lowered in `out`, so a refusal can name the site); anything else
// → bad.
NameForm to_gate_name(std::string_view text, GateName& out) noexcept;

}  // namespace cagent::dnsguard
