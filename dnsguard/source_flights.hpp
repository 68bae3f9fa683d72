#pragma once
// SourceFlights: upstream lookups shared fairly between the sockets that
// ask for them.
//
// Every UDP query that misses the cache waits for an upstream answer. With
// one first-come queue, a client that keeps hundreds of misses in flight
// (a hostile flood of new allowed names, or just a busy bulk resolver)
// puts every other process's lookup behind all of its own: the upstream
// answers to be processed, each with its set insert, stand in front of
// the other process's one. The measured cost was a p99 of 95 ms for a
// new allowed name asked by another process during such a flood.
//
// So each source socket (address and port: the finest identity a UDP
// datagram carries; every process in the cage has the same uid and the
// kernel says nothing more) may have kFlightsPerSource lookups with the
// upstreams at a time. Its further misses wait here, in its own queue of
// at most kQueuedPerSource, and start one by one as its own lookups
// finish; a query beyond that is dropped (the client retries, as after any
// lost datagram) and counted as overload. Another socket's miss therefore
// waits behind at most kFlightsPerSource of a flood's answers, not behind
// the flood's whole window, and one socket can never fill the global cap
// (Server::kMaxInflight) that the others need too.
//
// What this cannot do: a flood spread over many sockets, one query each,
// looks exactly like many processes each asking once, and gets a share
// per socket. The bound that still holds there is the global cap.
//
// Pure bookkeeping, no I/O: tokens are the server's wait slots.

#include <array>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <unordered_map>

namespace cagent::dnsguard {

// Address (IPv4 as v4-mapped) and port of a client socket.
struct SourceKey {
  std::array<std::uint8_t, 16> address{};
  std::uint16_t port = 0;
  bool operator==(const SourceKey&) const = default;
};

struct SourceKeyHash {
  std::size_t operator()(const SourceKey& k) const noexcept;
};

class SourceFlights {
 public:
  // 64 lookups in flight keep a socket's own throughput at the upstream's
  // pace (a real upstream 30 ms away still serves ~2 000 misses a second to
  // one socket, far above what a resolver library asks: glibc keeps two);
  // 512 queued cover a flood's whole window (bench/load.sh keeps 256).
  static constexpr std::size_t kFlightsPerSource = 64;
  static constexpr std::size_t kQueuedPerSource = 512;

  enum class Admission { start, queued, refused };

  SourceFlights(std::size_t flights_per_source = kFlightsPerSource,
                std::size_t queued_per_source = kQueuedPerSource)
      : flights_per_source_(flights_per_source), queued_per_source_(queued_per_source) {}

  // A new miss of `source` (wait slot `token`): start it now, keep it
  // queued here, or refuse it (its queue is full; the token stays the
  // caller's to free).
  Admission admit(const SourceKey& source, std::uint32_t token);
  // One of `source`'s lookups has ended: the queued token to start in its
  // place (counted as in flight), if any.
  std::optional<std::uint32_t> finished(const SourceKey& source);

  std::size_t sources() const noexcept { return by_source_.size(); }
  std::size_t queued() const noexcept { return queued_; }
  // Misses that had to wait behind their own socket's earlier ones.
  std::uint64_t waited() const noexcept { return waited_; }

 private:
  struct State {
    std::size_t flights = 0;
    std::deque<std::uint32_t> queue;
  };
  std::size_t flights_per_source_;
  std::size_t queued_per_source_;
  std::unordered_map<SourceKey, State, SourceKeyHash> by_source_;
  std::size_t queued_ = 0;
  std::uint64_t waited_ = 0;
};

}  // namespace cagent::dnsguard
