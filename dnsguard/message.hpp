#pragma once
// DNS message handling on raw wire bytes — the per-packet hot path.
//
// Every function here is pure (no I/O, no clock), never throws on bad input
// and bounds-checks every read: untrusted bytes are stopped, counted by the
// caller and dropped. Headers, questions and resource records are read
// directly from the wire rather than through ldns objects because this runs
// for every packet (ldns builds a tree of heap objects per message); ldns is
// used where messages are built from text (ldns_message.hpp).
//
//   client query --classify_query()--> Query + verdict
//        verdict != forward --> build_error_response()  (answered locally)
//        forward  --> build_upstream_query()            (fresh message: new ID,
//                                                        EDNS rebuilt, so ECS and
//                                                        other options never leave)
//   upstream answer --analyze_response()--> ResponseInfo (addresses on the CNAME
//        chain + TTL field offsets) --> cap_ttls() / adapt_for_client()

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "dnsguard/allow_list.hpp"
#include "dnsguard/ip.hpp"
#include "dnsguard/record_strip.hpp"

namespace cagent::dnsguard {

inline constexpr std::size_t kHeaderSize = 12;
inline constexpr std::size_t kMaxMessage = 65535;

namespace rrtype {
inline constexpr std::uint16_t A = 1, CNAME = 5, SOA = 6, AAAA = 28, OPT = 41, SVCB = 64,
                               HTTPS = 65, IXFR = 251, AXFR = 252, MAILB = 253, MAILA = 254,
                               ANY = 255;
}
// The query types dnsguard forwards. Every other type is answered NOTIMP
// without asking anyone: the type of a query for an allowed name is sent
// upstream as chosen, so 65536 of them would be 16 bits of the agent's data
// per query to whoever sees the allowed name's queries.
bool forwarded_type(std::uint16_t qtype) noexcept;

namespace rcode {
inline constexpr std::uint8_t NOERROR = 0, FORMERR = 1, SERVFAIL = 2, NXDOMAIN = 3, NOTIMP = 4,
                              REFUSED = 5;
}

// A domain name in canonical form: uncompressed wire labels, lowercase,
// ending with the root label.
struct WireName {
  std::array<std::uint8_t, 255> bytes{};
  std::size_t size = 0;
  std::span<const std::uint8_t> view() const noexcept { return {bytes.data(), size}; }
  friend bool operator==(const WireName& a, const WireName& b) noexcept {
    return a.size == b.size && std::equal(a.bytes.begin(), a.bytes.begin() + static_cast<std::ptrdiff_t>(a.size), b.bytes.begin());
  }
};

// Reads a (possibly compressed) name at `pos` and advances `pos` past it.
// Compression pointers must point strictly backwards and past the header,
// which bounds the work and rules out loops. False on anything malformed.
bool read_name(std::span<const std::uint8_t> msg, std::size_t& pos, WireName& out) noexcept;

// Dotted lowercase text without the trailing dot ("" for the root). False
// when a label holds a byte other than a letter, digit, '-' or '_' (such
// names are denied: they are how data gets tunnelled through DNS).
bool name_to_text(const WireName& name, std::array<char, 256>& buf, std::size_t& len) noexcept;

enum class Verdict : std::uint8_t {
  drop,     // malformed or not a query: no answer at all
  formerr,  // QDCOUNT != 1
  notimp,   // opcode != QUERY, or ANY
  refused,  // class != IN, zone transfers
  deny,     // name not allowed (or bad label bytes): deny_rcode, never forwarded
  forward,  // allowed: answer from cache or upstream
};

struct Query {
  std::uint16_t id = 0;
  std::uint16_t flags = 0;
  WireName qname;                  // canonical
  std::array<char, 256> text{};    // dotted lowercase, for the allowlist and logs
  std::size_t text_len = 0;
  std::uint16_t qtype = 0, qclass = 0;
  std::size_t question_end = 0;    // the question is wire[12, question_end)
  bool edns = false;
  bool do_bit = false;
  std::uint16_t udp_size = 512;    // what the client can take over UDP
  std::string_view name() const noexcept { return {text.data(), text_len}; }
};

Verdict classify_query(std::span<const std::uint8_t> wire, const AllowList& allow,
                       Query& out) noexcept;

// Answer built locally: the client's ID, opcode, RD and CD, `rc`, and — when
// question_end > 0 — the client's question verbatim (case preserved), plus an
// OPT record when the client used EDNS. Returns the size (0: `out` too small).
std::size_t build_error_response(std::span<const std::uint8_t> query, std::size_t question_end,
                                 bool edns, std::uint8_t rc, std::span<std::uint8_t> out) noexcept;

// Extended DNS Error (RFC 8914): tells a client *why* it was refused — an
// info-code and a short UTF-8 text. Only in an OPT record, so only for
// clients that used EDNS (others could not parse it).
namespace ede {
inline constexpr std::uint16_t kOptionCode = 15;
inline constexpr std::uint16_t kBlocked = 15;     // blocked by the operator's policy
inline constexpr std::uint16_t kProhibited = 18;  // this client may not ask
}  // namespace ede

// Appends an EDE option to the OPT record build_error_response() put at the
// end of `out` (`size` bytes: its result; the OPT must be its last 11
// bytes, with no options yet). Returns the new size; `size` unchanged when
// the result would exceed `limit` bytes (or `out`): the answer then goes
// without the explanation rather than truncated.
std::size_t append_extended_error(std::span<std::uint8_t> out, std::size_t size, std::size_t limit,
                                  std::uint16_t info_code, std::string_view text) noexcept;

// The message sent upstream: a fresh header (new `id`; RD and CD from the
// client), the client's question, and an OPT record of our own (DO copied).
// No client EDNS option is passed on: that strips Client Subnet and cookies.
std::size_t build_upstream_query(std::span<const std::uint8_t> client_query, const Query& q,
                                 std::uint16_t id, std::span<std::uint8_t> out) noexcept;

struct FoundAddress {
  IpAddress addr;
  std::uint32_t ttl = 0;
  std::uint16_t ttl_offset = 0;  // of the record that carries it (one record may carry several hints)
  RrRange record;                // that record's bytes
  bool hint = false;             // from an SVCB/HTTPS record, not an A/AAAA one
};

struct ResponseInfo {
  std::uint8_t rcode = 0;
  bool truncated = false;
  std::size_t question_end = 0;
  std::vector<FoundAddress> addresses;      // on the chain: A, AAAA, SVCB/HTTPS hints
  // A/AAAA records (class IN) that are not on the chain: authority and
  // additional sections, off the chain, past kMaxAnswerRecords. Never
  // inserted, so never to be passed to a client (ordered by offset).
  std::vector<RrRange> strays;
  bool ech = false;  // an SVCB/HTTPS record on the chain carries an `ech` parameter
  std::vector<std::uint16_t> ttl_offsets;   // every RR's TTL field except OPT's
  std::uint32_t min_ttl = 0;                // over those RRs (0 when there are none)
  std::size_t opt_offset = 0;               // OPT RR start, when it is the last RR
  std::size_t end = 0;                      // end of the last RR
};

// Scratch space reused between calls so analysis allocates nothing once warm.
class ResponseAnalyzer {
 public:
  ResponseAnalyzer();
  enum class Result : std::uint8_t { ok, malformed, mismatch };
  // Checks that `wire` answers (qname, qtype, IN), then follows the CNAME
  // chain that starts at qname through the answer section and collects the
  // addresses of A/AAAA records — and the ipv4hint/ipv6hint of SVCB/HTTPS
  // records — owned by a name on that chain. Records off the chain (e.g. an
  // injected "evil.example A …") are ignored: they never reach the set.
  Result analyze(std::span<const std::uint8_t> wire, const WireName& qname, std::uint16_t qtype,
                 ResponseInfo& out) noexcept;

 private:
  struct Record {
    std::uint16_t type;
    std::uint32_t ttl;
    std::size_t rdata, rdlen;
    std::size_t owner;  // index into names_
    RrRange bytes;
  };
  // The steps of analyze(), in order.
  Result read_question(std::span<const std::uint8_t> wire, const WireName& qname, std::uint16_t qtype,
                       std::size_t& pos, ResponseInfo& out) noexcept;
  Result read_records(std::span<const std::uint8_t> wire, std::size_t pos, ResponseInfo& out) noexcept;
  Result follow_chain(std::span<const std::uint8_t> wire, const WireName& qname) noexcept;
  Result collect_addresses(std::span<const std::uint8_t> wire, ResponseInfo& out) noexcept;
  Result collect_hints(std::span<const std::uint8_t> wire, const Record& rec, ResponseInfo& out) noexcept;
  bool on_chain(const WireName& name) const noexcept;
  static void push_address(ResponseInfo& out, const Record& rec, bool v6, const std::uint8_t* bytes, bool hint);

  std::vector<Record> records_;
  // Layout: [0, kMaxAnswerRecords) owners of records_, then the CNAME chain
  // (chain_len_ names, at most kMaxChain + 1), then one temporary (back()).
  std::vector<WireName> names_;
  std::size_t chain_len_ = 0;
};

inline constexpr std::size_t kMaxAnswerRecords = 256;  // beyond: ignored (not inserted)
inline constexpr std::size_t kMaxChain = 16;           // CNAME hops followed

// TTLs handed to clients: min(ttl, cap) - elapsed, floored at 0.
void rewrite_ttls(std::span<std::uint8_t> wire, const ResponseInfo& info, std::uint32_t cap,
                  std::uint32_t elapsed) noexcept;

// Turns an upstream (or cached) answer in `wire[0, size)` into the client's:
// the client's ID and question bytes (case preserved), the OPT record
// dropped for a client without EDNS, and a truncated (TC=1) answer when it
// does not fit `limit` bytes. Returns the new size.
std::size_t adapt_for_client(std::span<std::uint8_t> wire, std::size_t size,
                             const ResponseInfo& info, std::span<const std::uint8_t> client_query,
                             const Query& q, std::size_t limit) noexcept;

std::uint16_t read16(std::span<const std::uint8_t> b, std::size_t pos) noexcept;
std::uint32_t read32(std::span<const std::uint8_t> b, std::size_t pos) noexcept;
void write16(std::span<std::uint8_t> b, std::size_t pos, std::uint16_t v) noexcept;
void write32(std::span<std::uint8_t> b, std::size_t pos, std::uint32_t v) noexcept;

}  // namespace cagent::dnsguard
