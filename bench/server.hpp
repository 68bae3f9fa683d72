#pragma once
// bench/server — the fake authoritative upstream (`cagent-bench serve`).
//
// Data flow: N UDP worker threads, each with its own SO_REUSEPORT socket,
// read up to 64 datagrams per recvmmsg, answer each in place through Zone
// (no allocation, no locks) and send the batch back with one sendmmsg. TCP
// (and the optional accept-and-close sink used by --connect-after-answer)
// runs on one Asio io_context in the calling thread, one coroutine per
// connection. SIGINT/SIGTERM stop everything.

#include "bench/options.hpp"

namespace cagent::bench {

// Binds everything, prints one line "ready udp=PORT tcp=PORT[ sink=PORT]" to
// stdout (so scripts and tests can use port 0), then serves until SIGINT or
// SIGTERM. Throws std::runtime_error naming the address when a bind fails.
void serve(const ServeOptions& options);

}  // namespace cagent::bench
