#pragma once
// HTTP/1.1 requests as the secret relay reads them: a streaming parser for
// the client → server direction of one decrypted connection.
//
// The relay must see every request's head (to check its Host and replace
// placeholders) and must agree with the server on where each request ends,
// or an agent could hide a second request inside the first one's body that
// the relay never inspected (request smuggling). So this parser is strict
// where servers disagree with each other, and refuses rather than guesses:
//   - lines end in CRLF; a bare CR or LF, obsolete line folding, a space
//     before a header's colon, a name that is not a token: refused;
//   - a body is framed by `Transfer-Encoding: chunked` (exactly that) or one
//     `Content-Length` (repeats must agree); both at once, or any other
//     transfer coding: refused;
//   - heads are bounded (kMaxHeadBytes, kMaxHeaders), chunk-size lines too.
// Bodies are not changed: their bytes, chunk framing included, are handed
// on as they arrive (a 20 MB upload is never held in memory), so the parser
// only follows the framing to find where the next request starts.
//
// Pure: no I/O; fed in pieces split anywhere (tests feed every split).

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace cagent::relay {

inline constexpr std::size_t kMaxHeadBytes = 64 * 1024;
inline constexpr std::size_t kMaxHeaders = 128;
// A chunk-size line with its extensions; the size itself is at most 16 hex digits.
inline constexpr std::size_t kMaxChunkLine = 1024;

struct Header {
  std::string name;   // as sent
  std::string value;  // leading and trailing spaces/tabs removed
};

struct RequestHead {
  std::string method;
  std::string target;
  std::string version;  // "HTTP/1.1" or "HTTP/1.0"
  std::vector<Header> headers;

  // The first header of that name (case-insensitive), or nullopt.
  std::optional<std::string_view> find(std::string_view name) const;
  // Every header of that name, in order.
  std::vector<std::string_view> all(std::string_view name) const;
  // The head as it goes on the wire (request line, headers, empty line).
  std::string serialize() const;
};

// How a request's body is framed, decided from its head.
struct BodyFraming {
  enum class Kind : std::uint8_t { none, length, chunked };
  Kind kind = Kind::none;
  std::uint64_t length = 0;  // for Kind::length
};

// The framing a head declares, or an error (one line) when the relay must
// not guess. Requests only: a request without either header has no body.
std::optional<BodyFraming> body_framing(const RequestHead& head, std::string& error);

class RequestParser {
 public:
  // What one call to feed() produced, in order. `body` spans point into the
  // bytes passed to feed() and are valid until the next call.
  struct Event {
    enum class Kind : std::uint8_t { head, body, end };
    Kind kind;
    // Kind::body: bytes to forward as they are. Body data points into the
    // bytes passed to feed(); chunk framing (size lines, the CRLF after a
    // chunk, trailers) is held back until it is complete and valid, then
    // carried in `framing`, so nothing malformed ever reaches the server.
    std::span<const std::uint8_t> data;
    std::string framing;
    RequestHead head;  // Kind::head: the request's head
    std::string_view bytes() const noexcept {
      return framing.empty() ? std::string_view(reinterpret_cast<const char*>(data.data()), data.size())
                             : std::string_view(framing);
    }
  };

  // Consumes what it can of `in` and appends events to `out`. The caller
  // checks each head event's head (and may refuse the connection) before it
  // forwards the body events that follow it. Returns
  // false once the stream is malformed (error() says why); nothing after an
  // error is parsed.
  bool feed(std::span<const std::uint8_t> in, std::vector<Event>& out);

  const std::string& error() const noexcept { return error_; }
  // True between requests (nothing of the next one read yet).
  bool idle() const noexcept { return state_ == State::head && buffer_.empty(); }
  std::uint64_t requests() const noexcept { return requests_; }

 private:
  enum class State : std::uint8_t { head, length_body, chunk_size, chunk_data, chunk_data_end, trailer, failed };
  bool fail(std::string why);
  bool finish_head(std::vector<Event>& out);
  bool parse_head(std::string_view text);
  bool parse_chunk_size(std::string_view line);

  State state_ = State::head;
  std::string buffer_;       // the head, a chunk-size line or a trailer line being read
  RequestHead head_;
  std::uint64_t left_ = 0;   // bytes of the body (or the current chunk) still to come
  std::size_t trailer_bytes_ = 0;
  std::uint64_t requests_ = 0;
  std::string error_;
};

}  // namespace cagent::relay
