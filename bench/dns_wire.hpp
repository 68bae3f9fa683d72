#pragma once
// bench/dns_wire — the little DNS wire format the benchmark needs, hand
// written so that the load generator and the fake upstream allocate nothing
// per packet.
//
// Every parser takes untrusted bytes and checks each read against the
// buffer's end; on anything unexpected it returns std::nullopt (the caller
// counts and drops), never throws and never reads past the span.

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

namespace cagent::bench {

inline constexpr std::uint16_t kTypeA = 1;
inline constexpr std::uint16_t kTypeAAAA = 28;
inline constexpr std::uint16_t kTypeOPT = 41;
inline constexpr std::uint16_t kClassIN = 1;
inline constexpr std::size_t kMaxWireName = 255;
inline constexpr std::size_t kHeaderSize = 12;

enum class Rcode : std::uint8_t { noerror = 0, formerr = 1, servfail = 2, nxdomain = 3, notimp = 4, refused = 5 };

// Encodes a presentation-format name ("a.example.", trailing dot optional,
// no escapes) as uncompressed wire labels into `out`. Returns the encoded
// length, or 0 when the name is invalid (empty label, label > 63, total >
// 255) or `out` is too small.
std::size_t encode_name(std::string_view name, std::span<std::uint8_t> out) noexcept;

// Builds a standard query (RD set, one question, no EDNS). Returns the length
// or 0 when the name does not encode or `out` is too small.
std::size_t build_query(std::uint16_t id, std::string_view name, std::uint16_t qtype,
                        std::span<std::uint8_t> out) noexcept;

struct Question {
  std::span<const std::uint8_t> name;  // uncompressed wire name inside the message
  std::uint16_t qtype = 0;
  std::uint16_t qclass = 0;
  std::size_t end = 0;                 // offset just past the question
};

struct QueryView {
  std::uint16_t id = 0;
  std::uint16_t flags = 0;
  Question question;
  bool has_opt = false;               // an EDNS OPT record in the additional section
  std::uint16_t udp_size = 512;       // requester's EDNS UDP payload size (>= 512)
};

// A query as the fake upstream accepts it: QR clear, opcode QUERY, exactly one
// question with an uncompressed name. Anything else: nullopt.
std::optional<QueryView> parse_query(std::span<const std::uint8_t> message) noexcept;

inline constexpr std::size_t kMaxAnswerAddresses = 16;

struct AnswerAddress {
  bool v6 = false;
  std::array<std::uint8_t, 16> bytes{};
};

struct ResponseView {
  std::uint16_t id = 0;
  std::uint16_t flags = 0;
  Rcode rcode = Rcode::noerror;
  std::uint8_t rcode_raw = 0;
  Question question;                  // empty name when QDCOUNT is 0
  std::uint16_t answer_count = 0;     // ANCOUNT as sent
  std::size_t address_count = 0;     // A/AAAA records kept in `addresses`
  std::array<AnswerAddress, kMaxAnswerAddresses> addresses{};
  bool truncated = false;             // TC bit
};

// Parses a response: header, at most one question (uncompressed), and the
// answer section (compressed owner names allowed), collecting up to
// kMaxAnswerAddresses A/AAAA records. The authority and additional sections
// are ignored. nullopt when the header says it is not a response or any
// record overruns the buffer.
std::optional<ResponseView> parse_response(std::span<const std::uint8_t> message) noexcept;

// Case-insensitive comparison of two uncompressed wire names.
bool wire_names_equal(std::span<const std::uint8_t> a, std::span<const std::uint8_t> b) noexcept;

}  // namespace cagent::bench
