#pragma once
// The one place dnsguard/ talks to ldns: building whole messages from text
// (the refresh queries; the unit tests build canned answers with the same
// handles, ldns_handles.hpp).
// The per-packet path reads and patches wire bytes directly (message.hpp).

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "dnsguard/message.hpp"

namespace cagent::dnsguard {

// A recursive (RD) query for `name` (dotted, trailing dot optional) with an
// OPT record; ID 0 (the upstream pool assigns one). nullopt: not a name.
std::optional<std::vector<std::uint8_t>> build_query_wire(std::string_view name,
                                                          std::uint16_t type);

// Canonical wire form of a dotted name; nullopt when ldns rejects it.
std::optional<WireName> wire_name(std::string_view name);

}  // namespace cagent::dnsguard
