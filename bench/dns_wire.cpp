#include "bench/dns_wire.hpp"

#include <cstring>

namespace cagent::bench {

namespace {

std::uint16_t read16(std::span<const std::uint8_t> m, std::size_t at) noexcept {
  return static_cast<std::uint16_t>((m[at] << 8) | m[at + 1]);
}

void write16(std::span<std::uint8_t> m, std::size_t at, std::uint16_t v) noexcept {
  m[at] = static_cast<std::uint8_t>(v >> 8);
  m[at + 1] = static_cast<std::uint8_t>(v & 0xff);
}

std::uint8_t ascii_lower(std::uint8_t c) noexcept {
  return (c >= 'A' && c <= 'Z') ? static_cast<std::uint8_t>(c + ('a' - 'A')) : c;
}

// Length of the uncompressed name starting at `at`, or 0 if it is
// compressed, malformed or runs past the end.
std::size_t uncompressed_name_length(std::span<const std::uint8_t> m, std::size_t at) noexcept {
  std::size_t pos = at;
  while (pos < m.size()) {
    const std::uint8_t len = m[pos];
    if (len == 0) {
      const std::size_t total = pos + 1 - at;
      return total <= kMaxWireName ? total : 0;
    }
    if (len > 63) return 0;  // compression pointer or reserved label type
    pos += 1u + len;
    if (pos - at > kMaxWireName) return 0;
  }
  return 0;
}

// Offset just past a possibly compressed name at `at` (a pointer ends the
// name in place, so we never follow it: we only skip), or 0 on error.
std::size_t skip_name(std::span<const std::uint8_t> m, std::size_t at) noexcept {
  std::size_t pos = at;
  while (pos < m.size()) {
    const std::uint8_t len = m[pos];
    if (len == 0) return pos + 1;
    if ((len & 0xc0) == 0xc0) return pos + 2 <= m.size() ? pos + 2 : 0;
    if (len > 63) return 0;
    pos += 1u + len;
    if (pos - at > kMaxWireName) return 0;
  }
  return 0;
}

std::optional<Question> parse_question(std::span<const std::uint8_t> m, std::size_t at) noexcept {
  const std::size_t name_len = uncompressed_name_length(m, at);
  if (name_len == 0 || at + name_len + 4 > m.size()) return std::nullopt;
  Question q;
  q.name = m.subspan(at, name_len);
  q.qtype = read16(m, at + name_len);
  q.qclass = read16(m, at + name_len + 2);
  q.end = at + name_len + 4;
  return q;
}

}  // namespace

std::size_t encode_name(std::string_view name, std::span<std::uint8_t> out) noexcept {
  if (!name.empty() && name.back() == '.') name.remove_suffix(1);
  if (name.empty()) {  // the root
    if (out.empty()) return 0;
    out[0] = 0;
    return 1;
  }
  std::size_t pos = 0;
  while (true) {
    const std::size_t dot = name.find('.');
    const std::string_view label = name.substr(0, dot);
    if (label.empty() || label.size() > 63) return 0;
    if (pos + 1 + label.size() + 1 > out.size() || pos + 1 + label.size() + 1 > kMaxWireName) return 0;
    out[pos++] = static_cast<std::uint8_t>(label.size());
    std::memcpy(out.data() + pos, label.data(), label.size());
    pos += label.size();
    if (dot == std::string_view::npos) break;
    name.remove_prefix(dot + 1);
  }
  out[pos++] = 0;
  return pos;
}

std::size_t build_query(std::uint16_t id, std::string_view name, std::uint16_t qtype,
                        std::span<std::uint8_t> out) noexcept {
  if (out.size() < kHeaderSize + 1 + 4) return 0;
  const std::size_t name_len = encode_name(name, out.subspan(kHeaderSize));
  if (name_len == 0 || kHeaderSize + name_len + 4 > out.size()) return 0;
  write16(out, 0, id);
  write16(out, 2, 0x0100);  // RD
  write16(out, 4, 1);       // QDCOUNT
  write16(out, 6, 0);
  write16(out, 8, 0);
  write16(out, 10, 0);
  const std::size_t q = kHeaderSize + name_len;
  write16(out, q, qtype);
  write16(out, q + 2, kClassIN);
  return q + 4;
}

std::optional<QueryView> parse_query(std::span<const std::uint8_t> m) noexcept {
  if (m.size() < kHeaderSize) return std::nullopt;
  QueryView v;
  v.id = read16(m, 0);
  v.flags = read16(m, 2);
  if (v.flags & 0x8000) return std::nullopt;            // a response, not a query
  if (((v.flags >> 11) & 0xf) != 0) return std::nullopt; // opcode other than QUERY
  if (read16(m, 4) != 1) return std::nullopt;
  const auto q = parse_question(m, kHeaderSize);
  if (!q) return std::nullopt;
  v.question = *q;
  // Look for EDNS OPT in the additional section (answer/authority must be
  // empty in a query we accept).
  if (read16(m, 6) != 0 || read16(m, 8) != 0) return std::nullopt;
  const std::uint16_t arcount = read16(m, 10);
  std::size_t pos = q->end;
  for (std::uint16_t i = 0; i < arcount; ++i) {
    const std::size_t after_name = skip_name(m, pos);
    if (after_name == 0 || after_name + 10 > m.size()) return std::nullopt;
    const std::uint16_t type = read16(m, after_name);
    const std::uint16_t rdlen = read16(m, after_name + 8);
    if (after_name + 10 + rdlen > m.size()) return std::nullopt;
    if (type == kTypeOPT) {
      v.has_opt = true;
      const std::uint16_t size = read16(m, after_name + 2);
      v.udp_size = size < 512 ? std::uint16_t{512} : size;
    }
    pos = after_name + 10 + rdlen;
  }
  return v;
}

std::optional<ResponseView> parse_response(std::span<const std::uint8_t> m) noexcept {
  if (m.size() < kHeaderSize) return std::nullopt;
  ResponseView r;
  r.id = read16(m, 0);
  r.flags = read16(m, 2);
  if (!(r.flags & 0x8000)) return std::nullopt;  // QR must be set
  r.truncated = (r.flags & 0x0200) != 0;
  r.rcode_raw = static_cast<std::uint8_t>(r.flags & 0xf);
  r.rcode = static_cast<Rcode>(r.rcode_raw);
  const std::uint16_t qdcount = read16(m, 4);
  r.answer_count = read16(m, 6);
  if (qdcount > 1) return std::nullopt;
  std::size_t pos = kHeaderSize;
  if (qdcount == 1) {
    const auto q = parse_question(m, pos);
    if (!q) return std::nullopt;
    r.question = *q;
    pos = q->end;
  }
  for (std::uint16_t i = 0; i < r.answer_count; ++i) {
    const std::size_t after_name = skip_name(m, pos);
    if (after_name == 0 || after_name + 10 > m.size()) return std::nullopt;
    const std::uint16_t type = read16(m, after_name);
    const std::uint16_t klass = read16(m, after_name + 2);
    const std::uint16_t rdlen = read16(m, after_name + 8);
    const std::size_t rdata = after_name + 10;
    if (rdata + rdlen > m.size()) return std::nullopt;
    if (klass == kClassIN && r.address_count < kMaxAnswerAddresses) {
      if (type == kTypeA && rdlen == 4) {
        auto& a = r.addresses[r.address_count++];
        a.v6 = false;
        std::memcpy(a.bytes.data(), m.data() + rdata, 4);
      } else if (type == kTypeAAAA && rdlen == 16) {
        auto& a = r.addresses[r.address_count++];
        a.v6 = true;
        std::memcpy(a.bytes.data(), m.data() + rdata, 16);
      }
    }
    pos = rdata + rdlen;
  }
  return r;
}

bool wire_names_equal(std::span<const std::uint8_t> a, std::span<const std::uint8_t> b) noexcept {
  if (a.size() != b.size()) return false;
  // Length octets are < 64 and so unaffected by lowering; compare all bytes.
  for (std::size_t i = 0; i < a.size(); ++i)
    if (ascii_lower(a[i]) != ascii_lower(b[i])) return false;
  return true;
}

}  // namespace cagent::bench
