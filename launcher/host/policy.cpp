#include "launcher/host/policy.hpp"

#include <cstdio>
#include <stdexcept>
#include <vector>

namespace cagent::launcher::host {
namespace {

std::string toml_string(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(c);
    } else if (u < 0x20 || u == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", u);
      out += buf;
    } else {
      out.push_back(c);
    }
  }
  return out + "\"";
}

std::string toml_array(const std::vector<std::string>& items) {
  std::string out = "[";
  for (std::size_t i = 0; i < items.size(); ++i) {
    out += (i == 0 ? "\n  " : ",\n  ") + toml_string(items[i]);
  }
  return out + (items.empty() ? "]" : ",\n]");
}

}  // namespace

std::string inbound_entry(const std::string& spec) {
  std::string ports = spec;
  std::string proto = "tcp";
  if (const std::size_t slash = ports.rfind('/'); slash != std::string::npos) {
    proto = ports.substr(slash + 1);
    ports.resize(slash);
  }
  // What follows the last ':' is the container side ([::1]:80:8080 too).
  if (const std::size_t colon = ports.rfind(':'); colon != std::string::npos) ports.erase(0, colon + 1);
  const bool digits = !ports.empty() && ports.find_first_not_of("0123456789-") == std::string::npos;
  if (!digits || (proto != "tcp" && proto != "udp" && proto != "sctp")) {
    throw std::invalid_argument("cannot read the published port '" + spec +
                                "' (want [IP:][HOST:]PORT[-PORT][/tcp|udp|sctp])");
  }
  return ports + "/" + proto;
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

std::vector<std::string> published_ports(const std::vector<std::string>& docker_args) {
  std::vector<std::string> out;
  for (const PublishSpec& p : publish_specs(docker_args)) out.push_back(inbound_entry(p.spec));
  return out;
}

std::string render_policy_toml(const Config& config) {
  std::string out = "# cagent session policy (generated; read-only inside the cage)\n";
  out += "listen = [\"127.0.0.1:53\", \"[::1]:53\"]\n";
  // No upstreams key: dnsguard/cage-init take the nameservers Docker wrote
  // into the container's resolv.conf.
  if (!config.dns_resolvers.empty()) out += "upstreams = " + toml_array(config.dns_resolvers) + "\n";
  out += "allow = " + toml_array(config.domains) + "\n";
  // Inbound connections: only to what the user published (trusted config).
  if (const std::vector<std::string> inbound = published_ports(config.extra_args); !inbound.empty())
    out += "inbound = " + toml_array(inbound) + "\n";
  out += "\n[nft]\ntable = \"cagent\"\nset4 = \"allow4\"\nset6 = \"allow6\"\n";
  out += "\n[log]\nfile = \"/var/log/cagent/dnsguard.log\"\n";
  return out;
}

}  // namespace cagent::launcher::host
