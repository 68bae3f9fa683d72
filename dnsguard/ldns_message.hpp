#pragma once
// The one place dnsguard/ talks to ldns: building whole messages from text
// (refresh queries here; canned answers in the tests and the fuzz seeds).
// The per-packet path reads and patches wire bytes directly (message.hpp).

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "message.hpp"

namespace cagent::dnsguard {

// A recursive (RD) query for `name` (dotted, trailing dot optional) with an
// OPT record; ID 0 (the upstream pool assigns one). nullopt: not a name.
std::optional<std::vector<std::uint8_t>> build_query_wire(std::string_view name,
                                                          std::uint16_t type);

// Canonical wire form of a dotted name; nullopt when ldns rejects it.
std::optional<WireName> wire_name(std::string_view name);

// A response to (qname, qtype) with `answer`, `authority` and `additional`
// given as zone-file lines ("a.example. 300 IN A 192.0.2.1"), compressed
// the way ldns writes it. For tests and fuzz seeds. Throws std::runtime_error.
std::vector<std::uint8_t> build_response_wire(std::string_view qname, std::uint16_t qtype,
                                              std::uint8_t rcode,
                                              const std::vector<std::string>& answer,
                                              const std::vector<std::string>& authority = {},
                                              const std::vector<std::string>& additional = {});

}  // namespace cagent::dnsguard
