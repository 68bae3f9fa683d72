#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <linux/capability.h>

#include <algorithm>

#include "launcher/cage/plan.hpp"

using namespace cagent;
using namespace cagent::cage;

namespace {

dnsguard::IpEndpoint ep(const char* text) { return *dnsguard::parse_endpoint(text, 53); }
dnsguard::Cidr cidr(const char* text) { return *dnsguard::parse_cidr(text); }

Facts base_facts() {
  Facts facts;
  facts.policy.path = "/etc/cagent/policy.toml";
  facts.policy.listen = {ep("127.0.0.1:53"), ep("[::1]:53")};
  facts.policy.upstreams = {ep("192.0.2.53")};
  facts.policy.allow_cidrs = {cidr("203.0.113.0/24")};
  facts.agent = Account{"agent", 1000, 1000, "/home/agent", "/bin/bash"};
  facts.dnsguard = Account{"dnsguard", 101, 102, "/nonexistent", "/usr/sbin/nologin"};
  facts.workspace_owner = Owner{501, 20};
  facts.environment = {"PATH=/usr/bin:/bin", "HOME=/root", "TERM=xterm", "SSL_CERT_FILE=/evil.pem"};
  return facts;
}

std::vector<std::string> names(const Plan& plan) {
  std::vector<std::string> result;
  for (const auto& step : plan.steps) result.emplace_back(step_name(step));
  return result;
}

// By value: callers often pass a temporary Plan.
template <typename T>
T only(const Plan& plan) {
  const T* found = nullptr;
  for (const auto& step : plan.steps) {
    if (const auto* s = std::get_if<T>(&step)) {
      REQUIRE(found == nullptr);
      found = s;
    }
  }
  REQUIRE(found != nullptr);
  return found != nullptr ? *found : T{};
}

bool has_env(const std::vector<std::string>& env, const std::string& entry) {
  return std::find(env.begin(), env.end(), entry) != env.end();
}

}  // namespace

TEST_CASE("the full plan runs the steps in their order: firewall before dnsguard before the command") {
  const Plan plan = plan_cage_init(Options{}, base_facts());
  CHECK(names(plan) == std::vector<std::string>{"check-policy", "install-ruleset", "prepare-log-dir",
                                                "start-dnsguard", "wait-for-dnsguard", "write-resolv-conf",
                                                "remap-agent", "claim-home", "run-command"});
  CHECK(plan.warnings.empty());
}

TEST_CASE("with an owner socket, watching the owner comes first: a cage whose cagent is gone never starts") {
  Options options;
  options.owner_socket = "/etc/cagent/owner.sock";
  const Plan plan = plan_cage_init(options, base_facts());
  REQUIRE_FALSE(plan.steps.empty());
  CHECK(names(plan).front() == "watch-owner");
  CHECK(only<step::WatchOwner>(plan).socket == "/etc/cagent/owner.sock");
  // The control: without one (tests, other launchers) the plan is the one above.
  CHECK(names(plan_cage_init(Options{}, base_facts())).front() == "check-policy");
}

TEST_CASE("the ruleset carries dnsguard's uid, the upstreams, the listen port and the static CIDRs") {
  Facts facts = base_facts();
  facts.policy.listen = {ep("127.0.0.1:5353")};
  facts.policy.nft_table = "t";
  facts.policy.nft_set4 = "s4";
  facts.policy.nft_set6 = "s6";
  const auto spec = only<step::InstallRuleset>(plan_cage_init(Options{}, facts)).spec;
  CHECK(spec.dnsguard_uid == 101);
  REQUIRE(spec.upstreams.size() == 1);
  CHECK(format_endpoint(spec.upstreams[0]) == "192.0.2.53:53");
  CHECK(spec.listen_port == 5353);
  REQUIRE(spec.static_cidrs.size() == 1);
  CHECK(spec.static_cidrs[0].prefix_len == 24);
  CHECK(spec.table == "t");
  CHECK(spec.set4 == "s4");
  CHECK(spec.set6 == "s6");
}

TEST_CASE("with the gate on, its ports are redirected to gate.port: off, nothing is") {
  Facts facts = base_facts();
  CHECK(only<step::InstallRuleset>(plan_cage_init(Options{}, facts)).spec.gated_ports.empty());
  CHECK(only<step::StartDnsguard>(plan_cage_init(Options{}, facts)).gate_port == 0);
  facts.policy.gate_enabled = true;
  facts.policy.gate_port = 444;
  facts.policy.gate_tls_ports = {443, 8443};
  facts.policy.gate_http_ports = {80};
  const auto spec = only<step::InstallRuleset>(plan_cage_init(Options{}, facts)).spec;
  CHECK(spec.gate_port == 444);
  CHECK(spec.gated_ports == std::vector<std::uint16_t>{443, 8443, 80});
  // …and cage-init waits for that port's connections at the session's end.
  CHECK(only<step::StartDnsguard>(plan_cage_init(Options{}, facts)).gate_port == 444);
}

TEST_CASE("without upstreams in the policy, dnsguard gets a copy naming resolv.conf's resolvers") {
  Facts facts = base_facts();
  facts.policy.upstreams.clear();
  facts.resolv_conf_upstreams = {ep("198.51.100.53"), ep("2001:db8::53")};
  Options options;
  options.runtime_dir = "/run/x";
  const Plan plan = plan_cage_init(options, facts);
  const auto& copy = only<step::WritePolicyCopy>(plan);
  CHECK(copy.source == "/etc/cagent/policy.toml");
  CHECK(copy.destination == "/run/x/policy.toml");
  CHECK(copy.policy.upstreams == facts.resolv_conf_upstreams);
  CHECK(only<step::StartDnsguard>(plan).config == "/run/x/policy.toml");
  CHECK(only<step::InstallRuleset>(plan).spec.upstreams.size() == 2);
  // The copy is written before anything that uses it.
  const auto order = names(plan);
  CHECK(std::find(order.begin(), order.end(), "write-policy-copy") <
        std::find(order.begin(), order.end(), "start-dnsguard"));
}

TEST_CASE("no upstream anywhere, or dnsguard as its own upstream, is a plan error") {
  Facts facts = base_facts();
  facts.policy.upstreams.clear();
  CHECK_THROWS_AS(plan_cage_init(Options{}, facts), PlanError);
  facts.resolv_conf_upstreams = {ep("127.0.0.1")};
  CHECK_THROWS_AS(plan_cage_init(Options{}, facts), PlanError);
  facts = base_facts();
  facts.policy.listen = {ep("0.0.0.0:53")};
  facts.policy.upstreams = {ep("127.0.0.2:53")};
  CHECK_THROWS_AS(plan_cage_init(Options{}, facts), PlanError);
  facts.policy.upstreams = {ep("192.0.2.53:53")};
  CHECK_NOTHROW(plan_cage_init(Options{}, facts));
  facts.policy.upstreams = {ep("127.0.0.11:53")};   // Docker's embedded DNS, another port-53 host
  facts.policy.listen = {ep("127.0.0.1:53")};
  CHECK_NOTHROW(plan_cage_init(Options{}, facts));
}

TEST_CASE("agent and dnsguard must be distinct, unprivileged users") {
  Facts facts = base_facts();
  facts.agent.uid = 101;
  CHECK_THROWS_AS(plan_cage_init(Options{}, facts), PlanError);
  facts = base_facts();
  facts.agent.uid = 0;
  CHECK_THROWS_AS(plan_cage_init(Options{}, facts), PlanError);
  facts = base_facts();
  facts.dnsguard.uid = 0;
  CHECK_THROWS_AS(plan_cage_init(Options{}, facts), PlanError);
  facts = base_facts();
  facts.agent.gid = 0;  // the root group is as good as root for group-writable files
  CHECK_THROWS_AS(plan_cage_init(Options{}, facts), PlanError);
}

TEST_CASE("dnsguard starts as its own user with exactly NET_ADMIN and NET_BIND_SERVICE") {
  const auto start = only<step::StartDnsguard>(plan_cage_init(Options{}, base_facts()));
  CHECK(start.user.uid == 101);
  CHECK(start.user.gid == 102);
  CHECK(start.ambient_capabilities == std::vector<int>{CAP_NET_ADMIN, CAP_NET_BIND_SERVICE});
  CHECK(start.config == "/etc/cagent/policy.toml");
}

TEST_CASE("the readiness probe goes to a concrete listen address") {
  Facts facts = base_facts();
  CHECK(format_endpoint(only<step::WaitForDnsguard>(plan_cage_init(Options{}, facts)).probe) == "127.0.0.1:53");
  facts.policy.listen = {ep("[::1]:53"), ep("0.0.0.0:5353")};
  CHECK(format_endpoint(only<step::WaitForDnsguard>(plan_cage_init(Options{}, facts)).probe) == "127.0.0.1:5353");
  facts.policy.listen = {ep("[::]:53")};
  CHECK(format_endpoint(only<step::WaitForDnsguard>(plan_cage_init(Options{}, facts)).probe) == "[::1]:53");
}

TEST_CASE("resolv.conf points at the stub only") {
  const auto resolv = only<step::WriteResolvConf>(plan_cage_init(Options{}, base_facts()));
  CHECK(resolv.path == "/etc/resolv.conf");
  CHECK(resolv.content == "nameserver 127.0.0.1\n");
}

TEST_CASE("the agent takes the workspace owner's uid/gid") {
  const Plan plan = plan_cage_init(Options{}, base_facts());
  const auto& remap = only<step::RemapAgent>(plan);
  CHECK(remap.from.uid == 1000);
  CHECK(remap.to.uid == 501);
  CHECK(remap.to.gid == 20);
  const auto& home = only<step::ClaimHome>(plan);
  CHECK(home.home == "/home/agent");
  CHECK(home.owner.uid == 501);
  CHECK(home.owner.gid == 20);
  CHECK(home.keep_uids == std::vector<uid_t>{0, 101});
  const auto& run = only<step::RunCommand>(plan);
  CHECK(run.user.uid == 501);
  CHECK(run.user.gid == 20);
  const auto& log = only<step::PrepareLogDir>(plan);
  CHECK(log.dir == "/var/log/cagent");
  CHECK(log.during.uid == 101);
  CHECK(log.after.uid == 501);
}

TEST_CASE("a root-owned, missing or dnsguard-owned workspace keeps the agent's uid, with a warning") {
  // {0, 0} root; {501, 0} a user's file in group root: taking gid 0 would
  // put the agent in the root group, so it is treated like root's.
  for (const std::optional<Owner>& owner :
       {std::optional<Owner>{Owner{0, 0}}, std::optional<Owner>{Owner{501, 0}}, std::optional<Owner>{Owner{0, 20}},
        std::optional<Owner>{}, std::optional<Owner>{Owner{101, 5}}, std::optional<Owner>{Owner{7, 102}}}) {
    CAPTURE(owner ? owner->uid : 99999);
    CAPTURE(owner ? owner->gid : 99999);
    Facts facts = base_facts();
    facts.workspace_owner = owner;
    const Plan plan = plan_cage_init(Options{}, facts);
    const auto order = names(plan);
    CHECK(std::find(order.begin(), order.end(), "remap-agent") == order.end());
    CHECK(only<step::RunCommand>(plan).user.uid == 1000);
    CHECK(only<step::RunCommand>(plan).user.gid == 1000);
    CHECK(only<step::PrepareLogDir>(plan).after.gid == 1000);
    CHECK(plan.warnings.size() == 1);
  }
  Facts facts = base_facts();
  facts.workspace_owner = Owner{501, 0};
  const Plan plan = plan_cage_init(Options{}, facts);
  REQUIRE(plan.warnings.size() == 1);
  CHECK(plan.warnings[0] == "/workspace is owned by root (group 0); the agent keeps uid 1000 and may not be able to write it");
}

TEST_CASE("the home is claimed for the agent's identity even when no remap is needed") {
  // The previous session (another workspace owner) may have left the home
  // to its uid; a session as the image's own uid must take it back.
  Facts facts = base_facts();
  facts.workspace_owner = Owner{1000, 1000};
  const Plan plan = plan_cage_init(Options{}, facts);
  const auto order = names(plan);
  CHECK(std::find(order.begin(), order.end(), "remap-agent") == order.end());
  const auto home = only<step::ClaimHome>(plan);
  CHECK(home.owner.uid == 1000);
  CHECK(home.owner.gid == 1000);
  CHECK(order[order.size() - 2] == "claim-home");
}

TEST_CASE("the default command is the agent's login shell") {
  const auto run = only<step::RunCommand>(plan_cage_init(Options{}, base_facts()));
  CHECK(run.file == "/bin/bash");
  CHECK(run.argv == std::vector<std::string>{"-bash"});
}

TEST_CASE("an explicit command runs as given, with the agent's environment") {
  Options options;
  options.command = {"claude", "-p", "fix the tests"};
  const auto run = only<step::RunCommand>(plan_cage_init(options, base_facts()));
  CHECK(run.file == "claude");
  CHECK(run.argv == options.command);
  CHECK(has_env(run.environment, "HOME=/home/agent"));
  CHECK(has_env(run.environment, "USER=agent"));
  CHECK(has_env(run.environment, "PATH=/usr/bin:/bin"));
  CHECK(has_env(run.environment, "TERM=xterm"));
  CHECK_FALSE(has_env(run.environment, "HOME=/root"));
  // Without --ca-bundle no CA variable is set, not even one inherited.
  CHECK(std::none_of(run.environment.begin(), run.environment.end(),
                     [](const std::string& e) { return e.starts_with("SSL_CERT_FILE="); }));
}

TEST_CASE("--ca-bundle merges into the system bundle and points every runtime at it") {
  Options options;
  options.ca_bundle = "/etc/cagent/extra-ca.pem";
  const Plan plan = plan_cage_init(options, base_facts());
  const auto& ca = only<step::InstallCaBundle>(plan);
  CHECK(ca.source == "/etc/cagent/extra-ca.pem");
  CHECK(ca.system_bundle == "/etc/ssl/certs/ca-certificates.crt");
  const auto& env = only<step::RunCommand>(plan).environment;
  for (std::string_view key : kCaVariables) {
    CAPTURE(key);
    CHECK(has_env(env, std::string(key) + "=/etc/ssl/certs/ca-certificates.crt"));
  }
  CHECK_FALSE(has_env(env, "SSL_CERT_FILE=/evil.pem"));
  // Installed before privileges are dropped.
  const auto order = names(plan);
  CHECK(std::find(order.begin(), order.end(), "install-ca-bundle") <
        std::find(order.begin(), order.end(), "run-command"));
}

TEST_CASE("whatever the options, the command is last and comes after firewall, stub and resolv.conf") {
  for (bool with_ca : {false, true}) {
    for (bool with_upstreams : {false, true}) {
      Options options;
      if (with_ca) options.ca_bundle = "/x.pem";
      Facts facts = base_facts();
      if (!with_upstreams) {
        facts.policy.upstreams.clear();
        facts.resolv_conf_upstreams = {ep("192.0.2.1")};
      }
      const auto order = names(plan_cage_init(options, facts));
      REQUIRE(!order.empty());
      CHECK(order.back() == "run-command");
      CHECK(order.front() == "check-policy");
      const auto index = [&](const char* name) {
        return std::find(order.begin(), order.end(), name) - order.begin();
      };
      CHECK(index("install-ruleset") < index("start-dnsguard"));
      CHECK(index("start-dnsguard") < index("wait-for-dnsguard"));
      CHECK(index("wait-for-dnsguard") < index("write-resolv-conf"));
      CHECK(std::count(order.begin(), order.end(), "run-command") == 1);
    }
  }
}

TEST_CASE("without IPv6 in the namespace, dnsguard gets a copy listening on IPv4 only") {
  Facts facts = base_facts();
  facts.ipv6_loopback = false;
  const Plan plan = plan_cage_init(Options{}, facts);
  const auto copy = only<step::WritePolicyCopy>(plan);
  REQUIRE(copy.policy.listen.size() == 1);
  CHECK(dnsguard::to_string(copy.policy.listen[0]) == "127.0.0.1:53");
  CHECK(copy.policy.upstreams == facts.policy.upstreams);   // the policy's own upstreams stay
  CHECK(only<step::StartDnsguard>(plan).config == copy.destination);
  CHECK(plan.warnings.size() == 1);
  facts.policy.listen = {ep("[::1]:53")};
  CHECK_THROWS_AS(plan_cage_init(Options{}, facts), PlanError);
}

TEST_CASE("with IPv6 and upstreams in the policy, dnsguard reads the policy itself") {
  const auto order = names(plan_cage_init(Options{}, base_facts()));
  CHECK(std::find(order.begin(), order.end(), "write-policy-copy") == order.end());
}

namespace {

Options nested_options() {
  Options options;
  options.nested_dockerd = "/usr/bin/dockerd";
  return options;
}

Facts nested_facts() {
  Facts facts = base_facts();
  facts.ip_binary = "/usr/sbin/ip";
  return facts;
}

}  // namespace

TEST_CASE("nested Docker: link after the ruleset and before dnsguard, the engine last before the command") {
  const Plan plan = plan_cage_init(nested_options(), nested_facts());
  CHECK(names(plan) == std::vector<std::string>{"check-policy", "install-ruleset", "create-nested-link",
                                                "write-policy-copy", "prepare-log-dir", "start-dnsguard",
                                                "wait-for-dnsguard", "write-resolv-conf", "remap-agent",
                                                "claim-home", "start-nested-docker", "run-command"});
  CHECK(plan.warnings.empty());
  const auto link = only<step::CreateNestedLink>(plan);
  CHECK(link.ip == "/usr/sbin/ip");
  CHECK(link.link == "cagent-nd0");
  CHECK(link.peer == "cagent-nd1");
  CHECK(nft::to_string(link.cage_address.base) == "100.127.255.253");
  CHECK(link.cage_address.prefix_len == 30);
}

TEST_CASE("nested Docker: the ruleset knows the link, dnsguard may listen on it, the agent gets DOCKER_HOST") {
  Facts facts = nested_facts();
  facts.environment.push_back("DOCKER_HOST=tcp://evil.example:2375");
  const Plan plan = plan_cage_init(nested_options(), facts);
  const auto spec = only<step::InstallRuleset>(plan).spec;
  CHECK(spec.nested_link == "cagent-nd0");
  CHECK(nft::to_string(spec.nested_address) == "100.127.255.253");
  CHECK(nft::to_string(spec.nested_subnet.base) == "100.127.255.252");
  CHECK(spec.nested_subnet.prefix_len == 30);
  // The copy is written even though nothing else differs: it may gain the
  // link's address (only when the link was made; the executor decides).
  const auto copy = only<step::WritePolicyCopy>(plan);
  REQUIRE(copy.nested_listen);
  CHECK(dnsguard::to_string(*copy.nested_listen) == "100.127.255.253:53");
  CHECK(copy.policy.listen.size() == 2);  // not in the policy itself
  CHECK(only<step::StartDnsguard>(plan).config == "/run/cagent/policy.toml");
  const auto run = only<step::RunCommand>(plan);
  CHECK(has_env(run.environment, "DOCKER_HOST=unix:///run/cagent-docker/docker.sock"));
  CHECK(std::count_if(run.environment.begin(), run.environment.end(),
                      [](const std::string& e) { return e.rfind("DOCKER_HOST=", 0) == 0; }) == 1);
}

TEST_CASE("nested Docker: the engine's sandbox hides the log and runtime dirs, keeps the workspace writable") {
  Options options = nested_options();
  options.nested_socket_dir = "/s";
  options.nested_data_root = "/d";
  const auto engine = only<step::StartNestedDocker>(plan_cage_init(options, nested_facts()));
  CHECK(engine.dockerd == "/usr/bin/dockerd");
  CHECK(engine.ip == "/usr/sbin/ip");
  CHECK(engine.socket_dir == "/s");
  CHECK(engine.data_root == "/d");
  CHECK(engine.agent.uid == 501);  // the agent's ids after the remap: the sandbox's root outside
  CHECK(engine.agent.gid == 20);
  CHECK(engine.peer == "cagent-nd1");
  CHECK(nft::to_string(engine.sandbox_address.base) == "100.127.255.254");
  CHECK(nft::to_string(engine.gateway) == "100.127.255.253");
  CHECK(engine.hidden == std::vector<std::filesystem::path>{"/var/log/cagent", "/run/cagent"});
  CHECK(engine.writable == std::vector<std::filesystem::path>{"/workspace", "/home/agent", "/s", "/d"});
  CHECK(engine.dockerd_args == std::vector<std::string>{"--host", "unix:///s/docker.sock", "--group", "0", "--dns",
                                                        "100.127.255.253", "--data-root", "/d",
                                                        "--ip6tables=false"});
}

TEST_CASE("nested Docker: without an engine option, or without `ip`, the plan is the one without it") {
  const Plan plain = plan_cage_init(Options{}, nested_facts());
  Facts no_ip = nested_facts();
  no_ip.ip_binary.clear();
  const Plan without_ip = plan_cage_init(nested_options(), no_ip);
  for (const Plan* plan : {&plain, &without_ip}) {
    CHECK(names(*plan) == std::vector<std::string>{"check-policy", "install-ruleset", "prepare-log-dir",
                                                   "start-dnsguard", "wait-for-dnsguard", "write-resolv-conf",
                                                   "remap-agent", "claim-home", "run-command"});
    CHECK(only<step::InstallRuleset>(*plan).spec.nested_link.empty());
    for (const auto& e : only<step::RunCommand>(*plan).environment) CHECK(e.rfind("DOCKER_HOST=", 0) != 0);
  }
  CHECK(plain.warnings.empty());
  CHECK(without_ip.warnings == std::vector<std::string>{"no ip binary in the image; nested Docker is off"});
}

TEST_CASE("a local upstream (Docker's embedded resolver) is served by the uid that owns its sockets") {
  Facts facts = base_facts();
  facts.policy.upstreams = {};
  facts.resolv_conf_upstreams = {ep("127.0.0.11")};
  const nft::Address embedded = *nft::parse_address("127.0.0.11");
  facts.local_sockets = {LocalSocket{embedded, 47572, 0}, LocalSocket{embedded, 39291, 0},
                         LocalSocket{*nft::parse_address("127.0.0.1"), 5000, 1000}};
  const Plan plan = plan_cage_init(Options{}, facts);
  const auto spec = only<step::InstallRuleset>(plan).spec;
  REQUIRE(spec.local_resolvers.size() == 1);
  CHECK(spec.local_resolvers[0] == nft::LocalResolver{embedded, 0});
  CHECK(plan.warnings.empty());

  SUBCASE("an upstream that is not local has no local resolver") {
    facts.resolv_conf_upstreams = {ep("192.0.2.53")};
    CHECK(only<step::InstallRuleset>(plan_cage_init(Options{}, facts)).spec.local_resolvers.empty());
  }
  SUBCASE("nobody serves it: a warning, and nobody may pose as it") {
    facts.local_sockets.clear();
    const Plan p = plan_cage_init(Options{}, facts);
    CHECK(only<step::InstallRuleset>(p).spec.local_resolvers.empty());
    REQUIRE(p.warnings.size() == 1);
    CHECK(p.warnings[0].find("upstream 127.0.0.11:53 is local, but no socket") == 0);
  }
  SUBCASE("several owners: refused, the resolver cannot be told apart") {
    facts.local_sockets.push_back(LocalSocket{embedded, 40000, 4000});
    CHECK_THROWS_WITH_AS(plan_cage_init(Options{}, facts),
                         "upstream 127.0.0.11:53: sockets of several uids are bound to its address; cannot tell "
                         "which is the resolver",
                         PlanError);
  }
  SUBCASE("owned by dnsguard, or by the agent's final uid: refused") {
    facts.local_sockets = {LocalSocket{embedded, 40000, 101}};
    CHECK_THROWS_AS(plan_cage_init(Options{}, facts), PlanError);
    facts.local_sockets = {LocalSocket{embedded, 40000, 501}};  // the workspace owner the agent becomes
    CHECK_THROWS_AS(plan_cage_init(Options{}, facts), PlanError);
  }
}

TEST_CASE("a local upstream on 127.0.0.1 is matched by its port: nobody serving it is only a warning") {
  Facts facts = base_facts();
  facts.policy.upstreams = {ep("127.0.0.1:5353")};
  const nft::Address lo = *nft::parse_address("127.0.0.1");
  // Others use 127.0.0.1 too (dnsguard will, the agent may): only the port tells.
  facts.local_sockets = {LocalSocket{lo, 5353, 7}, LocalSocket{lo, 8080, 4000}};
  const auto spec = only<step::InstallRuleset>(plan_cage_init(Options{}, facts)).spec;
  REQUIRE(spec.local_resolvers.size() == 1);
  CHECK(spec.local_resolvers[0] == nft::LocalResolver{lo, 7});

  SUBCASE("nothing on its port: not the owner of some other port on the shared address") {
    facts.local_sockets = {LocalSocket{lo, 8080, 4000}};
    const Plan p = plan_cage_init(Options{}, facts);
    CHECK(only<step::InstallRuleset>(p).spec.local_resolvers.empty());
    REQUIRE(p.warnings.size() == 1);
    CHECK(p.warnings[0].find("upstream 127.0.0.1:5353 is local, but no socket") == 0);
  }
}

// ---- the Pod form (cagent kube): one role per container -------------------

namespace {
Plan plan_for(Mode mode, Facts facts = base_facts()) {
  Options options;
  options.mode = mode;
  return plan_cage_init(options, facts);
}
}  // namespace

TEST_CASE("pod roles: the guard installs the ruleset and exits, nothing else") {
  const Plan plan = plan_for(Mode::guard);
  CHECK(names(plan) == std::vector<std::string>{"check-policy", "install-ruleset"});
  CHECK(plan.ending == Plan::Ending::exit);
  // The same ruleset as the whole cage's (same dnsguard uid, same upstreams).
  const Plan whole = plan_cage_init(Options{}, base_facts());
  CHECK(only<step::InstallRuleset>(plan).spec.dnsguard_uid == only<step::InstallRuleset>(whole).spec.dnsguard_uid);
  CHECK(only<step::InstallRuleset>(plan).spec.upstreams.size() == only<step::InstallRuleset>(whole).spec.upstreams.size());
  CHECK(only<step::InstallRuleset>(plan).spec.listen_port == only<step::InstallRuleset>(whole).spec.listen_port);
  CHECK(plan_cage_init(Options{}, base_facts()).ending == Plan::Ending::command);  // the control
}

TEST_CASE("pod roles: the dnsguard sidecar starts dnsguard with its two capabilities and serves") {
  const Plan plan = plan_for(Mode::dnsguard);
  CHECK(names(plan) == std::vector<std::string>{"check-policy", "prepare-log-dir", "start-dnsguard",
                                                "wait-for-dnsguard"});
  CHECK(plan.ending == Plan::Ending::serve_dnsguard);
  const auto start = only<step::StartDnsguard>(plan);
  CHECK(start.user.uid == 101);
  CHECK(start.ambient_capabilities == std::vector<int>{CAP_NET_ADMIN, CAP_NET_BIND_SERVICE});
}

TEST_CASE("pod roles: without IPv6 the sidecar's dnsguard gets the adapted policy copy") {
  Facts facts = base_facts();
  facts.ipv6_loopback = false;
  const Plan plan = plan_for(Mode::dnsguard, facts);
  CHECK(names(plan) == std::vector<std::string>{"check-policy", "write-policy-copy", "prepare-log-dir",
                                                "start-dnsguard", "wait-for-dnsguard"});
  CHECK(only<step::StartDnsguard>(plan).config == only<step::WritePolicyCopy>(plan).destination);
  // The guard's ruleset is made from the same adapted policy, though it writes no copy.
  CHECK(names(plan_for(Mode::guard, facts)) == std::vector<std::string>{"check-policy", "install-ruleset"});
}

TEST_CASE("pod roles: the agent waits for dnsguard, then runs the command without switching anything") {
  Options options;
  options.mode = Mode::agent;
  options.command = {"make", "test"};
  const Plan plan = plan_cage_init(options, base_facts());
  CHECK(names(plan) == std::vector<std::string>{"wait-for-dnsguard", "run-command"});
  CHECK(plan.ending == Plan::Ending::command);
  const auto run = only<step::RunCommand>(plan);
  CHECK_FALSE(run.switch_user);
  // The account's own ids: in a Pod the workspace owner (501:20 here) does not decide them.
  CHECK(run.user.uid == 1000);
  CHECK(run.user.gid == 1000);
  CHECK(run.argv == std::vector<std::string>{"make", "test"});
  CHECK(has_env(run.environment, "HOME=/home/agent"));
  CHECK(plan.warnings.empty());
  // The control: the whole cage switches (and remaps to the owner).
  CHECK(only<step::RunCommand>(plan_cage_init(Options{}, base_facts())).switch_user);
}

TEST_CASE("pod roles: the probe only waits, the accounts are checked in every role") {
  CHECK(names(plan_for(Mode::probe)) == std::vector<std::string>{"wait-for-dnsguard"});
  CHECK(plan_for(Mode::probe).ending == Plan::Ending::exit);
  Facts shared = base_facts();
  shared.dnsguard.uid = shared.agent.uid;
  for (const Mode mode : {Mode::guard, Mode::dnsguard, Mode::probe, Mode::agent}) {
    CHECK_THROWS_AS(plan_for(mode, shared), PlanError);
  }
}

TEST_CASE("pod roles: no role runs dnsguard as its own upstream (a Pod whose policy names none)") {
  Facts facts = base_facts();
  facts.policy.upstreams.clear();
  facts.resolv_conf_upstreams = {ep("127.0.0.1:53")};  // dnsPolicy None: resolv.conf names dnsguard
  CHECK_THROWS_WITH_AS(plan_for(Mode::guard, facts), doctest::Contains("dnsguard's own listen address"), PlanError);
}

TEST_CASE("with secret hosts, the relay starts after the CA bundle, before the agent, as its own uid") {
  Facts facts = base_facts();
  facts.policy.gate_enabled = true;
  facts.policy.relay_hosts = {"api.github.com"};
  facts.policy.relay_port = 998;
  facts.policy.relay_uid = 65533;
  facts.policy.log_file = "/var/log/cagent/dnsguard.log";
  Options options;
  options.ca_bundle = "/etc/cagent/extra-ca.pem";
  options.secrets_socket = "/etc/cagent/secrets.sock";
  const Plan plan = plan_cage_init(options, facts);
  const auto order = names(plan);
  const auto at = [&](const char* name) { return std::find(order.begin(), order.end(), name) - order.begin(); };
  CHECK(at("install-ca-bundle") < at("start-relay"));  // the relay trusts what the cage trusts…
  CHECK(at("start-relay") < at("run-command"));        // …and is up before the agent exists
  const auto relay = only<step::StartRelay>(plan);
  CHECK(relay.user.uid == 65533u);
  CHECK(relay.user.gid == 65533u);
  CHECK(relay.port == 998);
  CHECK(relay.secrets_socket == "/etc/cagent/secrets.sock");
  CHECK(relay.record == "/var/log/cagent/relay.jsonl");
  CHECK(relay.trust == "/etc/ssl/certs/ca-certificates.crt");
  const auto spec = only<step::InstallRuleset>(plan).spec;
  CHECK(spec.relay_port == 998);
  CHECK(spec.relay_uid == 65533u);
  // Every runtime reads the bundle the session CA joins, with no --ca-bundle too.
  options.ca_bundle.reset();
  const auto env = only<step::RunCommand>(plan_cage_init(options, facts)).environment;
  CHECK(has_env(env, "NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt"));
  // The control: without secret hosts (and so without --secrets), no relay
  // and no relay rules.
  Facts plain = base_facts();
  plain.policy.gate_enabled = true;
  options.secrets_socket.reset();
  const Plan without = plan_cage_init(options, plain);
  const auto plain_order = names(without);
  CHECK(std::find(plain_order.begin(), plain_order.end(), "start-relay") == plain_order.end());
  CHECK(only<step::InstallRuleset>(without).spec.relay_port == 0);
}

TEST_CASE("the relay refuses to start without cagent's socket, or on a uid it would share") {
  Facts facts = base_facts();
  facts.policy.gate_enabled = true;
  facts.policy.relay_hosts = {"api.github.com"};
  CHECK_THROWS_WITH_AS(plan_cage_init(Options{}, facts),
                       "the policy names secret hosts (relay.hosts) but no --secrets socket was given", PlanError);
  Options options;
  options.secrets_socket = "/etc/cagent/secrets.sock";
  for (std::uint32_t uid : {501u, 101u}) {  // the agent's (the workspace owner's), dnsguard's
    CAPTURE(uid);
    facts.policy.relay_uid = uid;
    CHECK_THROWS_AS(plan_cage_init(options, facts), PlanError);
  }
  facts.policy.relay_uid = 65533;
  CHECK_NOTHROW(plan_cage_init(options, facts));
  // The secrets socket without the step that takes its one connection: no
  // start (the agent must never be the first to connect).
  facts.policy.relay_hosts.clear();
  CHECK_THROWS_WITH_AS(plan_cage_init(options, facts),
                       "--secrets was given but the policy names no secret hosts (relay.hosts)", PlanError);
}
