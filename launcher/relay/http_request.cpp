#include "launcher/relay/http_request.hpp"

#include <algorithm>
#include <charconv>

namespace cagent::relay {
namespace {

char lower(char c) noexcept { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool iequals(std::string_view a, std::string_view b) noexcept {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) { return lower(x) == lower(y); });
}

// RFC 9110 tchar.
bool is_tchar(unsigned char c) noexcept {
  if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) != std::string_view::npos;
}

bool is_token(std::string_view s) noexcept {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return is_tchar(static_cast<unsigned char>(c)); });
}

// field-value characters: VCHAR, obs-text, SP, HTAB (no other control).
bool is_field_char(unsigned char c) noexcept { return c == '\t' || c == ' ' || (c > 0x20 && c != 0x7f); }

std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// "name: value" → Header, or false.
bool parse_field(std::string_view line, Header& out) {
  const auto colon = line.find(':');
  if (colon == std::string_view::npos) return false;
  const std::string_view name = line.substr(0, colon);
  if (!is_token(name)) return false;  // also refuses "Name :" and obs-fold's leading space
  const std::string_view value = line.substr(colon + 1);
  if (!std::all_of(value.begin(), value.end(), [](char c) { return is_field_char(static_cast<unsigned char>(c)); })) {
    return false;
  }
  out.name.assign(name);
  out.value.assign(trim(value));
  return true;
}

// Splits the head (without its final empty line) into CRLF-terminated
// lines. Every LF was checked to follow a CR when it was read.
std::vector<std::string_view> lines_of(std::string_view text) {
  std::vector<std::string_view> lines;
  std::size_t start = 0;
  while (start < text.size()) {
    const std::size_t end = text.find("\r\n", start);
    if (end == std::string_view::npos) {
      lines.push_back(text.substr(start));
      break;
    }
    lines.push_back(text.substr(start, end - start));
    start = end + 2;
  }
  return lines;
}

}  // namespace

std::optional<std::string_view> RequestHead::find(std::string_view name) const {
  for (const Header& h : headers) {
    if (iequals(h.name, name)) return std::string_view(h.value);
  }
  return std::nullopt;
}

std::vector<std::string_view> RequestHead::all(std::string_view name) const {
  std::vector<std::string_view> out;
  for (const Header& h : headers) {
    if (iequals(h.name, name)) out.emplace_back(h.value);
  }
  return out;
}

std::string RequestHead::serialize() const {
  std::string out;
  out.reserve(64 + headers.size() * 48);
  out.append(method).append(" ").append(target).append(" ").append(version).append("\r\n");
  for (const Header& h : headers) out.append(h.name).append(": ").append(h.value).append("\r\n");
  out.append("\r\n");
  return out;
}

std::optional<BodyFraming> body_framing(const RequestHead& head, std::string& error) {
  const auto codings = head.all("transfer-encoding");
  const auto lengths = head.all("content-length");
  if (!codings.empty() && !lengths.empty()) {
    error = "both Transfer-Encoding and Content-Length";
    return std::nullopt;
  }
  if (!codings.empty()) {
    // RFC 9112 6.1: faulty framing in HTTP/1.0, which servers read either way.
    if (head.version == "HTTP/1.0") {
      error = "Transfer-Encoding in an HTTP/1.0 request";
      return std::nullopt;
    }
    if (codings.size() != 1 || !iequals(codings.front(), "chunked")) {
      error = "a transfer coding other than chunked";
      return std::nullopt;
    }
    return BodyFraming{BodyFraming::Kind::chunked, 0};
  }
  if (lengths.empty()) return BodyFraming{};
  std::uint64_t length = 0;
  for (std::size_t i = 0; i < lengths.size(); ++i) {
    const std::string_view v = lengths[i];
    std::uint64_t n = 0;
    const bool digits = !v.empty() && v.size() <= 19 &&
                        std::all_of(v.begin(), v.end(), [](char c) { return c >= '0' && c <= '9'; });
    if (!digits || std::from_chars(v.data(), v.data() + v.size(), n).ec != std::errc{}) {
      error = "a Content-Length that is not a number";
      return std::nullopt;
    }
    if (i > 0 && n != length) {
      error = "Content-Length headers that disagree";
      return std::nullopt;
    }
    length = n;
  }
  return BodyFraming{length == 0 ? BodyFraming::Kind::none : BodyFraming::Kind::length, length};
}

bool RequestParser::fail(std::string why) {
  state_ = State::failed;
  error_ = std::move(why);
  return false;
}

bool RequestParser::parse_head(std::string_view text) {
  const auto lines = lines_of(text);
  if (lines.empty()) return fail("an empty request head");
  const std::string_view request_line = lines.front();
  const auto sp1 = request_line.find(' ');
  const auto sp2 = sp1 == std::string_view::npos ? sp1 : request_line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || request_line.find(' ', sp2 + 1) != std::string_view::npos) {
    return fail("a malformed request line");
  }
  RequestHead head;
  head.method.assign(request_line.substr(0, sp1));
  head.target.assign(request_line.substr(sp1 + 1, sp2 - sp1 - 1));
  head.version.assign(request_line.substr(sp2 + 1));
  if (!is_token(head.method)) return fail("a malformed method");
  if (head.target.empty() || !std::all_of(head.target.begin(), head.target.end(), [](char c) {
        const auto u = static_cast<unsigned char>(c);
        return u > 0x20 && u < 0x7f;
      })) {
    return fail("a malformed request target");
  }
  if (head.version != "HTTP/1.1" && head.version != "HTTP/1.0") return fail("an HTTP version other than 1.0 or 1.1");
  if (lines.size() - 1 > kMaxHeaders) return fail("more than " + std::to_string(kMaxHeaders) + " headers");
  for (std::size_t i = 1; i < lines.size(); ++i) {
    Header h;
    if (!parse_field(lines[i], h)) return fail("a malformed header line");
    head.headers.push_back(std::move(h));
  }
  head_ = std::move(head);
  return true;
}

bool RequestParser::finish_head(std::vector<Event>& out) {
  // buffer_ ends with "\r\n\r\n": the head is everything before the last CRLF pair.
  if (!parse_head(std::string_view(buffer_).substr(0, buffer_.size() - 4))) return false;
  buffer_.clear();
  std::string why;
  const auto framing = body_framing(head_, why);
  if (!framing) return fail(why);
  ++requests_;
  out.push_back(Event{Event::Kind::head, {}, {}, std::move(head_)});
  switch (framing->kind) {
    case BodyFraming::Kind::none:
      out.push_back(Event{Event::Kind::end, {}, {}, {}});
      state_ = State::head;
      break;
    case BodyFraming::Kind::length:
      left_ = framing->length;
      state_ = State::length_body;
      break;
    case BodyFraming::Kind::chunked:
      state_ = State::chunk_size;
      break;
  }
  return true;
}

bool RequestParser::parse_chunk_size(std::string_view line) {
  std::string_view size = line.substr(0, line.find(';'));
  while (!size.empty() && (size.back() == ' ' || size.back() == '\t')) size.remove_suffix(1);
  const bool hex = !size.empty() && size.size() <= 15 && std::all_of(size.begin(), size.end(), [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
  });
  if (!hex) return fail("a malformed chunk size");
  const std::string_view ext = line.substr(size.size());
  if (!std::all_of(ext.begin(), ext.end(), [](char c) { return is_field_char(static_cast<unsigned char>(c)); })) {
    return fail("a malformed chunk extension");
  }
  std::from_chars(size.data(), size.data() + size.size(), left_, 16);
  return true;
}

bool RequestParser::feed(std::span<const std::uint8_t> in, std::vector<Event>& out) {
  if (state_ == State::failed) return false;
  std::size_t i = 0;
  // Body data of this call not yet handed out: [data_from, i).
  std::size_t data_from = 0;
  bool in_data = false;
  const auto flush_data = [&] {
    if (in_data && i > data_from) out.push_back(Event{Event::Kind::body, in.subspan(data_from, i - data_from), {}, {}});
    in_data = false;
  };
  // Up to left_ bytes of body data, handed on as they are; true once the
  // last of them came (then flushed).
  const auto take_data = [&]() -> bool {
    if (!in_data) {
      in_data = true;
      data_from = i;
    }
    const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(left_, in.size() - i));
    i += n;
    left_ -= n;
    if (left_ != 0) return false;
    flush_data();
    return true;
  };
  // A CRLF-terminated line into buffer_; true once complete (buffer_ holds
  // it without the CRLF). A bare CR or LF fails the stream.
  const auto read_line = [&](std::size_t limit, bool& complete) -> bool {
    complete = false;
    while (i < in.size()) {
      const char c = static_cast<char>(in[i++]);
      if (!buffer_.empty() && buffer_.back() == '\r') {
        if (c != '\n') return fail("a bare CR");
        buffer_.pop_back();
        complete = true;
        return true;
      }
      if (c == '\n') return fail("a bare LF");
      buffer_.push_back(c);
      if (buffer_.size() > limit) return fail("a line longer than " + std::to_string(limit) + " bytes");
    }
    return true;
  };

  while (i < in.size()) {
    switch (state_) {
      case State::head: {
        const char c = static_cast<char>(in[i++]);
        if (!buffer_.empty() && buffer_.back() == '\r' && c != '\n') return fail("a bare CR");
        if (c == '\n' && (buffer_.empty() || buffer_.back() != '\r')) return fail("a bare LF");
        buffer_.push_back(c);
        // Empty lines before a request line are skipped (RFC 9112 2.2).
        if (buffer_ == "\r\n") {
          buffer_.clear();
          break;
        }
        if (buffer_.size() > kMaxHeadBytes) return fail("a request head over " + std::to_string(kMaxHeadBytes) + " bytes");
        if (buffer_.size() >= 4 && buffer_.compare(buffer_.size() - 4, 4, "\r\n\r\n") == 0) {
          if (!finish_head(out)) return false;
        }
        break;
      }
      case State::length_body:
        if (take_data()) {
          out.push_back(Event{Event::Kind::end, {}, {}, {}});
          state_ = State::head;
        }
        break;
      case State::chunk_size: {
        bool complete = false;
        if (!read_line(kMaxChunkLine, complete)) return false;
        if (!complete) break;
        if (!parse_chunk_size(buffer_)) return false;
        out.push_back(Event{Event::Kind::body, {}, buffer_ + "\r\n", {}});
        buffer_.clear();
        if (left_ == 0) {
          trailer_bytes_ = 0;
          state_ = State::trailer;
        } else {
          state_ = State::chunk_data;
        }
        break;
      }
      case State::chunk_data:
        if (take_data()) state_ = State::chunk_data_end;
        break;
      case State::chunk_data_end: {
        bool complete = false;
        if (!read_line(2, complete)) return false;
        if (!complete) break;
        if (!buffer_.empty()) return fail("chunk data longer than its size");
        out.push_back(Event{Event::Kind::body, {}, "\r\n", {}});
        state_ = State::chunk_size;
        break;
      }
      case State::trailer: {
        bool complete = false;
        if (!read_line(kMaxHeadBytes, complete)) return false;
        if (!complete) break;
        trailer_bytes_ += buffer_.size() + 2;
        if (trailer_bytes_ > kMaxHeadBytes) return fail("trailers over " + std::to_string(kMaxHeadBytes) + " bytes");
        if (buffer_.empty()) {
          out.push_back(Event{Event::Kind::body, {}, "\r\n", {}});
          out.push_back(Event{Event::Kind::end, {}, {}, {}});
          state_ = State::head;
          break;
        }
        Header ignored;
        if (!parse_field(buffer_, ignored)) return fail("a malformed trailer line");
        out.push_back(Event{Event::Kind::body, {}, buffer_ + "\r\n", {}});
        buffer_.clear();
        break;
      }
      case State::failed:
        return false;
    }
  }
  flush_data();
  return true;
}

}  // namespace cagent::relay
