#pragma once
// The session policy: dnsguard's TOML config (DESIGN.md contract), written
// by cagent into the session directory and mounted read-only at
// /etc/cagent/policy.toml for cage-init and dnsguard.

#include <string>

#include "launcher/host/config.hpp"

namespace cagent::launcher::host {

std::string render_policy_toml(const Config& config);

}  // namespace cagent::launcher::host
