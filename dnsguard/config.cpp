#include "dnsguard/config.hpp"

#include <fstream>
#include <sstream>

namespace cagent::dnsguard {

Config normalize(const Policy& policy, const std::vector<IpEndpoint>& default_upstreams,
                 const std::string& source) {
  Config c{policy};
  if (c.upstreams.empty()) {
    c.upstreams = default_upstreams;
    if (c.upstreams.empty())
      throw ConfigError(ConfigError::Kind::invalid,
                        source + ":0: upstreams: not set and no nameserver found in resolv.conf");
  }
  return c;
}

Config load_config(const std::string& path, const std::string& resolv_conf) {
  const Policy policy = read_policy(path);
  std::vector<IpEndpoint> defaults;
  if (policy.upstreams.empty()) {
    std::ifstream resolv(resolv_conf);
    std::stringstream text;
    text << resolv.rdbuf();
    defaults = parse_resolv_conf(text.str());
  }
  return normalize(policy, defaults, path);
}

}  // namespace cagent::dnsguard
