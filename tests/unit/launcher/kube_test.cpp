// cagent kube: plan_kube() (Config + mount plan → manifest model) as
// tables, render_kube_yaml() against golden files. To regenerate the
// goldens after an intended change:
//   CAGENT_UPDATE_GOLDEN=1 build/bin/launcher_host_unit_tests -tc='*kube*golden*'
// and review the diff. The schema check of the same YAML is the unit test
// unit/launcher/kube_schema (tests/unit/launcher/kube_schema.sh).
#include <doctest/doctest.h>

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cstdlib>

#include "launcher/host/kube.hpp"
#include "launcher/host/paths.hpp"
#include "launcher/host/policy.hpp"

using namespace cagent::launcher::host;
namespace fs = std::filesystem;

namespace {

KubeInput base_input() {
  KubeInput in;
  in.config.domains = {"github.com", "*.githubusercontent.com"};
  in.config.dns_resolvers = {parse_resolver("10.96.0.10")};
  in.workspace = "/home/u/src/Proj_1";
  in.placeholder_dir = "/home/u/.cagent/sessions/0123456789ab";
  in.mounts.mounts = {
      {"/home/u/src/Proj_1", "/workspace", false},
      {"/home/u/.cagent/sessions/0123456789ab/empty-file", "/workspace/.env", true},
      {"/home/u/.cagent/sessions/0123456789ab/empty-dir", "/workspace/secrets", true},
      {"/home/u/src/Proj_1/.git", "/workspace/.git", true},
      {"/home/u/src/Proj_1/config", "/workspace/config", false},  // pinned
  };
  in.command = {"make", "test"};
  in.default_image = "cagent:latest";
  return in;
}

const KubeContainer& find(const std::vector<KubeContainer>& cs, const std::string& name) {
  const auto it = std::find_if(cs.begin(), cs.end(), [&](const KubeContainer& c) { return c.name == name; });
  REQUIRE(it != cs.end());
  return *it;
}

void check_golden(const std::string& name, const std::string& text) {
  const fs::path file = fs::path(LAUNCHER_GOLDEN_DIR) / (name + ".yaml");
  if (const char* update = std::getenv("CAGENT_UPDATE_GOLDEN"); update != nullptr && update[0] == '1') {
    write_file(file, text, 0644);
  }
  CAPTURE(name);
  CHECK(read_file(file) == text);
}

}  // namespace

TEST_CASE("kube: the guard alone holds NET_ADMIN, the agent is non-root with nothing") {
  const KubeManifest m = plan_kube(base_input());
  REQUIRE(m.init_containers.size() == 2);
  REQUIRE(m.containers.size() == 1);
  // Order is the contract: the ruleset before dnsguard, both before the agent.
  CHECK(m.init_containers[0].name == "guard");
  CHECK(m.init_containers[1].name == "dnsguard");
  const KubeContainer& guard = m.init_containers[0];
  CHECK(guard.security.add == std::vector<std::string>{"NET_ADMIN"});
  CHECK(guard.command == std::vector<std::string>{kKubeCageInit, "--mode", "guard", "--policy", "/etc/cagent/policy.toml"});
  CHECK_FALSE(guard.restart_policy.has_value());  // runs to its end; a failure stops the Pod

  const KubeContainer& agent = m.containers[0];
  CHECK(agent.name == "agent");
  CHECK(agent.security.run_as_non_root);
  CHECK(agent.security.run_as_user == std::optional<std::int64_t>(1000));
  CHECK(agent.security.run_as_group == std::optional<std::int64_t>(1000));
  CHECK(agent.security.add.empty());
  CHECK(agent.command == std::vector<std::string>{kKubeCageInit, "--mode", "agent", "--policy",
                                                  "/etc/cagent/policy.toml", "--", "make", "test"});
  CHECK_FALSE(agent.interactive);
  for (const auto* list : {&m.init_containers, &m.containers}) {
    for (const KubeContainer& c : *list) {
      CAPTURE(c.name);
      const bool net_admin = std::find(c.security.add.begin(), c.security.add.end(), "NET_ADMIN") != c.security.add.end();
      CHECK(net_admin == (c.name == "guard" || c.name == "dnsguard"));
      CHECK(c.command.front() == kKubeCageInit);  // absolute: runtimes need not search PATH
    }
  }
}

TEST_CASE("kube: dnsguard is a native sidecar, or beside the agent with --classic-sidecar") {
  const KubeManifest native = plan_kube(base_input());
  const KubeContainer& sidecar = find(native.init_containers, "dnsguard");
  CHECK(sidecar.restart_policy == std::optional<std::string>("Always"));
  REQUIRE_FALSE(sidecar.startup_probe.empty());
  CHECK(sidecar.startup_probe[2] == "probe");
  CHECK(sidecar.security.run_as_user == std::optional<std::int64_t>(0));

  KubeInput in = base_input();
  in.options.classic_sidecar = true;
  const KubeManifest classic = plan_kube(in);
  REQUIRE(classic.init_containers.size() == 1);
  CHECK(classic.init_containers[0].name == "guard");
  const KubeContainer& beside = find(classic.containers, "dnsguard");
  CHECK_FALSE(beside.restart_policy.has_value());
  CHECK(beside.startup_probe.empty());
  // Nothing orders the containers then: the agent waits for dnsguard itself.
  const KubeContainer& agent = find(classic.containers, "agent");
  const auto timeout = std::find(agent.command.begin(), agent.command.end(), "--ready-timeout");
  REQUIRE(timeout != agent.command.end());
  CHECK(timeout < std::find(agent.command.begin(), agent.command.end(), "--"));
}

TEST_CASE("kube: the mount plan becomes the claim, placeholders and read-only subPaths") {
  const KubeManifest m = plan_kube(base_input());
  const std::vector<KubeMount> expected = {
      {"policy", "/etc/cagent", "", true},
      {"workspace", "/workspace", "", false},
      {"policy", "/workspace/.env", "empty-file", true},
      {"empty", "/workspace/secrets", "", true},
      {"workspace", "/workspace/.git", ".git", true},
      {"workspace", "/workspace/config", "config", false},
  };
  CHECK(m.containers[0].mounts == expected);
  // The guard's containers see the policy only, never the workspace.
  for (const KubeContainer& c : m.init_containers) {
    CHECK(c.mounts == std::vector<KubeMount>{{"policy", "/etc/cagent", "", true}});
  }
  const std::vector<KubeVolume> volumes = {
      {KubeVolume::Kind::config_map, "policy", "cagent-proj-1-policy"},
      {KubeVolume::Kind::claim, "workspace", "cagent-workspace"},
      {KubeVolume::Kind::empty_dir, "empty", ""},
  };
  CHECK(m.volumes == volumes);
  CHECK(m.warnings.empty());
}

TEST_CASE("kube: what a Pod cannot express is a warning, never a silent change") {
  KubeInput in = base_input();
  in.mounts.mounts.push_back({"/etc/elsewhere", "/workspace/x", true});
  in.config.extra_args = {"-p", "8080:80"};
  in.config.inbound = {inbound_port("8080:80")};
  const KubeManifest m = plan_kube(in);
  REQUIRE(m.warnings.size() == 2);
  CHECK(m.warnings[0].find("extra_args") != std::string::npos);
  CHECK(m.warnings[1].find("/etc/elsewhere") != std::string::npos);
  // No published port, so no inbound rule: the policy is the one without them.
  KubeInput plain = base_input();
  CHECK(m.policy_toml == render_policy_toml(plain.config));
}

TEST_CASE("kube: the ConfigMap carries the Docker form's policy, byte for byte") {
  const KubeInput in = base_input();
  CHECK(plan_kube(in).policy_toml == render_policy_toml(in.config));
  const std::vector<YAML::Node> all = YAML::LoadAll(render_kube_yaml(plan_kube(in)));
  REQUIRE(all.size() == 2);
  CHECK(all[0]["kind"].as<std::string>() == "ConfigMap");
  CHECK(all[0]["data"]["policy.toml"].as<std::string>() == render_policy_toml(in.config));
  CHECK(all[0]["data"]["empty-file"].as<std::string>() == "");
  CHECK(all[1]["kind"].as<std::string>() == "Pod");
}

TEST_CASE("kube: no dns_resolvers is a usage error naming the key") {
  KubeInput in = base_input();
  in.config.dns_resolvers.clear();
  CHECK_THROWS_WITH_AS(plan_kube(in), doctest::Contains("dns_resolvers"), UsageError);
}

TEST_CASE("kube: no command is the login shell, attached (stdin + tty)") {
  KubeInput in = base_input();
  in.command.clear();
  const KubeManifest m = plan_kube(in);
  CHECK(m.containers[0].interactive);
  CHECK(std::find(m.containers[0].command.begin(), m.containers[0].command.end(), "--") == m.containers[0].command.end());
}

TEST_CASE("kube: names") {
  CHECK(kube_name("/home/u/src/Proj_1") == "cagent-proj-1");
  CHECK(kube_name("/x/--weird..name--") == "cagent-weird-name");
  CHECK(kube_name("/x/" + std::string(100, 'a')).size() == 52);
  CHECK(valid_kube_name("ci-checkout-42"));
  CHECK(valid_kube_name("a.b"));
  CHECK_FALSE(valid_kube_name("Upper"));
  CHECK_FALSE(valid_kube_name("-x"));
  CHECK_FALSE(valid_kube_name("x_y"));
  CHECK_FALSE(valid_kube_name(""));
}

TEST_CASE("kube: YAML golden: Pod with native sidecar") {
  check_golden("kube_pod", render_kube_yaml(plan_kube(base_input())));
}

TEST_CASE("kube: YAML golden: Job, classic sidecar, odd strings quoted") {
  KubeInput in = base_input();
  in.options.job = true;
  in.options.classic_sidecar = true;
  in.options.claim = "ci-checkout-42";
  in.options.image = "registry.example/cagent:1";
  // Words YAML would otherwise read as a bool, a number or null.
  in.command = {"sh", "-c", "echo 'yes: no' # x", "true", "1024", "null", ""};
  const std::string yaml = render_kube_yaml(plan_kube(in));
  check_golden("kube_job", yaml);
  const std::vector<YAML::Node> all = YAML::LoadAll(yaml);
  REQUIRE(all.size() == 2);
  const YAML::Node command = all[1]["spec"]["template"]["spec"]["containers"][1]["command"];
  REQUIRE(command.IsSequence());
  std::vector<std::string> tail;
  for (std::size_t i = command.size() - in.command.size(); i < command.size(); ++i) {
    // Each came back as a string scalar written in quotes where needed.
    tail.push_back(command[i].as<std::string>());
  }
  CHECK(tail == in.command);
}

TEST_CASE("kube: secrets stay on the host, the Pod's policy relays nothing") {
  KubeInput in = base_input();
  SecretSpec secret;
  secret.name = "gh";
  secret.env = "GH_TOKEN";
  secret.from_env = "GH_TOKEN";
  secret.hosts = {"github.com"};
  in.config.secrets = {secret};
  // The control: with the secret, the Docker form's policy relays its host.
  CHECK(render_policy_toml(in.config) != render_policy_toml(base_input().config));
  const KubeManifest m = plan_kube(in);
  REQUIRE(m.warnings.size() == 1);
  CHECK(m.warnings[0].find("secrets") != std::string::npos);
  CHECK(m.policy_toml == render_policy_toml(base_input().config));
}
