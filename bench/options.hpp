#pragma once
// bench/options — the cagent-bench command line, parsed into plain structs
// (pure; cmd/cagent-bench.cpp only hands argv over and runs the result).

#include <chrono>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "bench/zone.hpp"

namespace cagent::bench {

// A command-line mistake; the message names the option.
class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct HostPort {
  std::string host;  // literal IPv4 or IPv6 address (no brackets)
  std::uint16_t port = 0;
};

// "192.0.2.53:53", "[2001:db8::1]:53". Throws UsageError naming `what`.
HostPort parse_host_port(std::string_view text, std::string_view what);

struct QueryOptions {
  HostPort server;
  bool tcp = false;
  std::string names_file;           // --names FILE (one name per line)
  std::uint64_t generate = 0;       // --generate N (with --zone)
  std::string zone;
  std::string salt;                 // label prefix of generated names; empty: random per run
  std::optional<double> rate;       // queries per second (open loop, UDP only)
  std::uint32_t outstanding = 0;    // queries in flight (closed loop); 0: default
  std::optional<double> duration;   // seconds
  std::optional<std::uint64_t> count;
  std::uint16_t qtype = 1;          // A
  std::chrono::milliseconds timeout{1000};
  bool json = false;
  bool connect_after_answer = false;
  std::uint16_t connect_port = 80;
  std::string label;
  std::string curve_file;           // --curve FILE: percentile curve for plots
};

struct ServeOptions {
  HostPort listen;
  std::string zone = "bench.test";
  std::uint32_t ttl = 300;
  Prefix4 v4 = *parse_prefix4("198.51.100.0/24");
  Prefix6 v6 = *parse_prefix6("2001:db8:100::/64");
  unsigned threads = 1;
  std::optional<HostPort> sink;     // --tcp-sink ADDR:PORT: accept-and-close listener
};

// `cagent-bench ruleset`: install the real cage ruleset (nft/) in the current
// network namespace, so the comparison measures against the production
// table, sets and rules rather than an imitation.
struct RulesetOptions {
  std::vector<HostPort> upstreams;  // --upstream, repeatable
  std::uint32_t resolver_uid = 0;   // the uid whose DNS may leave (dnsguard's)
  std::uint16_t listen_port = 53;   // other uids' DNS is redirected here
  std::string table = "cagent";
  std::uint16_t gate_port = 0;      // --gate-port P: the connection gate's listener
  std::vector<std::uint16_t> gated; // --gated PORT (repeatable): redirected to it
};

struct HelpRequest {
  std::string text;
};

// `cagent-bench http-serve` / `http`: what the connection gate costs a TCP
// connection (http_bench.hpp).
struct HttpServeOptions {
  HostPort listen;
};

struct HttpOptions {
  HostPort target;
  std::string host;                 // the Host header (a name the gate can bind)
  std::uint32_t latency = 0;        // sequential connections to time
  std::uint64_t bulk = 0;           // bytes per download
  std::uint32_t rounds = 5;         // downloads (the best and the median are reported)
  std::uint32_t hold = 0;           // concurrent connections to hold
  double hold_seconds = 5;
  std::string label;
};

using Command = std::variant<QueryOptions, ServeOptions, RulesetOptions, HttpServeOptions, HttpOptions, HelpRequest>;

// args excludes argv[0]. Throws UsageError.
Command parse_command(const std::vector<std::string_view>& args);

std::string usage_text();

}  // namespace cagent::bench
