#pragma once
// Secrets that never enter the cage (`secrets:` in the global config or a
// trusted workspace's): the agent holds a placeholder in an environment
// variable, and the secret relay in the cage (launcher/relay) puts the real
// value in for the secret's own hosts only.
//
//   YAML `secrets:` ─read_secret_specs()─▶ SecretSpec (a preset's name, or a mapping)
//   specs ─resolve_secret_specs()─▶ the presets filled in, each checked:
//          a name, a variable, exactly one source, hosts that the domain
//          list allows exactly (pure; errors name file:line:column)
//   specs ─load_secret_values()─▶ SessionSecret (value read on the host:
//          from_env / from_file / from_command; a random placeholder)
//   SessionSecret ─secret_environment()─▶ `-e VAR=placeholder` (and git's
//          credential helper for `git: true`) — only placeholders in argv
//   SessionSecret ─serve_secrets()─▶ one connection on a unix socket in the
//          session directory: cage-init's, which hands it to the relay
//
// The value lives in cagent's memory and on that socket only: never in
// argv, the environment of docker, a file, the policy or the image.

#include <atomic>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "launcher/host/config.hpp"

namespace YAML {
class Node;
}

namespace cagent::launcher::host {


// The presets a one-word entry names: anthropic, openai, github.
std::optional<SecretSpec> secret_preset(std::string_view name);

// `secrets:`'s value: a list of preset names and mappings (name, env,
// from_env | from_file | from_command, hosts, git). A mapping whose name is
// a preset's takes the preset's values for the keys it leaves out. Throws
// ConfigError.
std::vector<SecretSpec> read_secret_specs(const YAML::Node& value, const std::string& origin);

// Checks each spec against the rules above and the merged domain patterns
// (a secret's host must be allowed: dnsguard must resolve it for the gate to
// admit it). Throws ConfigError naming the secret.
std::vector<SecretSpec> resolve_secret_specs(const std::vector<SecretSpec>& specs,
                                             const std::vector<std::string>& domains, bool connection_gate);

struct SessionSecret {
  SecretSpec spec;
  std::string placeholder;  // cagent-secret-NAME-<32 hex>
  std::string value;
};

// Runs a command for from_command: its stdout, or an error. Injected so
// the unit tests need no processes.
using CommandOutput = std::function<std::optional<std::string>(const std::vector<std::string>& argv, std::string& error)>;

// from_command through the real process runner: stdout captured, stdin
// /dev/null, stderr the user's, 30 s at most; a non-zero exit is an error.
CommandOutput command_output();

// The placeholders alone, values left empty: for a session that only
// prints what it would run (--dry-run, `cagent kube`) and serves nothing,
// so no variable, file or command is read.
std::vector<SessionSecret> placeholder_secrets(const std::vector<SecretSpec>& specs);

// Reads every value now, before anything starts. Throws ConfigError naming
// the secret and its source when one is missing, empty or not a single
// line of printable ASCII (it goes into an HTTP header).
std::vector<SessionSecret> load_secret_values(const std::vector<SecretSpec>& specs, const CommandOutput& run,
                                              const std::function<const char*(const char*)>& getenv_fn);

// `-e VAR=PLACEHOLDER` pairs for docker run, and for git's credential
// helper (`git: true`) the GIT_CONFIG_* variables that make git send the
// placeholder as the password for those hosts.
std::vector<std::string> secret_environment(const std::vector<SessionSecret>& secrets);

// Every host of every secret, sorted and without repeats (the policy's relay.hosts).
std::vector<std::string> secret_hosts(const std::vector<SessionSecret>& secrets);

// What the relay reads (dnsguard/contracts.hpp, write_secrets()).
std::string secrets_document(const std::vector<SessionSecret>& secrets);

// Listens on `socket` (created here, mode 0600) and answers exactly one
// connection with `document`, then closes the listener: the first
// connection is cage-init's, made before the agent exists. Runs on its own
// thread until served or stopped.
class SecretsServer {
 public:
  SecretsServer(std::filesystem::path socket, std::string document);
  ~SecretsServer();
  SecretsServer(const SecretsServer&) = delete;
  SecretsServer& operator=(const SecretsServer&) = delete;
  bool served() const noexcept;

 private:
  std::filesystem::path socket_;
  std::string document_;
  int listener_ = -1;
  int stop_[2] = {-1, -1};
  std::thread thread_;
  std::atomic<bool> served_{false};
};

}  // namespace cagent::launcher::host
