#pragma once
// cage-init as an ordered list of operations (bubblewrap style).
//
// Data flow: cmd/cage-init parses argv into Options; gather_facts() (system.hpp)
// reads the policy, the original resolv.conf, the two accounts and the owner of
// the workspace into Facts; plan_cage_init() — pure, unit-tested — turns both
// into a Plan; run_plan() (executor.hpp) performs the steps in order and stops
// at the first failure, so the command step can only be reached after the
// firewall is installed and dnsguard answers.

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "launcher/cage/policy.hpp"
#include "nft/nft.hpp"

namespace cagent::cage {

struct Options {
  std::filesystem::path policy = "/etc/cagent/policy.toml";
  std::string agent_user = "agent";
  std::string dnsguard_user = "dnsguard";
  std::filesystem::path dnsguard = "/usr/local/bin/dnsguard";
  std::optional<std::filesystem::path> ca_bundle;   // extra CAs to trust (issue 8)
  std::filesystem::path workspace = "/workspace";
  std::filesystem::path runtime_dir = "/run/cagent"; // root-only scratch (policy copy)
  std::filesystem::path resolv_conf = "/etc/resolv.conf";
  std::filesystem::path system_ca_bundle = "/etc/ssl/certs/ca-certificates.crt";
  std::chrono::milliseconds dnsguard_ready_timeout{15000};
  std::vector<std::string> command;                  // empty: the agent's login shell
};

struct Account {
  std::string name;
  uid_t uid = 0;
  gid_t gid = 0;
  std::filesystem::path home;
  std::string shell;
};

struct Owner {
  uid_t uid = 0;
  gid_t gid = 0;
};

struct Facts {
  Policy policy;
  // The container's original resolvers (before write-resolv-conf).
  std::vector<::cagent::dnsguard::IpEndpoint> resolv_conf_upstreams;
  Account agent;
  Account dnsguard;
  std::optional<Owner> workspace_owner;              // nullopt: no workspace
  std::vector<std::string> environment;              // cage-init's own, "KEY=VALUE"
  bool ipv6_loopback = true;                         // ::1 can be bound (Docker's default
                                                     // bridge disables IPv6 entirely)
  std::vector<nft::Cidr> onlink6;                    // IPv6 prefixes of the cage's links
};

// Environment variables the common runtimes read for their trust store.
inline constexpr std::string_view kCaVariables[] = {
    "SSL_CERT_FILE", "NODE_EXTRA_CA_CERTS", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE",
    "GIT_SSL_CAINFO", "PIP_CERT",           "CARGO_HTTP_CAINFO"};

namespace step {
// `dnsguard --config POLICY --check`: cage-init read the policy with the
// same code (dnsguard/policy.hpp), and this asks the dnsguard binary that
// will run it, so an image whose dnsguard disagrees stops here, before
// anything changed.
struct CheckPolicy {
  std::filesystem::path dnsguard;
  std::filesystem::path policy;
};
// dnsguard gets a copy of the policy with some keys replaced: `upstreams`
// when the policy names none (the ones the ruleset admits, instead of letting
// dnsguard read resolv.conf, which this plan rewrites a few steps later), and
// `listen` without IPv6 addresses when the namespace has no IPv6 (binding
// [::1] would fail and take dnsguard down).
struct WritePolicyCopy {
  std::filesystem::path source;
  std::filesystem::path destination;
  ::cagent::dnsguard::Policy policy;      // what dnsguard reads: the source's, adapted
};
struct InstallRuleset {
  nft::RulesetSpec spec;
};
// During the session the log directory belongs to dnsguard (the agent may
// read, not write); afterwards it is handed to the workspace owner, who is the
// host user reading the summary.
struct PrepareLogDir {
  std::filesystem::path dir;
  Owner during;
  Owner after;
};
struct StartDnsguard {
  std::filesystem::path binary;
  std::filesystem::path config;
  Account user;
  std::vector<int> ambient_capabilities;   // and nothing else, in any set
};
struct WaitForDnsguard {
  nft::Endpoint probe;
  std::chrono::milliseconds timeout;
};
struct WriteResolvConf {
  std::filesystem::path path;
  std::string content;
};
struct InstallCaBundle {
  std::filesystem::path source;
  std::filesystem::path system_bundle;
};
// passwd/group: the agent's account takes the workspace owner's uid/gid.
struct RemapAgent {
  std::string user;
  Owner from;
  Owner to;
};
// The agent's home (a volume kept across sessions) belongs to whoever the
// agent is in *this* session, whoever it belonged to before: after a session
// for a workspace of another uid, the home is that uid's, and only moving
// every entry back lets the next session write ~/.npm again. Entries owned by
// one of `keep_uids` (root, dnsguard) are never the agent's and are left
// alone; symlinks are never followed (the walk is openat(O_NOFOLLOW) from
// the home's fd, so a link swapped in mid-walk cannot lead it elsewhere) and
// other filesystems mounted below are not entered.
struct ClaimHome {
  std::filesystem::path home;
  Owner owner;
  std::vector<uid_t> keep_uids;
};
// Drops every capability, sets no_new_privs, switches to `user`, execs.
struct RunCommand {
  Account user;
  std::string file;                       // resolved through PATH if no '/'
  std::vector<std::string> argv;
  std::vector<std::string> environment;
};
}  // namespace step

using Step = std::variant<step::CheckPolicy, step::WritePolicyCopy, step::InstallRuleset, step::PrepareLogDir,
                          step::StartDnsguard, step::WaitForDnsguard, step::WriteResolvConf,
                          step::InstallCaBundle, step::RemapAgent, step::ClaimHome, step::RunCommand>;

struct Plan {
  std::vector<Step> steps;
  std::vector<std::string> warnings;   // printed, not fatal (e.g. root-owned workspace)
};

// A plan cannot be made from these facts (e.g. no upstream resolver at all).
class PlanError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

Plan plan_cage_init(const Options& options, const Facts& facts);

// Short, stable names used in error messages: "install-ruleset", …
std::string_view step_name(const Step& step);

}  // namespace cagent::cage
