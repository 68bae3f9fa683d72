#pragma once
// The readiness probe: one DNS query cage-init sends to dnsguard's listen
// address. Its class is CHAOS, which dnsguard answers REFUSED on its own,
// without asking any upstream — any well-formed answer with our ID proves it
// is listening and processing queries. Not a lookup of the Internet class,
// so it is no policy decision: the decision record (what the agent was
// refused, which the host summarizes) never sees it. The name is under
// .invalid (RFC 6761) all the same, should it ever reach a resolver.

#include <cstdint>
#include <span>
#include <vector>

namespace cagent::cage {

inline constexpr char kProbeName[] = "cagent-probe.invalid";

// A query (RD set, QTYPE A, QCLASS CH) for kProbeName with this ID.
std::vector<std::uint8_t> build_probe_query(std::uint16_t id);

// True when `packet` is a response (QR=1) to the probe with this ID.
bool is_probe_answer(std::span<const std::uint8_t> packet, std::uint16_t id);

}  // namespace cagent::cage
