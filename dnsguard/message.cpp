#include "dnsguard/message.hpp"

#include <algorithm>
#include <cstring>
#include <limits>

namespace cagent::dnsguard {

std::uint16_t read16(std::span<const std::uint8_t> b, std::size_t pos) noexcept {
  return static_cast<std::uint16_t>((b[pos] << 8) | b[pos + 1]);
}
std::uint32_t read32(std::span<const std::uint8_t> b, std::size_t pos) noexcept {
  return (std::uint32_t{b[pos]} << 24) | (std::uint32_t{b[pos + 1]} << 16) |
         (std::uint32_t{b[pos + 2]} << 8) | std::uint32_t{b[pos + 3]};
}
void write16(std::span<std::uint8_t> b, std::size_t pos, std::uint16_t v) noexcept {
  b[pos] = static_cast<std::uint8_t>(v >> 8);
  b[pos + 1] = static_cast<std::uint8_t>(v);
}
void write32(std::span<std::uint8_t> b, std::size_t pos, std::uint32_t v) noexcept {
  b[pos] = static_cast<std::uint8_t>(v >> 24);
  b[pos + 1] = static_cast<std::uint8_t>(v >> 16);
  b[pos + 2] = static_cast<std::uint8_t>(v >> 8);
  b[pos + 3] = static_cast<std::uint8_t>(v);
}

namespace {

constexpr std::uint16_t kFlagQR = 0x8000, kFlagTC = 0x0200, kFlagRD = 0x0100, kFlagRA = 0x0080,
                        kFlagCD = 0x0010, kOpcodeMask = 0x7800;
constexpr std::uint16_t kClassIN = 1;
constexpr std::uint16_t kOurUdpSize = 1232;  // DNS flag day 2020: avoids IP fragmentation

std::uint8_t lower(std::uint8_t c) noexcept {
  return (c >= 'A' && c <= 'Z') ? static_cast<std::uint8_t>(c + 32) : c;
}

bool is_label_byte(std::uint8_t c) noexcept {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

// TTLs with the top bit set are treated as 0 (RFC 2181 section 8).
std::uint32_t sane_ttl(std::uint32_t ttl) noexcept { return ttl > 0x7FFFFFFFu ? 0 : ttl; }

// Appends an OPT pseudo-RR (root owner, our UDP size, no options).
std::size_t put_opt(std::span<std::uint8_t> out, std::size_t pos, bool do_bit) noexcept {
  out[pos] = 0;
  write16(out, pos + 1, rrtype::OPT);
  write16(out, pos + 3, kOurUdpSize);
  write32(out, pos + 5, do_bit ? 0x8000u : 0u);
  write16(out, pos + 9, 0);
  return pos + 11;
}

}  // namespace

bool read_name(std::span<const std::uint8_t> msg, std::size_t& pos, WireName& out) noexcept {
  std::size_t p = pos;
  std::size_t len = 0;
  std::size_t resume = 0;       // where the caller continues: after the first pointer
  std::size_t segment = pos;    // every pointer must land strictly before this
  for (int hops = 0;; ) {
    if (p >= msg.size()) return false;
    std::uint8_t label = msg[p];
    if ((label & 0xC0) == 0xC0) {
      if (p + 1 >= msg.size() || ++hops > 127) return false;
      std::size_t target = (static_cast<std::size_t>(label & 0x3F) << 8) | msg[p + 1];
      if (target < kHeaderSize || target >= segment) return false;
      if (resume == 0) resume = p + 2;
      p = segment = target;
      continue;
    }
    if ((label & 0xC0) != 0) return false;  // 0x40/0x80: obsolete extended label types
    if (label == 0) {
      out.bytes[len++] = 0;
      out.size = len;
      pos = resume != 0 ? resume : p + 1;
      return true;
    }
    // Room for this label and the terminating root label within 255 bytes.
    if (p + 1 + label > msg.size() || len + 1 + label + 1 > out.bytes.size()) return false;
    out.bytes[len++] = label;
    for (std::size_t i = 0; i < label; ++i) out.bytes[len++] = lower(msg[p + 1 + i]);
    p += 1 + label;
  }
}

bool name_to_text(const WireName& name, std::array<char, 256>& buf, std::size_t& len) noexcept {
  len = 0;
  std::size_t p = 0;
  while (p < name.size && name.bytes[p] != 0) {
    std::size_t label = name.bytes[p];
    if (len != 0) buf[len++] = '.';
    for (std::size_t i = 1; i <= label; ++i) {
      std::uint8_t c = name.bytes[p + i];
      if (!is_label_byte(c)) return false;
      buf[len++] = static_cast<char>(c);
    }
    p += 1 + label;
  }
  return true;
}

Verdict classify_query(std::span<const std::uint8_t> wire, const AllowList& allow,
                       Query& out) noexcept {
  if (wire.size() < kHeaderSize) return Verdict::drop;
  out.id = read16(wire, 0);
  out.flags = read16(wire, 2);
  out.question_end = 0;
  out.edns = false;
  out.do_bit = false;
  out.udp_size = 512;
  if ((out.flags & kFlagQR) != 0) return Verdict::drop;  // a response: never answer those
  if ((out.flags & kOpcodeMask) != 0) return Verdict::notimp;
  if (read16(wire, 4) != 1) return Verdict::formerr;

  std::size_t pos = kHeaderSize;
  if (!read_name(wire, pos, out.qname) || pos + 4 > wire.size()) return Verdict::drop;
  out.qtype = read16(wire, pos);
  out.qclass = read16(wire, pos + 2);
  pos += 4;
  out.question_end = pos;

  // Find the client's OPT record (its UDP size and DO bit); anything that
  // does not parse makes the whole packet malformed.
  std::size_t an = read16(wire, 6), ns = read16(wire, 8), ar = read16(wire, 10);
  WireName owner;
  for (std::size_t i = 0; i < an + ns + ar; ++i) {
    if (!read_name(wire, pos, owner) || pos + 10 > wire.size()) return Verdict::drop;
    std::uint16_t type = read16(wire, pos);
    std::uint16_t cls = read16(wire, pos + 2);
    std::uint32_t ttl = read32(wire, pos + 4);
    std::size_t rdlen = read16(wire, pos + 8);
    pos += 10 + rdlen;
    if (pos > wire.size()) return Verdict::drop;
    if (type == rrtype::OPT && i >= an + ns) {
      out.edns = true;
      out.udp_size = std::clamp<std::uint16_t>(cls, 512, 4096);
      out.do_bit = (ttl & 0x8000u) != 0;
    }
  }

  if (out.qclass != kClassIN) return Verdict::refused;
  if (out.qtype == rrtype::AXFR || out.qtype == rrtype::IXFR) return Verdict::refused;
  if (!forwarded_type(out.qtype)) return Verdict::notimp;  // ANY, MAILA/MAILB, and everything unusual
  if (!name_to_text(out.qname, out.text, out.text_len)) return Verdict::deny;
  if (!allow.allows(out.name())) return Verdict::deny;
  return Verdict::forward;
}

std::size_t build_error_response(std::span<const std::uint8_t> query, std::size_t question_end,
                                 bool edns, std::uint8_t rc, std::span<std::uint8_t> out) noexcept {
  std::size_t end = question_end != 0 ? question_end : kHeaderSize;
  if (query.size() < end || out.size() < end + (edns ? 11 : 0)) return 0;
  std::uint16_t qflags = read16(query, 0 + 2);
  auto flags = static_cast<std::uint16_t>(kFlagQR | (qflags & (kOpcodeMask | kFlagRD | kFlagCD)) |
                                          kFlagRA | rc);
  write16(out, 0, read16(query, 0));
  write16(out, 2, flags);
  write16(out, 4, question_end != 0 ? 1 : 0);
  write16(out, 6, 0);
  write16(out, 8, 0);
  write16(out, 10, edns ? 1 : 0);
  if (end > kHeaderSize) std::memcpy(out.data() + kHeaderSize, query.data() + kHeaderSize, end - kHeaderSize);
  return edns ? put_opt(out, end, false) : end;
}

std::size_t append_extended_error(std::span<std::uint8_t> out, std::size_t size, std::size_t limit,
                                  std::uint16_t info_code, std::string_view text) noexcept {
  const std::size_t added = 4 + 2 + text.size();  // option code, length, info-code, text
  if (size < kHeaderSize + 11 || read16(out, 10) != 1 || text.size() > 1024) return size;
  const std::size_t opt = size - 11;
  if (out[opt] != 0 || read16(out, opt + 1) != rrtype::OPT || read16(out, opt + 9) != 0) return size;
  if (size + added > std::min(limit, out.size())) return size;
  write16(out, size, ede::kOptionCode);
  write16(out, size + 2, static_cast<std::uint16_t>(2 + text.size()));
  write16(out, size + 4, info_code);
  if (!text.empty()) std::memcpy(out.data() + size + 6, text.data(), text.size());
  write16(out, opt + 9, static_cast<std::uint16_t>(added));
  return size + added;
}

bool forwarded_type(std::uint16_t qtype) noexcept {
  // What clients ask for in practice: addresses and aliases, zone and
  // delegation data, mail, service and text records, DNSSEC's keys,
  // SVCB/HTTPS, CAA.
  switch (qtype) {
    case 1:    // A
    case 2:    // NS
    case 5:    // CNAME
    case 6:    // SOA
    case 12:   // PTR
    case 15:   // MX
    case 16:   // TXT
    case 28:   // AAAA
    case 33:   // SRV
    case 35:   // NAPTR
    case 43:   // DS
    case 48:   // DNSKEY
    case 64:   // SVCB
    case 65:   // HTTPS
    case 257:  // CAA
      return true;
    default:
      return false;
  }
}

std::size_t build_upstream_query(std::span<const std::uint8_t> client_query, const Query& q,
                                 std::uint16_t id, std::span<std::uint8_t> out) noexcept {
  if (q.question_end <= kHeaderSize || client_query.size() < q.question_end ||
      out.size() < q.question_end + 11)
    return 0;
  write16(out, 0, id);
  // Always RD: upstreams are recursive resolvers and we are only a stub.
  write16(out, 2, static_cast<std::uint16_t>(kFlagRD | (q.flags & kFlagCD)));
  write16(out, 4, 1);
  write16(out, 6, 0);
  write16(out, 8, 0);
  write16(out, 10, 1);
  // The question as dnsguard parsed it (lowercase, uncompressed), not the
  // client's bytes: the case of each letter would be one bit of the
  // agent's data per letter to whoever sees the allowed name's queries.
  // The client gets its own spelling back (adapt_for_client).
  const std::size_t end = kHeaderSize + q.qname.size + 4;
  if (out.size() < end + 11) return 0;
  std::memcpy(out.data() + kHeaderSize, q.qname.bytes.data(), q.qname.size);
  write16(out, kHeaderSize + q.qname.size, q.qtype);
  write16(out, kHeaderSize + q.qname.size + 2, q.qclass);
  return put_opt(out, end, q.do_bit);
}

ResponseAnalyzer::ResponseAnalyzer() : names_(kMaxAnswerRecords + kMaxChain + 2) {
  records_.reserve(kMaxAnswerRecords);
}

ResponseAnalyzer::Result ResponseAnalyzer::analyze(std::span<const std::uint8_t> wire,
                                                   const WireName& qname, std::uint16_t qtype,
                                                   ResponseInfo& out) noexcept {
  // Named steps; each returns early on malformed or mismatched bytes. All
  // scratch lives in members sized once, so a warm analyzer allocates
  // nothing (out's vectors keep their capacity across calls).
  out.addresses.clear();
  out.strays.clear();
  out.ech = false;
  out.ttl_offsets.clear();
  out.min_ttl = 0;
  out.opt_offset = 0;
  out.question_end = 0;
  out.end = 0;
  records_.clear();
  chain_len_ = 0;
  std::size_t pos = 0;
  if (Result r = read_question(wire, qname, qtype, pos, out); r != Result::ok) return r;
  if (Result r = read_records(wire, pos, out); r != Result::ok) return r;
  if (Result r = follow_chain(wire, qname); r != Result::ok) return r;
  if (Result r = collect_addresses(wire, out); r != Result::ok) return r;
  // Off-chain records were found in record order; the others before them.
  std::sort(out.strays.begin(), out.strays.end(),
            [](const RrRange& a, const RrRange& b) { return a.start < b.start; });
  return Result::ok;
}

// Header (a response to a standard query) and the one question, which must
// be (qname, qtype, IN). Leaves `pos` after the question.
ResponseAnalyzer::Result ResponseAnalyzer::read_question(std::span<const std::uint8_t> wire,
                                                         const WireName& qname, std::uint16_t qtype,
                                                         std::size_t& pos, ResponseInfo& out) noexcept {
  if (wire.size() < kHeaderSize) return Result::malformed;
  std::uint16_t flags = read16(wire, 2);
  if ((flags & kFlagQR) == 0 || (flags & kOpcodeMask) != 0) return Result::malformed;
  out.rcode = static_cast<std::uint8_t>(flags & 0x000F);
  out.truncated = (flags & kFlagTC) != 0;
  if (read16(wire, 4) != 1) return Result::mismatch;
  WireName& temp = names_.back();
  pos = kHeaderSize;
  if (!read_name(wire, pos, temp) || pos + 4 > wire.size()) return Result::malformed;
  if (!(temp == qname) || read16(wire, pos) != qtype || read16(wire, pos + 2) != kClassIN)
    return Result::mismatch;
  pos += 4;
  out.question_end = pos;
  return Result::ok;
}

// Every RR of the three sections: bounds, TTL offsets (all but OPT's), the
// minimum TTL, the trailing OPT. The first kMaxAnswerRecords answer records
// of class IN are kept (owner names in names_) for the chain; A/AAAA records
// anywhere else are strays.
ResponseAnalyzer::Result ResponseAnalyzer::read_records(std::span<const std::uint8_t> wire, std::size_t pos,
                                                        ResponseInfo& out) noexcept {
  WireName& temp = names_.back();
  std::size_t an = read16(wire, 6), ns = read16(wire, 8), ar = read16(wire, 10);
  std::size_t total = an + ns + ar;
  std::uint32_t min_ttl = std::numeric_limits<std::uint32_t>::max();
  for (std::size_t i = 0; i < total; ++i) {
    std::size_t start = pos;
    bool keep = i < an && records_.size() < kMaxAnswerRecords;
    WireName& owner = keep ? names_[records_.size()] : temp;
    if (!read_name(wire, pos, owner) || pos + 10 > wire.size()) return Result::malformed;
    std::uint16_t type = read16(wire, pos);
    std::uint16_t cls = read16(wire, pos + 2);
    std::uint32_t ttl = sane_ttl(read32(wire, pos + 4));
    std::size_t rdlen = read16(wire, pos + 8);
    std::size_t rdata = pos + 10;
    if (rdata + rdlen > wire.size()) return Result::malformed;
    pos = rdata + rdlen;
    if (type == rrtype::OPT) {
      if (i >= an + ns && i + 1 == total) out.opt_offset = start;
      continue;  // its "TTL" holds EDNS flags, not a TTL
    }
    out.ttl_offsets.push_back(static_cast<std::uint16_t>(rdata - 6));
    min_ttl = std::min(min_ttl, ttl);
    const RrRange bytes{static_cast<std::uint16_t>(start), static_cast<std::uint16_t>(pos)};
    if (keep && cls == kClassIN)
      records_.push_back(Record{type, ttl, rdata, rdlen, records_.size(), bytes});
    else if (cls == kClassIN && (type == rrtype::A || type == rrtype::AAAA))
      out.strays.push_back(bytes);
  }
  out.end = pos;
  out.min_ttl = out.ttl_offsets.empty() ? 0 : min_ttl;
  return Result::ok;
}

// The CNAME chain from the question name. A loop or a chain longer than
// kMaxChain stops it; names beyond that are simply not on the chain.
ResponseAnalyzer::Result ResponseAnalyzer::follow_chain(std::span<const std::uint8_t> wire,
                                                        const WireName& qname) noexcept {
  WireName& temp = names_.back();
  WireName* chain = &names_[kMaxAnswerRecords];
  chain[0] = qname;
  chain_len_ = 1;
  for (bool grew = true; grew && chain_len_ <= kMaxChain;) {
    grew = false;
    for (const auto& rec : records_) {
      if (rec.type != rrtype::CNAME || !(names_[rec.owner] == chain[chain_len_ - 1])) continue;
      std::size_t p = rec.rdata;
      if (!read_name(wire, p, temp) || p != rec.rdata + rec.rdlen) return Result::malformed;
      if (std::find(chain, chain + chain_len_, temp) != chain + chain_len_) break;  // loop
      chain[chain_len_++] = temp;
      grew = true;
      break;
    }
  }
  return Result::ok;
}

bool ResponseAnalyzer::on_chain(const WireName& name) const noexcept {
  const WireName* chain = &names_[kMaxAnswerRecords];
  return std::find(chain, chain + chain_len_, name) != chain + chain_len_;
}

// Addresses of the kept records owned by a chain name: A/AAAA rdata and
// SVCB/HTTPS hints. A/AAAA off the chain become strays.
ResponseAnalyzer::Result ResponseAnalyzer::collect_addresses(std::span<const std::uint8_t> wire,
                                                             ResponseInfo& out) noexcept {
  for (const auto& rec : records_) {
    if (rec.type != rrtype::A && rec.type != rrtype::AAAA && rec.type != rrtype::SVCB &&
        rec.type != rrtype::HTTPS)
      continue;
    if (!on_chain(names_[rec.owner])) {
      if (rec.type == rrtype::A || rec.type == rrtype::AAAA) out.strays.push_back(rec.bytes);
      continue;
    }
    if (rec.type == rrtype::A || rec.type == rrtype::AAAA) {
      bool v6 = rec.type == rrtype::AAAA;
      if (rec.rdlen != (v6 ? 16u : 4u)) return Result::malformed;
      push_address(out, rec, v6, wire.data() + rec.rdata, false);
      continue;
    }
    if (Result r = collect_hints(wire, rec, out); r != Result::ok) return r;
  }
  return Result::ok;
}

// SVCB/HTTPS (RFC 9460): priority, target name, then key/length/value
// parameters. ipv4hint (4) and ipv6hint (6) are addresses a client may
// connect to without an A/AAAA lookup, so they are inserted exactly like
// A/AAAA records (same filter, same TTL) — otherwise they would be a way
// around the set, or simply broken connections.
ResponseAnalyzer::Result ResponseAnalyzer::collect_hints(std::span<const std::uint8_t> wire, const Record& rec,
                                                         ResponseInfo& out) noexcept {
  WireName& temp = names_.back();
  std::size_t p = rec.rdata;
  std::size_t end = rec.rdata + rec.rdlen;
  if (p + 2 > end) return Result::malformed;
  p += 2;
  if (!read_name(wire, p, temp) || p > end) return Result::malformed;
  while (p < end) {
    if (p + 4 > end) return Result::malformed;
    std::uint16_t key = read16(wire, p);
    std::size_t len = read16(wire, p + 2);
    p += 4;
    if (p + len > end) return Result::malformed;
    if (key == kSvcParamEch) out.ech = true;
    if (key == 4 || key == 6) {
      std::size_t width = key == 4 ? 4 : 16;
      if (len == 0 || len % width != 0) return Result::malformed;
      for (std::size_t off = 0; off < len; off += width) push_address(out, rec, key == 6, wire.data() + p + off, true);
    }
    p += len;
  }
  return Result::ok;
}

void ResponseAnalyzer::push_address(ResponseInfo& out, const Record& rec, bool v6, const std::uint8_t* bytes,
                                    bool hint) {
  FoundAddress found;
  found.addr.v6 = v6;
  std::memcpy(found.addr.bytes.data(), bytes, v6 ? 16 : 4);
  found.ttl = rec.ttl;
  found.ttl_offset = static_cast<std::uint16_t>(rec.rdata - 6);
  found.record = rec.bytes;
  found.hint = hint;
  out.addresses.push_back(found);
}

void rewrite_ttls(std::span<std::uint8_t> wire, const ResponseInfo& info, std::uint32_t cap,
                  std::uint32_t elapsed) noexcept {
  for (std::uint16_t off : info.ttl_offsets) {
    if (off + 4u > wire.size()) continue;
    std::uint32_t ttl = std::min(sane_ttl(read32(wire, off)), cap);
    write32(wire, off, ttl > elapsed ? ttl - elapsed : 0);
  }
}

std::size_t adapt_for_client(std::span<std::uint8_t> wire, std::size_t size,
                             const ResponseInfo& info, std::span<const std::uint8_t> client_query,
                             const Query& q, std::size_t limit) noexcept {
  if (size < kHeaderSize || size > wire.size()) return 0;
  write16(wire, 0, q.id);
  std::uint16_t flags = read16(wire, 2);
  flags = static_cast<std::uint16_t>((flags & ~(kFlagRD | kFlagCD)) | (q.flags & (kFlagRD | kFlagCD)));
  write16(wire, 2, flags);
  // Same canonical name, both uncompressed at offset 12, so same length:
  // copy the client's bytes back (0x20 case randomisation keeps working).
  if (info.question_end == q.question_end && q.question_end <= size &&
      q.question_end <= client_query.size())
    std::memcpy(wire.data() + kHeaderSize, client_query.data() + kHeaderSize,
                q.question_end - kHeaderSize);
  if (!q.edns && info.opt_offset != 0 && info.opt_offset < size) {
    size = info.opt_offset;
    write16(wire, 10, static_cast<std::uint16_t>(read16(wire, 10) - 1));
  }
  if (size > limit && info.question_end != 0) {
    size = info.question_end;
    write16(wire, 2, static_cast<std::uint16_t>(read16(wire, 2) | kFlagTC));
    write16(wire, 6, 0);
    write16(wire, 8, 0);
    write16(wire, 10, 0);
  }
  return size;
}

}  // namespace cagent::dnsguard
