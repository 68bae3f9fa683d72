#pragma once
// Canned DNS responses for the unit tests, built by ldns from zone-file
// lines — test-only, so it lives here, not in the resolver library.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace cagent::dnsguard {

// A response to (qname, qtype) with `answer`, `authority` and `additional`
// given as zone-file lines ("a.example. 300 IN A 192.0.2.1"), compressed
// the way ldns writes it. Throws std::runtime_error.
std::vector<std::uint8_t> build_response_wire(std::string_view qname, std::uint16_t qtype,
                                              std::uint8_t rcode,
                                              const std::vector<std::string>& answer,
                                              const std::vector<std::string>& authority = {},
                                              const std::vector<std::string>& additional = {});

}  // namespace cagent::dnsguard
