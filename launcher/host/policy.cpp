#include "launcher/host/policy.hpp"

#include <cstdio>
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

std::string render_policy_toml(const Config& config) {
  std::string out = "# cagent session policy (generated; read-only inside the cage)\n";
  out += "listen = [\"127.0.0.1:53\", \"[::1]:53\"]\n";
  // No upstreams key: dnsguard/cage-init take the nameservers Docker wrote
  // into the container's resolv.conf.
  if (!config.dns_resolvers.empty()) out += "upstreams = " + toml_array(config.dns_resolvers) + "\n";
  out += "allow = " + toml_array(config.domains) + "\n";
  out += "\n[nft]\ntable = \"cagent\"\nset4 = \"allow4\"\nset6 = \"allow6\"\n";
  out += "\n[log]\nfile = \"/var/log/cagent/dnsguard.log\"\n";
  return out;
}

}  // namespace cagent::launcher::host
