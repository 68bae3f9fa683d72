#include "bench/options.hpp"

#include "dnsguard/ip.hpp"

#include <charconv>
#include <cmath>
#include <limits>

namespace cagent::bench {

namespace {

template <typename T>
T parse_number(std::string_view text, std::string_view option, T min, T max) {
  T value{};
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc{} || end != text.data() + text.size() || value < min || value > max)
    throw UsageError(std::string(option) + ": '" + std::string(text) + "' is not a number in range");
  return value;
}

double parse_positive(std::string_view text, std::string_view option) {
  // from_chars for double is in libstdc++ 11+.
  double value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc{} || end != text.data() + text.size() || !std::isfinite(value) || value <= 0)
    throw UsageError(std::string(option) + ": '" + std::string(text) + "' is not a positive number");
  return value;
}

// Walks the argument list; `value()` takes the next argument as the current
// option's value.
class ArgCursor {
 public:
  explicit ArgCursor(const std::vector<std::string_view>& args) : args_(args) {}
  bool done() const { return i_ >= args_.size(); }
  std::string_view next() { return args_[i_++]; }
  std::string_view value(std::string_view option) {
    if (done()) throw UsageError(std::string(option) + " needs a value");
    return next();
  }

 private:
  const std::vector<std::string_view>& args_;
  std::size_t i_ = 0;
};

QueryOptions parse_query(ArgCursor& cur) {
  QueryOptions o;
  bool have_server = false;
  while (!cur.done()) {
    const auto opt = cur.next();
    if (opt == "--server") {
      o.server = parse_host_port(cur.value(opt), opt);
      have_server = true;
    } else if (opt == "--tcp") {
      o.tcp = true;
    } else if (opt == "--names") {
      o.names_file = std::string(cur.value(opt));
    } else if (opt == "--generate") {
      o.generate = parse_number<std::uint64_t>(cur.value(opt), opt, 1, std::uint64_t{1} << 40);
    } else if (opt == "--zone") {
      o.zone = std::string(cur.value(opt));
    } else if (opt == "--salt") {
      o.salt = std::string(cur.value(opt));
    } else if (opt == "--rate") {
      o.rate = parse_positive(cur.value(opt), opt);
    } else if (opt == "--outstanding") {
      o.outstanding = parse_number<std::uint32_t>(cur.value(opt), opt, 1, 60000);
    } else if (opt == "--duration") {
      o.duration = parse_positive(cur.value(opt), opt);
    } else if (opt == "--count") {
      o.count = parse_number<std::uint64_t>(cur.value(opt), opt, 1, std::numeric_limits<std::uint64_t>::max());
    } else if (opt == "--qtype") {
      const auto t = cur.value(opt);
      if (t == "A" || t == "a") o.qtype = 1;
      else if (t == "AAAA" || t == "aaaa") o.qtype = 28;
      else throw UsageError("--qtype: '" + std::string(t) + "' is not A or AAAA");
    } else if (opt == "--timeout-ms") {
      o.timeout = std::chrono::milliseconds(parse_number<std::uint32_t>(cur.value(opt), opt, 1, 60000));
    } else if (opt == "--json") {
      o.json = true;
    } else if (opt == "--connect-after-answer") {
      o.connect_after_answer = true;
    } else if (opt == "--connect-port") {
      o.connect_port = parse_number<std::uint16_t>(cur.value(opt), opt, 1, 65535);
    } else if (opt == "--label") {
      o.label = std::string(cur.value(opt));
    } else if (opt == "--curve") {
      o.curve_file = std::string(cur.value(opt));
    } else {
      throw UsageError("query: unknown option '" + std::string(opt) + "'");
    }
  }
  if (!have_server) throw UsageError("query: --server ADDR:PORT is required");
  if (o.names_file.empty() == (o.generate == 0))
    throw UsageError("query: give exactly one of --names FILE and --generate N");
  if (o.generate && o.zone.empty()) throw UsageError("query: --generate needs --zone ZONE");
  if (o.rate && o.outstanding) throw UsageError("query: --rate and --outstanding exclude each other");
  if (o.rate && o.tcp) throw UsageError("query: --rate is for UDP; use --outstanding with --tcp");
  if (!o.duration && !o.count) throw UsageError("query: give --duration S or --count N (bounds the run)");
  if (o.tcp && o.connect_after_answer) {
    // Works, but TCP's own connection handling would blur the meaning.
    throw UsageError("query: --connect-after-answer is measured over UDP only");
  }
  return o;
}

ServeOptions parse_serve(ArgCursor& cur) {
  ServeOptions o;
  bool have_listen = false;
  while (!cur.done()) {
    const auto opt = cur.next();
    if (opt == "--listen") {
      o.listen = parse_host_port(cur.value(opt), opt);
      have_listen = true;
    } else if (opt == "--zone") {
      o.zone = std::string(cur.value(opt));
    } else if (opt == "--ttl") {
      o.ttl = parse_number<std::uint32_t>(cur.value(opt), opt, 0, 0x7fffffff);
    } else if (opt == "--v4-prefix") {
      const auto v = cur.value(opt);
      const auto p = parse_prefix4(v);
      if (!p) throw UsageError("--v4-prefix: '" + std::string(v) + "' is not an IPv4 prefix");
      o.v4 = *p;
    } else if (opt == "--v6-prefix") {
      const auto v = cur.value(opt);
      const auto p = parse_prefix6(v);
      if (!p) throw UsageError("--v6-prefix: '" + std::string(v) + "' is not an IPv6 prefix");
      o.v6 = *p;
    } else if (opt == "--threads") {
      o.threads = parse_number<unsigned>(cur.value(opt), opt, 1, 64);
    } else if (opt == "--tcp-sink") {
      o.sink = parse_host_port(cur.value(opt), opt);
    } else {
      throw UsageError("serve: unknown option '" + std::string(opt) + "'");
    }
  }
  if (!have_listen) throw UsageError("serve: --listen ADDR:PORT is required");
  return o;
}

RulesetOptions parse_ruleset(ArgCursor& cur) {
  RulesetOptions o;
  bool have_uid = false;
  while (!cur.done()) {
    const auto opt = cur.next();
    if (opt == "--upstream") {
      o.upstreams.push_back(parse_host_port(cur.value(opt), opt));
    } else if (opt == "--resolver-uid") {
      o.resolver_uid = parse_number<std::uint32_t>(cur.value(opt), opt, 0, 0xfffffffe);
      have_uid = true;
    } else if (opt == "--listen-port") {
      o.listen_port = parse_number<std::uint16_t>(cur.value(opt), opt, 1, 65535);
    } else if (opt == "--table") {
      o.table = std::string(cur.value(opt));
    } else if (opt == "--gate-port") {
      o.gate_port = parse_number<std::uint16_t>(cur.value(opt), opt, 1, 65535);
    } else if (opt == "--gated") {
      o.gated.push_back(parse_number<std::uint16_t>(cur.value(opt), opt, 1, 65535));
    } else {
      throw UsageError("ruleset: unknown option '" + std::string(opt) + "'");
    }
  }
  if (o.upstreams.empty()) throw UsageError("ruleset: --upstream ADDR:PORT is required");
  if (!have_uid) throw UsageError("ruleset: --resolver-uid N is required");
  if (o.gated.empty() != (o.gate_port == 0)) throw UsageError("ruleset: --gate-port and --gated go together");
  return o;
}

HttpServeOptions parse_http_serve(ArgCursor& cur) {
  HttpServeOptions o;
  bool have_listen = false;
  while (!cur.done()) {
    const auto opt = cur.next();
    if (opt == "--listen") {
      o.listen = parse_host_port(cur.value(opt), opt);
      have_listen = true;
    } else {
      throw UsageError("http-serve: unknown option '" + std::string(opt) + "'");
    }
  }
  if (!have_listen) throw UsageError("http-serve: --listen ADDR:PORT is required");
  return o;
}

HttpOptions parse_http(ArgCursor& cur) {
  HttpOptions o;
  bool have_target = false;
  while (!cur.done()) {
    const auto opt = cur.next();
    if (opt == "--target") {
      o.target = parse_host_port(cur.value(opt), opt);
      have_target = true;
    } else if (opt == "--host") {
      o.host = std::string(cur.value(opt));
    } else if (opt == "--latency") {
      o.latency = parse_number<std::uint32_t>(cur.value(opt), opt, 1, 1000000);
    } else if (opt == "--bulk") {
      o.bulk = parse_number<std::uint64_t>(cur.value(opt), opt, 1, std::uint64_t{1} << 40);
    } else if (opt == "--rounds") {
      o.rounds = parse_number<std::uint32_t>(cur.value(opt), opt, 1, 1000);
    } else if (opt == "--hold") {
      o.hold = parse_number<std::uint32_t>(cur.value(opt), opt, 1, 100000);
    } else if (opt == "--hold-seconds") {
      o.hold_seconds = parse_positive(cur.value(opt), opt);
    } else if (opt == "--label") {
      o.label = std::string(cur.value(opt));
    } else {
      throw UsageError("http: unknown option '" + std::string(opt) + "'");
    }
  }
  if (!have_target) throw UsageError("http: --target ADDR:PORT is required");
  if (o.host.empty()) throw UsageError("http: --host NAME is required (the Host header)");
  if (o.latency == 0 && o.bulk == 0 && o.hold == 0)
    throw UsageError("http: give at least one of --latency N, --bulk BYTES, --hold N (bounds the run)");
  return o;
}

}  // namespace

HostPort parse_host_port(std::string_view text, std::string_view what) {
  // dnsguard's endpoint parser, with the port required (no default).
  const auto endpoint = dnsguard::parse_endpoint(text, std::nullopt);
  if (!endpoint)
    throw UsageError(std::string(what) + ": '" + std::string(text) + "' is not ADDR:PORT or [ADDR]:PORT");
  return HostPort{dnsguard::to_string(endpoint->addr), endpoint->port};
}

std::string usage_text() {
  return R"(usage:
  cagent-bench query --server ADDR:PORT [--tcp]
                     (--names FILE | --generate N --zone ZONE [--salt S])
                     [--rate QPS | --outstanding N] (--duration S | --count N)
                     [--qtype A|AAAA] [--timeout-ms MS] [--json] [--label TEXT]
                     [--connect-after-answer [--connect-port P]] [--curve FILE]
  cagent-bench serve --listen ADDR:PORT [--zone ZONE] [--ttl S]
                     [--v4-prefix 198.51.100.0/24] [--v6-prefix 2001:db8:100::/64]
                     [--threads N] [--tcp-sink ADDR:PORT]
  cagent-bench ruleset --upstream ADDR:PORT --resolver-uid N [--listen-port P]
                     [--table NAME] [--gate-port P --gated PORT...]
  cagent-bench http-serve --listen ADDR:PORT
  cagent-bench http --target ADDR:PORT --host NAME [--latency N] [--bulk BYTES [--rounds R]]
                     [--hold N [--hold-seconds S]] [--label TEXT]

query: load generator and latency meter. --generate N makes N names
  <salt>-<i>.<zone>; they repeat after N queries, so a large N with
  --count <= N is the cache-miss path and a small N the hit path.
serve: fake authoritative upstream for ZONE (A/AAAA from a hash of the name
  inside the prefixes), UDP and TCP; --tcp-sink also accepts and closes TCP
  connections (the target of --connect-after-answer).
ruleset: installs the cage's nftables ruleset (nft/) in the current network
  namespace; meant for the benchmark's private namespaces only.
http-serve / http: an HTTP/1.1 server (GET /bytes/N, GET /hold) and client
  measuring connect-to-first-byte latency, bulk throughput and how many
  connections can be held at once (bench/gate_compare.sh: with and without
  the connection gate).
)";
}

Command parse_command(const std::vector<std::string_view>& args) {
  if (args.empty()) throw UsageError("missing subcommand (query or serve); see --help");
  const auto sub = args.front();
  std::vector<std::string_view> rest(args.begin() + 1, args.end());
  for (const auto a : rest)
    if (a == "--help" || a == "-h") return HelpRequest{usage_text()};
  ArgCursor cur(rest);
  if (sub == "query") return parse_query(cur);
  if (sub == "serve") return parse_serve(cur);
  if (sub == "ruleset") return parse_ruleset(cur);
  if (sub == "http-serve") return parse_http_serve(cur);
  if (sub == "http") return parse_http(cur);
  if (sub == "--help" || sub == "-h" || sub == "help") return HelpRequest{usage_text()};
  throw UsageError("unknown subcommand '" + std::string(sub) + "' (query, serve, ruleset, http or http-serve)");
}

}  // namespace cagent::bench
