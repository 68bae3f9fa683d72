#pragma once
// The one way an allowed answer leaves dnsguard/: addresses (with the set
// timeout they need) are handed to an AnswerSink before the client sees the
// answer. cmd/dnsguard wires it to nft::SetUpdater (cmd/nft_sink.hpp); tests
// use a recorder.
//
// The engine calls hold() (floors, below); allow() is the floor-less form a
// simple sink implements, and the default hold() is built on it.
//
// Invariant the server relies on: hold() (and so allow()) is synchronous and
// returns only after the kernel acknowledged the insert. The server runs one
// single-threaded io_context, so while hold() runs no other query can be
// answered — a second query for the same name can never overtake the first
// one's insert. If a sink is ever made asynchronous, the server needs a
// per-name lock (Cilium pkg/fqdn does this) before releasing any answer.
//
// Floors and held times (the miss-path shortcut). An address may carry a
// floor `min_timeout_s` < `timeout_s`: a sink that already holds it at least
// that long may leave the kernel alone, and reports through hold() how long
// it actually holds each address. The engine then caps every TTL of that
// answer at the smallest held time, so the invariant stays
//
//     no client ever holds an answer longer than its addresses stay in the set
//
// while the common case (an address inserted by an earlier answer with
// almost the same timeout) costs no netlink transaction. An address the sink
// does not hold yet always gets exactly `timeout_s` (= clamp(TTL)).

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <span>
#include <utility>
#include <vector>

#include "dnsguard/ip.hpp"

namespace cagent::dnsguard {

struct AllowedAddress {
  bool v6 = false;
  std::array<std::uint8_t, 16> bytes{};  // network order; v4 uses bytes[0..3]
  std::uint32_t timeout_s = 0;           // > 0: the set must hold it at least this long
  // 0: same as timeout_s. Else (<= timeout_s): already held this long is enough.
  std::uint32_t min_timeout_s = 0;
  friend bool operator==(const AllowedAddress&, const AllowedAddress&) = default;
};

class AnswerSink {
 public:
  virtual ~AnswerSink() = default;
  // True once every address is in its set for at least its timeout; false
  // when the insert failed (the client then gets SERVFAIL: fail closed).
  virtual bool allow(std::span<const AllowedAddress> addresses) noexcept = 0;

  // Like allow(), honouring floors: held_s[i] (held_s.size() ==
  // addresses.size()) receives how long the set holds addresses[i] at least,
  // in whole seconds rounded down. The default ignores floors: it inserts
  // every address for exactly its timeout and reports that.
  virtual bool hold(std::span<const AllowedAddress> addresses,
                    std::span<std::uint32_t> held_s) noexcept {
    if (!allow(addresses)) return false;
    for (std::size_t i = 0; i < addresses.size() && i < held_s.size(); ++i)
      held_s[i] = addresses[i].timeout_s;
    return true;
  }

  // What the sets hold now and for how much longer (a restarted dnsguard
  // binds its journalled names again for that long: binding_journal.hpp).
  // The default holds nothing.
  virtual std::vector<std::pair<IpAddress, std::chrono::milliseconds>> held_now() noexcept { return {}; }

  // A run-time deny (control.hpp): takes `addresses` out of the sets now,
  // instead of at their timeout; one that is already gone is not an error.
  // True once the kernel acknowledged. The default cannot evict (false).
  virtual bool evict(std::span<const IpAddress> addresses) noexcept {
    (void)addresses;
    return false;
  }
};

}  // namespace cagent::dnsguard
