#pragma once
// bench/query — the load generator and latency meter (`cagent-bench query`).
//
// Data flow: NameSource → one query per name index → server (UDP: one
// connected socket, up to 60 000 queries in flight matched back by id and
// question; TCP: one connection per outstanding query) → each answer is
// timed into the Report's histogram and, with --connect-after-answer, each
// returned address is immediately connected to (the SYN leaves inside the
// receive handler, before the next datagram is read) so a firewall that is
// not yet open for it shows up as refused/unreachable.
//
// One single-threaded io_context; nothing here throws per packet.

#include "bench/names.hpp"
#include "bench/options.hpp"
#include "bench/stats.hpp"

namespace cagent::bench {

// Runs the whole load and returns the report. Throws std::runtime_error (with
// the server named) when the socket cannot be set up.
Report run_query(const QueryOptions& options, const NameSource& names);

}  // namespace cagent::bench
