#include "launcher/cage/plan.hpp"

#include "dnsguard/contracts.hpp"

#include <linux/capability.h>

#include <algorithm>

namespace cagent::cage {
namespace {

bool is_unspecified(const dnsguard::IpAddress& address) {
  const std::size_t len = address.v6 ? 16 : 4;
  return std::all_of(address.bytes.begin(), address.bytes.begin() + static_cast<std::ptrdiff_t>(len),
                     [](std::uint8_t b) { return b == 0; });
}

// 127.0.0.1 or ::1: the loopback address every local service uses.
bool is_shared_loopback(const dnsguard::IpAddress& address) {
  dnsguard::IpAddress a{address.v6, {}};
  if (address.v6) a.bytes[15] = 1;
  else a.bytes = {127, 0, 0, 1};
  return address == a;
}

bool is_loopback(const dnsguard::IpAddress& address) {
  if (!address.v6) return address.bytes[0] == 127;
  dnsguard::IpAddress one{true, {}};
  one.bytes[15] = 1;
  return address == one;
}

// dnsguard may listen on a wildcard; the probe needs a concrete address.
nft::Endpoint probe_endpoint(const std::vector<dnsguard::IpEndpoint>& listen) {
  const auto v4 = std::find_if(listen.begin(), listen.end(), [](const dnsguard::IpEndpoint& e) { return !e.addr.v6; });
  dnsguard::IpEndpoint probe = v4 != listen.end() ? *v4 : listen.front();
  if (is_unspecified(probe.addr)) {
    probe.addr.bytes = {};
    if (!probe.addr.v6) {
      probe.addr.bytes[0] = 127;
      probe.addr.bytes[3] = 1;
    } else {
      probe.addr.bytes[15] = 1;
    }
  }
  return to_nft(probe);
}

template <typename T>
auto all_to_nft(const std::vector<T>& values) {
  std::vector<decltype(to_nft(values.front()))> out;
  for (const T& v : values) out.push_back(to_nft(v));
  return out;
}

bool has_key(const std::string& entry, std::string_view key) {
  return entry.size() > key.size() && entry.compare(0, key.size(), key) == 0 && entry[key.size()] == '=';
}

std::vector<std::string> command_environment(const Options& options, const Facts& facts) {
  std::vector<std::string_view> replaced = {"HOME", "USER", "LOGNAME", "SHELL"};
  replaced.insert(replaced.end(), std::begin(kCaVariables), std::end(kCaVariables));
  std::vector<std::string> environment;
  for (const auto& entry : facts.environment) {
    if (std::none_of(replaced.begin(), replaced.end(), [&](std::string_view key) { return has_key(entry, key); })) {
      environment.push_back(entry);
    }
  }
  environment.push_back("HOME=" + facts.agent.home.string());
  environment.push_back("USER=" + facts.agent.name);
  environment.push_back("LOGNAME=" + facts.agent.name);
  environment.push_back("SHELL=" + facts.agent.shell);
  if (options.ca_bundle || !facts.policy.relay_hosts.empty()) {
    // All of them point at the merged system bundle (system CAs + extra, and
    // the secret relay's session CA), not at the extra file alone: several
    // of these variables *replace* the default store rather than add to it.
    for (std::string_view key : kCaVariables) {
      environment.push_back(std::string(key) + "=" + options.system_ca_bundle.string());
    }
  }
  return environment;
}

// The agent's final uid/gid: the workspace owner's, unless taking it would
// make the agent root, put it in the root group or give it dnsguard's ids.
Owner decide_agent_identity(const Options& options, const Facts& facts, std::vector<std::string>& warnings) {
  const Owner agent_was{facts.agent.uid, facts.agent.gid};
  if (!facts.workspace_owner) {
    warnings.push_back(options.workspace.string() + " does not exist; the agent keeps uid " +
                       std::to_string(agent_was.uid));
    return agent_was;
  }
  const Owner& owner = *facts.workspace_owner;
  if (owner.uid == 0 || owner.gid == 0) {
    // Taking gid 0 would put the agent in the root group (root-group-writable
    // files, group-readable secrets): a workspace of group 0 is treated like
    // a root-owned one, uid and gid both stay the agent's.
    warnings.push_back(options.workspace.string() + " is owned by root" + (owner.uid == 0 ? "" : " (group 0)") +
                       "; the agent keeps uid " + std::to_string(agent_was.uid) + " and may not be able to write it");
    return agent_was;
  }
  if (owner.uid == facts.dnsguard.uid || owner.gid == facts.dnsguard.gid) {
    warnings.push_back(options.workspace.string() + " is owned by dnsguard's uid/gid; the agent keeps uid " +
                       std::to_string(agent_was.uid) + " (taking it would let the agent bypass the DNS filter)");
    return agent_was;
  }
  return owner;
}

// The upstreams served from inside this namespace (a loopback address:
// Docker's embedded resolver, 127.0.0.11) and who serves each, from the
// sockets that existed before the agent: the ruleset lets only that uid
// answer dnsguard's flows locally and forward queries out.
std::vector<nft::LocalResolver> local_resolvers(const std::vector<dnsguard::IpEndpoint>& upstreams, const Facts& facts,
                                                Owner agent, std::vector<std::string>& warnings) {
  std::vector<nft::LocalResolver> out;
  for (const dnsguard::IpEndpoint& up : upstreams) {
    if (!is_loopback(up.addr)) continue;
    const nft::Address addr = to_nft(up.addr);
    if (std::any_of(out.begin(), out.end(), [&](const nft::LocalResolver& r) { return r.addr == addr; })) continue;
    // Its own port first; Docker's NAT hides the embedded resolver's real
    // one, so an address of its own (not the 127.0.0.1 / ::1 everyone
    // shares) is also taken whole.
    std::vector<uid_t> owners = owners_of(facts.local_sockets, addr, up.port);
    if (owners.empty() && !is_shared_loopback(up.addr)) owners = owners_of(facts.local_sockets, addr);
    const std::string where = "upstream " + dnsguard::to_string(up);
    if (owners.empty()) {
      // Nothing serves it: lookups will fail, and nobody may pose as it.
      warnings.push_back(where + " is local, but no socket of this namespace is bound to its address; "
                                 "lookups through it will fail");
      continue;
    }
    if (owners.size() > 1) {
      throw PlanError(where + ": sockets of several uids are bound to its address; cannot tell which is the resolver");
    }
    const uid_t uid = owners.front();
    if (uid == facts.dnsguard.uid || uid == agent.uid || uid == facts.agent.uid) {
      throw PlanError(where + ": the socket bound to its address belongs to uid " + std::to_string(uid) +
                      ", which is dnsguard's or the agent's");
    }
    out.push_back(nft::LocalResolver{addr, static_cast<std::uint32_t>(uid)});
  }
  return out;
}

}  // namespace

namespace {

// The accounts the plan is made for: the agent is never root or in the
// root group, dnsguard is never root, and they never share a uid.
void check_accounts(const Facts& facts) {
  if (facts.agent.uid == 0) throw PlanError("agent user \"" + facts.agent.name + "\" is root");
  // gid 0 is as good as root for everything group-writable by root (and
  // everything readable by group root): the agent never joins it.
  if (facts.agent.gid == 0) throw PlanError("agent user \"" + facts.agent.name + "\" has gid 0 (root)");
  if (facts.dnsguard.uid == 0) throw PlanError("dnsguard user \"" + facts.dnsguard.name + "\" is root");
  if (facts.agent.uid == facts.dnsguard.uid) {
    // The ruleset tells dnsguard's DNS apart by uid: sharing it would let the
    // agent talk to the upstreams directly and signal dnsguard.
    throw PlanError("agent and dnsguard users share uid " + std::to_string(facts.agent.uid));
  }
}

// What dnsguard will read: the policy, with upstreams and listen adapted to
// this cage (see step::WritePolicyCopy); written only when it differs.
step::WritePolicyCopy adapt_policy(const Options& options, const Facts& facts, std::vector<std::string>& warnings) {
  const Policy& policy = facts.policy;
  step::WritePolicyCopy copy{policy.path, options.runtime_dir / "policy.toml", policy, std::nullopt};
  if (copy.policy.upstreams.empty()) {
    copy.policy.upstreams = facts.resolv_conf_upstreams;
    if (copy.policy.upstreams.empty()) {
      throw PlanError("no upstream resolver: " + policy.path.string() + " names none and " +
                      options.resolv_conf.string() + " has no usable nameserver");
    }
  }
  if (!facts.ipv6_loopback) {
    std::erase_if(copy.policy.listen, [](const dnsguard::IpEndpoint& e) { return e.addr.v6; });
    if (copy.policy.listen.empty()) throw PlanError("dnsguard would listen on IPv6 only, and this namespace has no IPv6");
    if (copy.policy.listen.size() != policy.listen.size()) {
      warnings.push_back("no IPv6 in this network namespace; dnsguard listens on IPv4 only");
    }
  }
  for (const auto& upstream : copy.policy.upstreams) {
    for (const auto& listen : copy.policy.listen) {
      const bool wildcard_hit = is_unspecified(listen.addr) && listen.addr.v6 == upstream.addr.v6 &&
                                is_loopback(upstream.addr);
      if (upstream.port == listen.port && (upstream.addr == listen.addr || wildcard_hit)) {
        throw PlanError("upstream " + dnsguard::to_string(upstream) + " is dnsguard's own listen address");
      }
    }
  }
  return copy;
}

nft::RulesetSpec ruleset_spec(const Facts& facts, const dnsguard::Policy& adapted, Owner agent,
                              std::vector<std::string>& warnings) {
  const Policy& policy = facts.policy;
  nft::RulesetSpec spec;
  spec.table = policy.nft_table;
  spec.set4 = policy.nft_set4;
  spec.set6 = policy.nft_set6;
  spec.dnsguard_uid = facts.dnsguard.uid;
  spec.upstreams = all_to_nft(adapted.upstreams);
  spec.local_resolvers = local_resolvers(adapted.upstreams, facts, agent, warnings);
  spec.listen_port = adapted.listen.front().port;
  spec.static_cidrs = all_to_nft(policy.allow_cidrs);
  spec.onlink6 = facts.onlink6;
  spec.inbound = all_to_nft(policy.inbound);
  if (policy.gate_enabled) {
    // The connection gate: dnsguard listens on gate.port; these ports of
    // allowed addresses are redirected there.
    spec.gate_port = static_cast<std::uint16_t>(policy.gate_port);
    if (!policy.relay_hosts.empty()) {
      spec.relay_port = static_cast<std::uint16_t>(policy.relay_port);
      spec.relay_uid = policy.relay_uid;
    }
    for (const std::uint32_t port : policy.gate_tls_ports) spec.gated_ports.push_back(static_cast<std::uint16_t>(port));
    for (const std::uint32_t port : policy.gate_http_ports) spec.gated_ports.push_back(static_cast<std::uint16_t>(port));
  }
  return spec;
}

step::StartRelay start_relay(const Options& options, const Facts& facts, Owner agent) {
  const Policy& policy = facts.policy;
  if (!options.secrets_socket) {
    throw PlanError("the policy names secret hosts (relay.hosts) but no --secrets socket was given");
  }
  const auto uid = static_cast<uid_t>(policy.relay_uid);
  // Its own uid: the agent could signal or trace a relay of its uid, and
  // the ruleset lets only this uid's connections skip the gate.
  if (uid == agent.uid || uid == facts.dnsguard.uid || uid == 0) {
    throw PlanError("relay.uid " + std::to_string(uid) + " is also the agent's, dnsguard's or root's");
  }
  step::StartRelay s;
  s.binary = options.relay;
  s.user = Account{"cagent-relay", uid, static_cast<gid_t>(uid), "/", "/bin/false"};
  s.port = static_cast<std::uint16_t>(policy.relay_port);
  s.secrets_socket = *options.secrets_socket;
  s.record = dnsguard::relay_record_path(dnsguard::session_log_dir(policy.log_file));
  s.trust = options.system_ca_bundle;
  return s;
}

step::RunCommand run_command(const Options& options, const Facts& facts, Owner agent) {
  step::RunCommand run;
  run.user = facts.agent;
  run.user.uid = agent.uid;
  run.user.gid = agent.gid;
  if (run.user.shell.empty()) run.user.shell = "/bin/sh";
  run.environment = command_environment(options, facts);
  if (options.command.empty()) {
    // A login shell: argv[0] starting with '-' is how login(1) asks for one.
    run.file = run.user.shell;
    run.argv = {"-" + std::filesystem::path(run.user.shell).filename().string()};
  } else {
    run.file = options.command.front();
    run.argv = options.command;
  }
  return run;
}

// One role of the Pod form (see Mode): the steps of that container, made
// by the same functions as the whole cage's. No remap and no home claim: in
// a Pod the agent's uid and gid are the manifest's (runAsUser, fsGroup),
// not the workspace owner's, and its home is the container's own.
Plan plan_pod_role(const Options& options, const Facts& facts) {
  Plan plan;
  const Owner agent{facts.agent.uid, facts.agent.gid};
  const step::WritePolicyCopy copy = adapt_policy(options, facts, plan.warnings);
  const bool write_copy = copy.policy != static_cast<const dnsguard::Policy&>(facts.policy);
  const step::WaitForDnsguard wait{probe_endpoint(copy.policy.listen), options.dnsguard_ready_timeout};
  switch (options.mode) {
    case Mode::guard:
      plan.steps.push_back(step::CheckPolicy{options.dnsguard, facts.policy.path});
      plan.steps.push_back(step::InstallRuleset{ruleset_spec(facts, copy.policy, agent, plan.warnings)});
      plan.ending = Plan::Ending::exit;
      break;
    case Mode::dnsguard:
      plan.steps.push_back(step::CheckPolicy{options.dnsguard, facts.policy.path});
      if (write_copy) plan.steps.push_back(copy);
      plan.steps.push_back(step::PrepareLogDir{std::filesystem::path(facts.policy.log_file).parent_path(),
                                               Owner{facts.dnsguard.uid, facts.dnsguard.gid}, agent});
      plan.steps.push_back(step::StartDnsguard{
          options.dnsguard, write_copy ? copy.destination : facts.policy.path, facts.dnsguard,
          {CAP_NET_ADMIN, CAP_NET_BIND_SERVICE},
          copy.policy.gate_enabled ? static_cast<std::uint16_t>(copy.policy.gate_port) : std::uint16_t{0}});
      plan.steps.push_back(wait);
      plan.ending = Plan::Ending::serve_dnsguard;
      break;
    case Mode::probe:
      plan.steps.push_back(wait);
      plan.ending = Plan::Ending::exit;
      break;
    case Mode::agent: {
      // Waiting here also covers clusters without native sidecars, where
      // nothing orders dnsguard's start before the agent's.
      plan.steps.push_back(wait);
      step::RunCommand run = run_command(options, facts, agent);
      run.switch_user = false;
      plan.steps.push_back(std::move(run));
      break;
    }
    case Mode::cage: throw PlanError("plan_pod_role: mode cage is the whole cage");
  }
  return plan;
}

}  // namespace

Plan plan_cage_init(const Options& options, const Facts& facts) {
  check_accounts(facts);
  if (options.mode != Mode::cage) return plan_pod_role(options, facts);
  const Policy& policy = facts.policy;
  Plan plan;
  if (options.owner_socket) plan.steps.push_back(step::WatchOwner{*options.owner_socket});
  plan.steps.push_back(step::CheckPolicy{options.dnsguard, policy.path});
  const step::WritePolicyCopy copy = adapt_policy(options, facts, plan.warnings);
  const bool write_copy = copy.policy != static_cast<const dnsguard::Policy&>(policy);
  if (write_copy) plan.steps.push_back(copy);

  // Decide the agent's final identity before anything depends on it.
  const Owner agent_was{facts.agent.uid, facts.agent.gid};
  const Owner agent_is = decide_agent_identity(options, facts, plan.warnings);

  plan.steps.push_back(step::InstallRuleset{ruleset_spec(facts, copy.policy, agent_is, plan.warnings)});
  plan.steps.push_back(step::PrepareLogDir{std::filesystem::path(policy.log_file).parent_path(),
                                           Owner{facts.dnsguard.uid, facts.dnsguard.gid}, agent_is});
  plan.steps.push_back(step::StartDnsguard{
      options.dnsguard, write_copy ? copy.destination : policy.path, facts.dnsguard,
      {CAP_NET_ADMIN, CAP_NET_BIND_SERVICE},
      copy.policy.gate_enabled ? static_cast<std::uint16_t>(copy.policy.gate_port) : std::uint16_t{0}});
  plan.steps.push_back(step::WaitForDnsguard{probe_endpoint(copy.policy.listen), options.dnsguard_ready_timeout});
  // Only loopback: the stub is the one resolver; if it dies, lookups fail
  // instead of falling back to an open resolver.
  plan.steps.push_back(step::WriteResolvConf{options.resolv_conf, "nameserver 127.0.0.1\n"});
  if (options.ca_bundle) {
    plan.steps.push_back(step::InstallCaBundle{*options.ca_bundle, options.system_ca_bundle});
  }
  if (!copy.policy.relay_hosts.empty()) {
    plan.steps.push_back(start_relay(options, facts, agent_is));
  } else if (options.secrets_socket) {
    // cagent serves the secrets to the first connection only, counting on
    // this step to make it before the agent exists: never start without it.
    throw PlanError("--secrets was given but the policy names no secret hosts (relay.hosts)");
  }
  if (agent_is.uid != agent_was.uid || agent_is.gid != agent_was.gid) {
    plan.steps.push_back(step::RemapAgent{facts.agent.name, agent_was, agent_is});
  }
  // Always, not only when remapping: the home may still belong to the uid of
  // the previous session's workspace even when this one needs no remap.
  if (!facts.agent.home.empty() && facts.agent.home != "/") {
    plan.steps.push_back(step::ClaimHome{facts.agent.home, agent_is, {0, facts.dnsguard.uid}});
  }
  plan.steps.push_back(run_command(options, facts, agent_is));
  // Optional: only with an engine to start (cagent passes --nested-docker
  // on sysbox engines). Without it the plan is exactly the one above.
  if (!options.nested_dockerd.empty()) add_nested_docker(plan, options, facts, agent_is, copy);
  return plan;
}

std::string_view step_name(const Step& step) {
  struct Namer {
    std::string_view operator()(const step::WatchOwner&) const { return "watch-owner"; }
    std::string_view operator()(const step::CheckPolicy&) const { return "check-policy"; }
    std::string_view operator()(const step::WritePolicyCopy&) const { return "write-policy-copy"; }
    std::string_view operator()(const step::InstallRuleset&) const { return "install-ruleset"; }
    std::string_view operator()(const step::PrepareLogDir&) const { return "prepare-log-dir"; }
    std::string_view operator()(const step::StartDnsguard&) const { return "start-dnsguard"; }
    std::string_view operator()(const step::WaitForDnsguard&) const { return "wait-for-dnsguard"; }
    std::string_view operator()(const step::WriteResolvConf&) const { return "write-resolv-conf"; }
    std::string_view operator()(const step::InstallCaBundle&) const { return "install-ca-bundle"; }
    std::string_view operator()(const step::StartRelay&) const { return "start-relay"; }
    std::string_view operator()(const step::RemapAgent&) const { return "remap-agent"; }
    std::string_view operator()(const step::ClaimHome&) const { return "claim-home"; }
    std::string_view operator()(const step::CreateNestedLink&) const { return "create-nested-link"; }
    std::string_view operator()(const step::StartNestedDocker&) const { return "start-nested-docker"; }
    std::string_view operator()(const step::RunCommand&) const { return "run-command"; }
  };
  return std::visit(Namer{}, step);
}

}  // namespace cagent::cage
