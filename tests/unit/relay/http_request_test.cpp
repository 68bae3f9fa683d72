#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "launcher/relay/http_request.hpp"

using cagent::relay::RequestParser;

namespace {

std::span<const std::uint8_t> bytes(std::string_view s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

// What the parser makes of a stream fed in the pieces `cuts` gives:
// "H<method> <target>" per head, the forwarded body bytes, "E" per end;
// or "error: …".
struct Run {
  std::vector<std::string> heads;
  std::string forwarded;  // every body byte, in order
  int ends = 0;
  std::string error;
};

Run feed_in_pieces(std::string_view stream, const std::vector<std::size_t>& cuts) {
  Run run;
  RequestParser parser;
  std::size_t from = 0;
  std::vector<std::size_t> bounds = cuts;
  bounds.push_back(stream.size());
  for (std::size_t to : bounds) {
    std::vector<RequestParser::Event> events;
    const bool ok = parser.feed(bytes(stream.substr(from, to - from)), events);
    for (const auto& e : events) {
      switch (e.kind) {
        case RequestParser::Event::Kind::head:
          run.heads.push_back(e.head.method + " " + e.head.target);
          break;
        case RequestParser::Event::Kind::body:
          run.forwarded += e.bytes();
          break;
        case RequestParser::Event::Kind::end:
          ++run.ends;
          break;
      }
    }
    if (!ok) {
      run.error = parser.error();
      return run;
    }
    from = to;
  }
  return run;
}

// The same result whichever single byte offset the stream is split at, and
// fed one byte at a time.
Run feed_every_split(std::string_view stream) {
  const Run whole = feed_in_pieces(stream, {});
  for (std::size_t cut = 0; cut <= stream.size(); ++cut) {
    const Run split = feed_in_pieces(stream, {cut});
    CHECK(split.heads == whole.heads);
    CHECK(split.forwarded == whole.forwarded);
    CHECK(split.ends == whole.ends);
    CHECK(split.error == whole.error);
  }
  std::vector<std::size_t> every;
  for (std::size_t i = 1; i < stream.size(); ++i) every.push_back(i);
  const Run bytewise = feed_in_pieces(stream, every);
  CHECK(bytewise.forwarded == whole.forwarded);
  CHECK(bytewise.ends == whole.ends);
  CHECK(bytewise.error == whole.error);
  return whole;
}

}  // namespace

TEST_CASE("request parser: keep-alive requests with Content-Length and chunked bodies, split anywhere") {
  const std::string stream =
      "GET /a HTTP/1.1\r\nHost: api.example\r\n\r\n"
      "POST /b HTTP/1.1\r\nHost: api.example\r\nContent-Length: 5\r\n\r\nhello"
      "POST /c HTTP/1.1\r\nHost: api.example\r\nTransfer-Encoding: chunked\r\n\r\n"
      "3;ext=1\r\nabc\r\n0\r\nX-Trailer: t\r\n\r\n"
      "\r\nGET /d HTTP/1.0\r\nHost: api.example\r\n\r\n";
  const Run run = feed_every_split(stream);
  CHECK(run.error.empty());
  CHECK(run.heads == std::vector<std::string>{"GET /a", "POST /b", "POST /c", "GET /d"});
  CHECK(run.ends == 4);
  CHECK(run.forwarded == "hello3;ext=1\r\nabc\r\n0\r\nX-Trailer: t\r\n\r\n");
}

TEST_CASE("request parser: headers are kept in order with their values trimmed") {
  RequestParser parser;
  std::vector<RequestParser::Event> events;
  REQUIRE(parser.feed(bytes("GET / HTTP/1.1\r\nHost:  h.example \r\nX-A: 1\r\nx-a:\t2\r\nExpect: 100-continue\r\n\r\n"),
                      events));
  REQUIRE(events.size() == 2);
  const auto& head = events.front().head;
  REQUIRE(head.headers.size() == 4);
  CHECK(head.find("HOST") == std::optional<std::string_view>("h.example"));
  CHECK(head.all("x-a") == std::vector<std::string_view>{"1", "2"});
  CHECK(head.serialize() ==
        "GET / HTTP/1.1\r\nHost: h.example\r\nX-A: 1\r\nx-a: 2\r\nExpect: 100-continue\r\n\r\n");
}

TEST_CASE("request parser: a body's bytes are handed on as they arrive, not held") {
  RequestParser parser;
  std::vector<RequestParser::Event> events;
  REQUIRE(parser.feed(bytes("PUT /u HTTP/1.1\r\nHost: h\r\nContent-Length: 20000000\r\n\r\n"), events));
  REQUIRE(events.size() == 1);
  const std::string piece(65536, 'x');
  std::uint64_t forwarded = 0;
  int ends = 0;
  const auto feed = [&](std::string_view s) {
    events.clear();
    REQUIRE(parser.feed(bytes(s), events));
    for (const auto& e : events) {
      if (e.kind == RequestParser::Event::Kind::body) forwarded += e.bytes().size();
      if (e.kind == RequestParser::Event::Kind::end) ++ends;
    }
  };
  for (int i = 0; i < 305; ++i) {
    feed(piece);
    // Every piece is handed on whole in the call that brought it.
    CHECK(forwarded == static_cast<std::uint64_t>(i + 1) * 65536u);
  }
  CHECK(ends == 0);
  CHECK_FALSE(parser.idle());
  feed(std::string(20000000 - 305 * 65536, 'x'));
  CHECK(forwarded == 20000000u);
  CHECK(ends == 1);
  CHECK(parser.idle());
}

TEST_CASE("request parser: what servers read differently is refused, not guessed") {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"GET / HTTP/1.1\nHost: h\r\n\r\n", "a bare LF"},
      {"GET / HTTP/1.1\r\nHost: h\rX: y\r\n\r\n", "a bare CR"},
      {"GET / HTTP/1.1\r\nHost: h\r\n folded\r\n\r\n", "a malformed header line"},
      {"GET / HTTP/1.1\r\nHost : h\r\n\r\n", "a malformed header line"},
      {"GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
       "both Transfer-Encoding and Content-Length"},
      {"GET / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", "a transfer coding other than chunked"},
      {"GET / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
       "a transfer coding other than chunked"},
      {"GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n", "Content-Length headers that disagree"},
      {"GET / HTTP/1.1\r\nHost: h\r\nContent-Length: +3\r\n\r\n", "a Content-Length that is not a number"},
      {"GET / HTTP/2\r\nHost: h\r\n\r\n", "an HTTP version other than 1.0 or 1.1"},
      {"GET  / HTTP/1.1\r\nHost: h\r\n\r\n", "a malformed request line"},
      {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "a malformed chunk size"},
      {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n", "chunk data longer than its size"},
      {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\nbad trailer\r\n\r\n",
       "a malformed trailer line"},
  };
  for (const auto& [stream, why] : cases) {
    CAPTURE(stream);
    const Run run = feed_every_split(stream);
    CHECK(run.error == why);
  }
}

TEST_CASE("request parser: malformed chunk framing never reaches the body output") {
  // The bad size line is refused before any of it is handed on.
  const Run run = feed_in_pieces("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n4x\r\n", {});
  CHECK(run.error == "a malformed chunk size");
  CHECK(run.forwarded == "5\r\nhello\r\n");
}

TEST_CASE("request parser: heads and lines are bounded") {
  std::string big = "GET / HTTP/1.1\r\nHost: h\r\nX: " + std::string(cagent::relay::kMaxHeadBytes, 'a') + "\r\n\r\n";
  CHECK(feed_in_pieces(big, {}).error.find("request head over") != std::string::npos);
  std::string many = "GET / HTTP/1.1\r\n";
  for (std::size_t i = 0; i <= cagent::relay::kMaxHeaders; ++i) many += "X: 1\r\n";
  CHECK(feed_in_pieces(many + "\r\n", {}).error == "more than 128 headers");
  const std::string chunk = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n1;" +
                            std::string(cagent::relay::kMaxChunkLine, 'e') + "\r\n";
  CHECK(feed_in_pieces(chunk, {}).error.find("a line longer than") != std::string::npos);
  // The control: within the bounds, accepted.
  std::string fits = "GET / HTTP/1.1\r\n";
  for (std::size_t i = 0; i < cagent::relay::kMaxHeaders; ++i) fits += "X: 1\r\n";
  CHECK(feed_in_pieces(fits + "\r\n", {}).error.empty());
}
