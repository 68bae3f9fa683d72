#pragma once
// The session policy (dnsguard/policy.hpp, the contract cagent, cage-init
// and dnsguard share), written
// by cagent into the session directory and mounted read-only at
// /etc/cagent/policy.toml for cage-init and dnsguard.
//
// Data flow: validated Config --session_policy()--> dnsguard::Policy
// --render_policy_toml() (dnsguard::write_policy, toml++)--> file text.

#include <cstddef>
#include <string>
#include <vector>

#include "dnsguard/policy.hpp"
#include "launcher/host/config.hpp"

namespace cagent::launcher::host {

// What a session starts with: a field copy of the validated config (every
// value was typed and checked once, in validate()).
dnsguard::Policy session_policy(const Config& config);
std::string render_policy_toml(const Config& config);

// A -p/--publish value among `docker run` arguments and the index of the
// argument that holds it.
struct PublishSpec {
  std::size_t index = 0;
  std::string spec;
};
std::vector<PublishSpec> publish_specs(const std::vector<std::string>& docker_args);

// "[IP:][HOST:]CONTAINER[-END][/PROTO]" -> the container port range the
// policy's `inbound` holds; throws std::invalid_argument for anything else.
// The cage's firewall admits inbound connections to these only; extra_args
// reach the policy only from trusted config and flags.
dnsguard::PortRange inbound_port(const std::string& spec);

}  // namespace cagent::launcher::host
