// Nested Docker's part of cage-init's plan (sysbox engines only): a pure
// pass over the core plan that adds the link, the engine's sandbox and the
// agent's DOCKER_HOST at their places. The core plan never tests for it.

#include <algorithm>

#include "launcher/cage/plan.hpp"

namespace cagent::cage {
namespace {

template <typename T>
std::vector<Step>::iterator find_step(std::vector<Step>& steps) {
  return std::find_if(steps.begin(), steps.end(), [](const Step& s) { return std::holds_alternative<T>(s); });
}

template <typename T>
T& the_step(std::vector<Step>& steps) {
  const auto it = find_step<T>(steps);
  if (it == steps.end()) throw PlanError(std::string("internal: the core plan has no ") + std::string(step_name(T{})));
  return std::get<T>(*it);
}

step::StartNestedDocker engine_step(const Options& options, const Facts& facts, Owner agent) {
  const nft::Address cage_end = *nft::parse_address(kNestedCageAddress);
  step::StartNestedDocker engine;
  engine.ip = facts.ip_binary;
  engine.dockerd = options.nested_dockerd;
  engine.socket_dir = options.nested_socket_dir;
  engine.data_root = options.nested_data_root;
  engine.agent = agent;
  engine.dnsguard = Owner{facts.dnsguard.uid, facts.dnsguard.gid};
  engine.peer = std::string(kNestedPeer);
  engine.sandbox_address = nft::Cidr{*nft::parse_address(kNestedSandboxAddress), kNestedPrefix};
  engine.gateway = cage_end;
  engine.hidden = {std::filesystem::path(facts.policy.log_file).parent_path(), options.runtime_dir};
  std::erase_if(engine.hidden, [](const std::filesystem::path& p) { return p.empty() || p == "/"; });
  if (facts.workspace_owner) engine.writable.push_back(options.workspace);
  if (!facts.agent.home.empty() && facts.agent.home != "/") engine.writable.push_back(facts.agent.home);
  engine.writable.push_back(options.nested_socket_dir);
  engine.writable.push_back(options.nested_data_root);
  engine.dockerd_args = {"--host", "unix://" + (options.nested_socket_dir / "docker.sock").string(),
                         // The sandbox's gid 0 is the agent's gid outside.
                         "--group", "0",
                         "--dns", std::string(kNestedCageAddress),
                         "--data-root", options.nested_data_root.string(),
                         // The sandbox has no IPv6; IPv4 is what the link carries.
                         "--ip6tables=false"};
  return engine;
}

}  // namespace

void add_nested_docker(Plan& plan, const Options& options, const Facts& facts, Owner agent,
                       step::WritePolicyCopy copy) {
  if (facts.ip_binary.empty()) {
    plan.warnings.push_back("no ip binary in the image; nested Docker is off");
    return;
  }
  std::vector<Step>& steps = plan.steps;
  const nft::Address cage_end = *nft::parse_address(kNestedCageAddress);

  // The ruleset carries the link's rules from the start (default-deny for
  // it too).
  nft::RulesetSpec& spec = the_step<step::InstallRuleset>(steps).spec;
  spec.nested_link = std::string(kNestedLink);
  spec.nested_address = cage_end;
  spec.nested_subnet = nft::Cidr{*nft::parse_address(kNestedSubnet), kNestedPrefix};

  // After the ruleset and before dnsguard, which must find the link's
  // address to listen on it: the link, then the policy copy, always written
  // (it names the link's address only if the link was made).
  if (const auto old_copy = find_step<step::WritePolicyCopy>(steps); old_copy != steps.end()) steps.erase(old_copy);
  copy.nested_listen = dnsguard::IpEndpoint{*dnsguard::parse_ip(kNestedCageAddress), copy.policy.listen.front().port};
  the_step<step::StartDnsguard>(steps).config = copy.destination;
  auto after_ruleset = std::next(find_step<step::InstallRuleset>(steps));
  after_ruleset = steps.insert(after_ruleset, step::CreateNestedLink{facts.ip_binary, std::string(kNestedLink),
                                                                     std::string(kNestedPeer),
                                                                     nft::Cidr{cage_end, kNestedPrefix}});
  steps.insert(std::next(after_ruleset), std::move(copy));

  // Last before the command: the firewall and dnsguard are up (the
  // sandbox's first packet meets both), and the agent's final gid is known
  // (it owns the socket's group). The command gets the engine's socket.
  steps.insert(find_step<step::RunCommand>(steps), engine_step(options, facts, agent));
  std::vector<std::string>& env = the_step<step::RunCommand>(steps).environment;
  std::erase_if(env, [](const std::string& e) { return e.rfind("DOCKER_HOST=", 0) == 0; });
  env.push_back("DOCKER_HOST=unix://" + (options.nested_socket_dir / "docker.sock").string());
}

}  // namespace cagent::cage
