#pragma once
// The session policy (dnsguard/policy.hpp, the DESIGN.md contract), written
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

// What a session starts with. Throws std::invalid_argument (or
// dnsguard::PatternError) for a value the policy cannot hold; validate()
// has already refused those, so this is a second line, not the first.
dnsguard::Policy session_policy(const Config& config);
std::string render_policy_toml(const Config& config);

// A -p/--publish value among `docker run` arguments and the index of the
// argument that holds it.
struct PublishSpec {
  std::size_t index = 0;
  std::string spec;
};
std::vector<PublishSpec> publish_specs(const std::vector<std::string>& docker_args);

// "[IP:][HOST:]CONTAINER[-END][/PROTO]" -> "CONTAINER[-END]/PROTO" (the
// policy's form); throws std::invalid_argument for anything else.
std::string inbound_entry(const std::string& spec);

// The container ports that `docker run` arguments publish (-p/--publish
// [IP:][HOST:]CONTAINER[-END][/PROTO]), as the policy's `inbound` entries
// ("8080/tcp"). The cage's firewall admits inbound connections to these
// only; extra_args reach the policy only from trusted config and flags.
// Throws std::invalid_argument for a spec it cannot read.
std::vector<std::string> published_ports(const std::vector<std::string>& docker_args);

}  // namespace cagent::launcher::host
