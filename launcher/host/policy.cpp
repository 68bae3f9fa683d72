#include "launcher/host/policy.hpp"

#include <set>

#include <stdexcept>
#include <vector>

#include "dnsguard/allow_list.hpp"

namespace cagent::launcher::host {

dnsguard::PortRange inbound_port(const std::string& spec) {
  std::string ports = spec;
  std::string proto = "tcp";
  if (const std::size_t slash = ports.rfind('/'); slash != std::string::npos) {
    proto = ports.substr(slash + 1);
    ports.resize(slash);
  }
  // What follows the last ':' is the container side ([::1]:80:8080 too).
  if (const std::size_t colon = ports.rfind(':'); colon != std::string::npos) ports.erase(0, colon + 1);
  // The policy's own parser decides: what passes here, cage-init accepts.
  const auto range = dnsguard::parse_port_range(ports + "/" + proto);
  if (!range) {
    throw std::invalid_argument("cannot read the published port '" + spec +
                                "' (want [IP:][HOST:]PORT[-PORT][/tcp|udp|sctp], ports 1-65535)");
  }
  return *range;
}

std::vector<PublishSpec> publish_specs(const std::vector<std::string>& docker_args) {
  std::vector<PublishSpec> out;
  for (std::size_t i = 0; i < docker_args.size(); ++i) {
    const std::string& a = docker_args[i];
    if ((a == "-p" || a == "--publish") && i + 1 < docker_args.size()) {
      out.push_back({i + 1, docker_args[i + 1]});
      ++i;
    } else if (a.rfind("--publish=", 0) == 0) {
      out.push_back({i, a.substr(10)});
    } else if (a.size() > 2 && a.rfind("-p", 0) == 0) {
      out.push_back({i, a.substr(2)});
    }
  }
  return out;
}

dnsguard::Policy session_policy(const Config& config) {
  dnsguard::Policy policy;
  // Both loopbacks: cage-init drops [::1] where the namespace has no IPv6.
  policy.listen = {*dnsguard::parse_endpoint("127.0.0.1:53", 53), *dnsguard::parse_endpoint("[::1]:53", 53)};
  // No resolvers configured: no upstreams key, so dnsguard/cage-init take
  // the nameservers Docker wrote into the container's resolv.conf.
  policy.upstreams = config.dns_resolvers;
  policy.allow = config.domains;
  policy.inbound = config.inbound;
  // The connection gate is on unless trusted config turned it off.
  policy.gate_enabled = config.connection_gate;
  // The secrets' hosts go to the relay (only names: the values never enter
  // the policy, which the agent can read).
  std::set<std::string> relayed;
  for (const SecretSpec& s : config.secrets) relayed.insert(s.hosts.begin(), s.hosts.end());
  policy.relay_hosts.assign(relayed.begin(), relayed.end());
  policy.learn = config.learn;
  policy.ask_enabled = config.ask;
  policy.ask_timeout = config.ask_timeout;
  return policy;
}

std::string render_policy_toml(const Config& config) {
  return dnsguard::write_policy(session_policy(config),
                                "cagent session policy (generated; read-only inside the cage)");
}

}  // namespace cagent::launcher::host
