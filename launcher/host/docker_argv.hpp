#pragma once
// Rendering of docker command lines as argv vectors (never shell strings).
// Pure functions: the same spec always gives the same argv, which the unit
// tests compare against golden files.

#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "launcher/host/mount_plan.hpp"

namespace cagent::launcher::host {

// The agent's home is one volume per workspace directory, "<prefix>-<16
// hex>", created with the labels cagent.home=<prefix> (what --reset v and
// the tests' cleanup find them by) and cagent.workspace=<the path it was
// made for> (for people): a session in one workspace must not plant startup
// code (~/.bashrc, ~/.profile, ~/.config/git, ~/.npmrc, tool hooks) that
// runs in a session of any other workspace — neither one elsewhere nor a
// later, unrelated directory at the same path. So the name comes from the
// directory's identity (file_identity.hpp), not from its path: the same
// directory keeps its home (logins survive, also a rename or a move within
// its filesystem); a new clone, a copy or a directory made again at the
// same path gets a fresh one. A directory without an identity gets an
// anonymous volume, removed with the container. The prefix is kHomeVolume
// unless CAGENT_HOME_VOLUME names another (the tests' own); before
// per-workspace homes, kHomeVolume itself was the one shared home.
inline constexpr const char* kHomeVolume = "cagent-home";
inline constexpr const char* kHomeLabel = "cagent.home";
inline constexpr const char* kHomeWorkspaceLabel = "cagent.workspace";
inline constexpr const char* kSessionLabel = "cagent.session";
inline constexpr const char* kHashLabel = "cagent.context-hash";
inline constexpr const char* kContainerPolicy = "/etc/cagent/policy.toml";
inline constexpr const char* kContainerCaBundle = "/etc/cagent/extra-ca.pem";
inline constexpr const char* kContainerOwnerSocket = "/etc/cagent/owner.sock";
// cagent's secrets socket (secrets.hpp): cage-init's one connection.
inline constexpr const char* kContainerSecretsSocket = "/etc/cagent/secrets.sock";
inline constexpr const char* kContainerLogDir = "/var/log/cagent";
inline constexpr const char* kContainerDockerd = "/usr/sbin/dockerd";  // Debian's docker.io, in the NESTED_DOCKER variant

struct RunSpec {
  std::string image;
  std::string container_name;
  std::string session_id;
  bool tty = false;     // stdin and stdout are terminals
  // sysbox-runc available: the cage runs under it, with the nested Docker
  // engine (the image is then the NESTED_DOCKER variant).
  bool sysbox = false;
  MountPlan mounts;
  std::filesystem::path policy_file;
  std::filesystem::path log_dir;
  std::optional<std::filesystem::path> ca_bundle;
  // The socket that ties the cage to this cagent process (owner.hpp).
  std::optional<std::filesystem::path> owner_socket;
  // Secrets (secrets.hpp): the agent's variables with their placeholders
  // ("VAR=placeholder", never a value) and the socket the relay's secrets
  // come from.
  std::vector<std::string> secret_env;
  std::optional<std::filesystem::path> secrets_socket;
  // The workspace directory's own home volume (home_volume_name()); nullopt:
  // an anonymous one that goes with the container (no identity).
  std::optional<std::string> home_volume;
  std::string home_volume_prefix = kHomeVolume;  // its cagent.home label
  std::filesystem::path workspace;               // its cagent.workspace label
  std::vector<std::string> extra_args;
  std::vector<std::string> command;  // empty: login shell
};

std::vector<std::string> render_run_argv(const RunSpec& spec);

// A usable volume name prefix: [A-Za-z0-9][A-Za-z0-9_.-]*, at most 64 chars.
bool valid_home_volume_prefix(const std::string& prefix);

// "<prefix>-<first 16 hex digits of sha256 of the directory's identity>".
std::string home_volume_name(const std::string& prefix, const std::string& workspace_identity);

struct BuildSpec {
  std::string image;
  std::filesystem::path context;  // directory holding image/Dockerfile (and image/builder.Dockerfile)
  std::string context_hash;
  std::vector<std::pair<std::string, std::string>> build_args;
  // Non-empty: build only this stage (--target) and tag
  // it `image`, without the context-hash label, which describes whole images.
  std::string target = {};
  // The file under `context`/image/ to build: image/Dockerfile, or
  // builder.Dockerfile for the builder (see image.hpp, stage_build_spec).
  std::string dockerfile = "Dockerfile";
  // More tags for the same result (-t each).
  std::vector<std::string> also_tagged = {};
};

std::vector<std::string> render_build_argv(const BuildSpec& spec);

// One bind mount as docker arguments: "-v SRC:DST[:ro]" when neither path
// contains ':' (which -v cannot express), else "--mount" with CSV quoting.
std::vector<std::string> render_bind(const std::filesystem::path& source,
                                     const std::string& target, bool readonly);

}  // namespace cagent::launcher::host
