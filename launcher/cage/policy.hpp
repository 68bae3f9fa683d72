#pragma once
// What cage-init knows from the session policy (dnsguard/policy.hpp; the
// contract is cmd/README.md, "The session policy") and from the container's
// original /etc/resolv.conf.
//
// Data flow: read_policy() parses the file with the same code dnsguard uses
// (one schema, one set of rules: both programs accept and reject the same
// files with the same messages) and keeps the path; plan_cage_init() turns
// it into steps, converting addresses to nft types through the to_nft()
// functions below — the one place where dnsguard's types meet nft's.

#include <filesystem>
#include <string>
#include <string_view>

#include "dnsguard/policy.hpp"
#include "nft/nft.hpp"

namespace cagent::cage {

// Names the file, the line and the bad key. kind() tells a file that cannot
// be read as TOML (step read-policy) from one that breaks the schema
// (step check-policy).
using PolicyError = dnsguard::PolicyError;

struct Policy : dnsguard::Policy {
  std::filesystem::path path;
};

// Throws PolicyError.
Policy read_policy(const std::filesystem::path& path);

// The nameservers of a resolv.conf text (dnsguard::parse_resolv_conf).
using dnsguard::parse_resolv_conf;

nft::Address to_nft(const dnsguard::IpAddress& address);
nft::Endpoint to_nft(const dnsguard::IpEndpoint& endpoint);
nft::Cidr to_nft(const dnsguard::Cidr& cidr);
nft::InboundPort to_nft(const dnsguard::PortRange& range);

// "192.0.2.1:53" / "[2001:db8::1]:53", the form the policy's endpoints take.
std::string format_endpoint(const nft::Endpoint& endpoint);

}  // namespace cagent::cage
