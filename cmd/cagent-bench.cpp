// cagent-bench: DNS load generator / latency meter and fake upstream.
// Parses argv, runs the chosen mode, maps errors to exit codes
// (0 ok, 1 runtime error, 2 usage error).
#include "bench/http_bench.hpp"
#include "bench/names.hpp"
#include "bench/options.hpp"
#include "bench/query.hpp"
#include "bench/server.hpp"

#include "nft/nft.hpp"

#include <arpa/inet.h>

#include <cstdio>
#include <exception>
#include <fstream>
#include <string_view>
#include <vector>

namespace {

// argv's upstream list → the nft layer's endpoint type.
cagent::nft::Endpoint to_endpoint(const cagent::bench::HostPort& hp) {
  cagent::nft::Endpoint ep;
  ep.port = hp.port;
  if (inet_pton(AF_INET, hp.host.c_str(), ep.addr.bytes.data()) == 1) {
    ep.addr.family = cagent::nft::Family::v4;
  } else if (inet_pton(AF_INET6, hp.host.c_str(), ep.addr.bytes.data()) == 1) {
    ep.addr.family = cagent::nft::Family::v6;
  } else {
    throw cagent::bench::UsageError("--upstream: '" + hp.host + "' is not an IP address");
  }
  return ep;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace cagent::bench;
  const std::vector<std::string_view> args(argv + 1, argv + argc);
  try {
    const Command command = parse_command(args);
    if (const auto* help = std::get_if<HelpRequest>(&command)) {
      std::fputs(help->text.c_str(), stdout);
      return 0;
    }
    if (const auto* serve_options = std::get_if<ServeOptions>(&command)) {
      serve(*serve_options);
      return 0;
    }
    if (const auto* h = std::get_if<HttpServeOptions>(&command)) {
      http_serve(*h);
      return 0;
    }
    if (const auto* h = std::get_if<HttpOptions>(&command)) {
      std::fputs(format_http_report(run_http(*h)).c_str(), stdout);
      return 0;
    }
    if (const auto* r = std::get_if<RulesetOptions>(&command)) {
      cagent::nft::RulesetSpec spec;
      spec.table = r->table;
      spec.dnsguard_uid = r->resolver_uid;
      spec.listen_port = r->listen_port;
      for (const auto& u : r->upstreams) spec.upstreams.push_back(to_endpoint(u));
      spec.gate_port = r->gate_port;
      spec.gated_ports = r->gated;
      cagent::nft::install_ruleset(spec);
      return 0;
    }
    const auto& q = std::get<QueryOptions>(command);
    const NameSource names = q.names_file.empty()
                                 ? NameSource::generated(q.generate, q.zone, q.salt.empty() ? random_salt() : q.salt)
                                 : NameSource::from_file(q.names_file);
    const Report report = run_query(q, names);
    std::fputs((q.json ? format_json(report) : format_table(report)).c_str(), stdout);
    if (!q.curve_file.empty()) {
      std::ofstream curve(q.curve_file);
      curve << format_percentile_curve(report.latency);
      if (!curve) throw std::runtime_error("cannot write " + q.curve_file);
    }
    return 0;
  } catch (const UsageError& e) {
    std::fprintf(stderr, "cagent-bench: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "cagent-bench: %s\n", e.what());
    return 1;
  }
}
