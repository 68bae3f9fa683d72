#include <doctest/doctest.h>

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <map>

#include "dnsguard/contracts.hpp"
#include "launcher/host/config.hpp"
#include "launcher/host/policy.hpp"
#include "launcher/host/secrets.hpp"
#include "test_util.hpp"

using namespace cagent::launcher::host;
using cagent::launcher::host::test::TempDir;

namespace {

Config config_of(const std::string& yaml, const std::string& workspace_yaml = {}, bool trusted = false) {
  std::vector<ConfigLayer> layers{load_config(yaml, "/g/config.yaml", LayerKind::base)};
  if (!workspace_yaml.empty()) layers.push_back(load_config(workspace_yaml, "/w/.cagent.yaml", LayerKind::workspace));
  MergeOptions options;
  options.workspace_trusted = trusted;
  options.trust_hint = "trust it";
  return validate(merge_layers(layers, options), "/home/u");
}

std::string error_of(const std::string& yaml) {
  try {
    config_of(yaml);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "no error";
}

const auto no_command = [](const std::vector<std::string>&, std::string& error) -> std::optional<std::string> {
  error = "not run in this test";
  return std::nullopt;
};

}  // namespace

TEST_CASE("secrets: presets are one word, a mapping names its own") {
  const Config c = config_of(
      "domains: [api.anthropic.com, '*.github.com', github.com, api.example.test]\n"
      "secrets:\n"
      "  - anthropic\n"
      "  - github\n"
      "  - name: custom\n"
      "    env: MY_TOKEN\n"
      "    from_file: /run/token\n"
      "    hosts: [API.example.test]\n");
  REQUIRE(c.secrets.size() == 3);
  CHECK(c.secrets[0].name == "anthropic");
  CHECK(c.secrets[0].env == "ANTHROPIC_API_KEY");
  CHECK(c.secrets[0].from_env == "ANTHROPIC_API_KEY");
  CHECK(c.secrets[0].hosts == std::vector<std::string>{"api.anthropic.com"});
  CHECK(c.secrets[1].hosts == std::vector<std::string>{"api.github.com", "github.com"});
  CHECK(c.secrets[1].git);
  CHECK(c.secrets[2].from_file == "/run/token");
  CHECK(c.secrets[2].hosts == std::vector<std::string>{"api.example.test"});
  // The policy carries the hosts, never anything else of a secret.
  const auto policy = session_policy(c);
  CHECK(policy.relay_hosts ==
        std::vector<std::string>{"api.anthropic.com", "api.example.test", "api.github.com", "github.com"});
}

TEST_CASE("secrets: a preset's mapping may change its source and hosts") {
  const Config c = config_of(
      "domains: [github.test, api.github.test]\n"
      "secrets:\n"
      "  - name: github\n"
      "    from_command: [gh, auth, token]\n"
      "    hosts: [github.test, api.github.test]\n");
  REQUIRE(c.secrets.size() == 1);
  CHECK(c.secrets[0].env == "GH_TOKEN");
  CHECK(c.secrets[0].from_env.empty());
  CHECK(c.secrets[0].from_command == std::vector<std::string>{"gh", "auth", "token"});
  CHECK(c.secrets[0].git);
}

TEST_CASE("secrets: what a secret may not be, each with its position") {
  const std::map<std::string, std::string> cases = {
      {"domains: [a.test]\nsecrets: [nope]\n", "/g/config.yaml:2:11: secrets: unknown preset 'nope'"},
      {"domains: [a.test]\nsecrets: [anthropic]\n",
       "/g/config.yaml:2:11: secret 'anthropic': host api.anthropic.com is not in domains"},
      {"domains: [a.test]\nsecrets:\n  - name: x\n    env: X\n    hosts: [a.test]\n",
       "/g/config.yaml:3:5: secret 'x' needs exactly one of from_env, from_file, from_command"},
      {"domains: [a.test]\nsecrets:\n  - name: x\n    env: X\n    from_env: A\n    from_file: /f\n    hosts: [a.test]\n",
       "/g/config.yaml:6:5: secrets: x: only one of from_env, from_file, from_command"},
      {"domains: ['*.a.test']\nsecrets:\n  - name: x\n    env: X\n    from_env: A\n    hosts: ['*.a.test']\n",
       "/g/config.yaml:3:5: secret 'x': host '*.a.test' is a pattern; name hosts exactly"},
      {"domains: [a.test]\nsecrets:\n  - name: x\n    env: 'X Y'\n    from_env: A\n    hosts: [a.test]\n",
       "/g/config.yaml:3:5: secret 'x': 'env' must be a variable name"},
      {"domains: [a.test]\nsecrets:\n  - name: x\n    env: X\n    from_env: A\n    hosts: [a.test]\n    colour: red\n",
       "/g/config.yaml:7:5: secrets: unknown key 'colour'"},
      {"domains: [a.test]\nsecrets:\n  - name: x\n    env: X\n    from_env: A\n    hosts: [a.test]\n"
       "  - name: x\n    env: Y\n    from_env: B\n    hosts: [a.test]\n",
       "/g/config.yaml:7:5: secret 'x' is named twice"},
      {"domains: [api.openai.com]\nconnection_gate: false\nsecrets: [openai]\n",
       "/g/config.yaml:3:11: secrets need the connection gate"},
  };
  for (const auto& [yaml, want] : cases) {
    CAPTURE(yaml);
    const std::string got = error_of(yaml);
    CHECK_MESSAGE(got.rfind(want, 0) == 0, got);
  }
  // The control: a well-formed one passes.
  CHECK(error_of("domains: [a.test]\nsecrets:\n  - name: x\n    env: X\n    from_env: A\n    hosts: [a.test]\n") ==
        "no error");
}

TEST_CASE("secrets: an untrusted workspace cannot name them, a trusted one can") {
  const std::string base = "domains: [api.openai.com]\n";
  const std::string ws = "secrets: [openai]\n";
  CHECK(config_of(base, ws, false).secrets.empty());
  CHECK(config_of(base, ws, true).secrets.size() == 1);
  std::vector<ConfigLayer> layers{load_config(base, "/g", LayerKind::base), load_config(ws, "/w", LayerKind::workspace)};
  const MergedConfig m = merge_layers(layers, MergeOptions{false, "trust it"});
  REQUIRE(m.warnings.size() == 1);
  CHECK(m.warnings[0].find("secrets (they decide which hosts get your credentials)") != std::string::npos);
}

TEST_CASE("secrets: values are read before anything starts, and refused when unusable") {
  SecretSpec env{"a", "A_KEY", "SRC", {}, {}, {"a.test"}, false, {"/g", 1, 1}};
  std::map<std::string, std::string> vars = {{"SRC", "sk-123\n"}};
  const auto getenv_fn = [&](const char* name) -> const char* {
    auto it = vars.find(name);
    return it == vars.end() ? nullptr : it->second.c_str();
  };
  const auto loaded = load_secret_values({env}, no_command, getenv_fn);
  REQUIRE(loaded.size() == 1);
  CHECK(loaded[0].value == "sk-123");  // one trailing newline dropped
  CHECK(loaded[0].placeholder.rfind("cagent-secret-a-", 0) == 0);
  CHECK(loaded[0].placeholder.size() == std::string("cagent-secret-a-").size() + 32);
  // Random per session.
  CHECK(load_secret_values({env}, no_command, getenv_fn)[0].placeholder != loaded[0].placeholder);

  vars.clear();
  CHECK_THROWS_WITH_AS(load_secret_values({env}, no_command, getenv_fn),
                       "/g:1:1: secret 'a' (from_env SRC): SRC is not set in cagent's environment", ConfigError);
  vars["SRC"] = "two\nlines";
  CHECK_THROWS_WITH_AS(load_secret_values({env}, no_command, getenv_fn),
                       "/g:1:1: secret 'a' (from_env SRC): the value is empty or not one line of printable ASCII",
                       ConfigError);
  SecretSpec cmd{"g", "G", {}, {}, {"gh", "auth", "token"}, {"g.test"}, true, {"/g", 2, 3}};
  CHECK_THROWS_WITH_AS(load_secret_values({cmd}, no_command, getenv_fn),
                       "/g:2:3: secret 'g' (from_command [gh auth token]): not run in this test", ConfigError);
  const auto ok_command = [](const std::vector<std::string>&, std::string&) -> std::optional<std::string> {
    return std::string("ghp_x\n");
  };
  CHECK(load_secret_values({cmd}, ok_command, getenv_fn)[0].value == "ghp_x");
  TempDir dir;
  SecretSpec file{"f", "F", {}, (dir.path() / "missing").string(), {}, {"f.test"}, false, {"/g", 3, 1}};
  CHECK_THROWS_WITH_AS(load_secret_values({file}, no_command, getenv_fn),
                       ("/g:3:1: secret 'f' (from_file " + (dir.path() / "missing").string() +
                        "): cannot read " + (dir.path() / "missing").string() + ": No such file or directory")
                           .c_str(),
                       ConfigError);
}

TEST_CASE("secrets: a dry run makes placeholders and reads no source") {
  // GH_TOKEN's source is unset here, and the command would fail: neither is touched.
  SecretSpec env{"a", "A_KEY", "CAGENT_TEST_SURELY_UNSET_VARIABLE", {}, {}, {"a.test"}, false, {}};
  SecretSpec cmd{"g", "G", {}, {}, {"/nonexistent/command"}, {"g.test"}, true, {}};
  const auto secrets = placeholder_secrets({env, cmd});
  REQUIRE(secrets.size() == 2);
  CHECK(secrets[0].placeholder.rfind("cagent-secret-a-", 0) == 0);
  CHECK(secrets[0].value.empty());
  CHECK(secrets[1].placeholder.rfind("cagent-secret-g-", 0) == 0);
  // The control: reading them for real fails on that very source.
  CHECK_THROWS_AS(load_secret_values({env}, no_command, [](const char* n) { return std::getenv(n); }), ConfigError);
}

TEST_CASE("secrets: the agent's environment holds placeholders only, and git asks the helper for its hosts") {
  SessionSecret gh{SecretSpec{"github", "GH_TOKEN", "GH_TOKEN", {}, {}, {"api.github.com", "github.com"}, true, {}},
                   "cagent-secret-github-00", "ghp_REAL"};
  SessionSecret ai{SecretSpec{"openai", "OPENAI_API_KEY", "X", {}, {}, {"api.openai.com"}, false, {}},
                   "cagent-secret-openai-11", "sk-REAL"};
  const auto env = secret_environment({gh, ai});
  for (const std::string& e : env) CHECK(e.find("REAL") == std::string::npos);
  CHECK(env[0] == "GH_TOKEN=cagent-secret-github-00");
  CHECK(env[1] == "OPENAI_API_KEY=cagent-secret-openai-11");
  CHECK(env[2] == "GIT_CONFIG_COUNT=2");
  CHECK(env[3] == "GIT_CONFIG_KEY_0=credential.https://api.github.com.helper");
  CHECK(env[4].rfind("GIT_CONFIG_VALUE_0=!f() { test \"$1\" = get && echo username=x-access-token", 0) == 0);
  CHECK(env[4].find("password=$GH_TOKEN") != std::string::npos);
  CHECK(env[5] == "GIT_CONFIG_KEY_1=credential.https://github.com.helper");
  // The relay's document carries the values; it goes on the socket only.
  const auto doc = cagent::dnsguard::parse_secrets(secrets_document({gh, ai}));
  REQUIRE(doc.secrets.size() == 2);
  CHECK(doc.secrets[0].value == "ghp_REAL");
  CHECK(doc.secrets[1].hosts == std::vector<std::string>{"api.openai.com"});
}

TEST_CASE("secrets server: one connection gets the document and a later one finds nobody") {
  TempDir dir;
  const auto path = dir.path() / "secrets.sock";
  SecretsServer server(path, "{\"version\":1}\n");
  const auto connect_to = [&]() -> int {
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strcpy(a.sun_path, path.c_str());
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0) {
      ::close(fd);
      return -1;
    }
    return fd;
  };
  const int first = connect_to();
  REQUIRE(first >= 0);
  std::string got;
  char buf[256];
  for (ssize_t n; (n = ::read(first, buf, sizeof buf)) > 0;) got.append(buf, static_cast<std::size_t>(n));
  ::close(first);
  CHECK(got == "{\"version\":1}\n");
  CHECK(server.served());
  CHECK(connect_to() < 0);  // the listener is gone with the first connection
}
