#pragma once
// The readiness probe: one DNS query cage-init sends to dnsguard's listen
// address. The name is under .invalid (RFC 6761), so dnsguard denies it
// without asking any upstream — any well-formed answer with our ID proves it
// is listening and processing queries.

#include <cstdint>
#include <span>
#include <vector>

namespace cagent::cage {

inline constexpr char kProbeName[] = "cagent-probe.invalid";

// A query (RD set, QTYPE A, QCLASS IN) for kProbeName with this ID.
std::vector<std::uint8_t> build_probe_query(std::uint16_t id);

// True when `packet` is a response (QR=1) to the probe with this ID.
bool is_probe_answer(std::span<const std::uint8_t> packet, std::uint16_t id);

}  // namespace cagent::cage
