#pragma once
// bench/http_bench — what does the connection gate cost a TCP connection?
// A tiny HTTP/1.1 server and client, run side by side with and without the
// gate in bench/gate_compare.sh (the same client, server and addresses; only
// the ruleset's redirect differs).
//
//   http-serve: GET /bytes/N → N bytes;  GET /hold → 1 byte, then kept open
//   http --latency N : N sequential connections, connect → first response byte
//   http --bulk B    : one download of B bytes per round, throughput
//   http --hold N    : N concurrent open connections, held for S seconds

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "bench/options.hpp"

namespace cagent::bench {

struct HttpReport {
  std::string label;
  std::vector<double> latency_us;   // sorted
  std::vector<double> bulk_mbps;    // per round, in MB/s (10^6 bytes)
  std::uint32_t held = 0;           // connections that were open together
  std::uint32_t failures = 0;
};

// Serves until killed; prints "ready http=PORT" once listening.
void http_serve(const HttpServeOptions& options);

HttpReport run_http(const HttpOptions& options);
std::string format_http_report(const HttpReport& report);  // one JSON object

}  // namespace cagent::bench
