#pragma once
// The one way an allowed answer leaves dnsguard/: addresses (with the set
// timeout they need) are handed to an AnswerSink before the client sees the
// answer. cmd/dnsguard wires it to nft::SetUpdater; tests use a recorder.
//
// Invariant the server relies on: allow() is synchronous and returns only
// after the kernel acknowledged the insert. The server runs one
// single-threaded io_context, so while allow() runs no other query can be
// answered — a second query for the same name can never overtake the first
// one's insert. If a sink is ever made asynchronous, the server needs a
// per-name lock (Cilium pkg/fqdn does this) before releasing any answer.

#include <array>
#include <cstdint>
#include <span>

namespace cagent::dnsguard {

struct AllowedAddress {
  bool v6 = false;
  std::array<std::uint8_t, 16> bytes{};  // network order; v4 uses bytes[0..3]
  std::uint32_t timeout_s = 0;           // > 0: the set must hold it at least this long
  friend bool operator==(const AllowedAddress&, const AllowedAddress&) = default;
};

class AnswerSink {
 public:
  virtual ~AnswerSink() = default;
  // True once every address is in its set for at least its timeout; false
  // when the insert failed (the client then gets SERVFAIL: fail closed).
  virtual bool allow(std::span<const AllowedAddress> addresses) noexcept = 0;
};

}  // namespace cagent::dnsguard
