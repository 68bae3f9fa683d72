#pragma once
// One cagent invocation, wired from the pure steps:
//
//   CliOptions ─▶ workspace .cagent.yaml approval (workspace_approval.hpp)
//   ─▶ layers (base, workspace, flags) ─▶ merge ─▶ validate ─▶ Config
//   Config ─▶ CA bundle;  workspace ─▶ scan ─▶ MountPlan
//   docker info (sysbox) ─▶ update check ─▶ ensure_image
//   session dir (policy.toml, placeholders, CA bundle) ─▶ docker run (foreground)
//   ─▶ stop on signals ─▶ record the session's end (and warn about a new
//   .cagent.yaml / .envrc) ─▶ remove session dir ─▶ blocked-lookups summary ─▶ exit status
//
// All process starts go through the injected ProcessRunner.

#include <filesystem>
#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

#include "launcher/host/cli.hpp"
#include "launcher/host/config.hpp"
#include "launcher/host/process.hpp"

namespace cagent::launcher::host {

inline constexpr int kExitUsage = 2;
inline constexpr int kExitDocker = 125;

struct HostContext {
  std::filesystem::path home;
  std::filesystem::path cagent_home;
  std::filesystem::path workspace;   // canonical
  std::filesystem::path executable;  // for finding the image context
  std::string image = "cagent:latest";
  // Prefix of the per-workspace home volumes (CAGENT_HOME_VOLUME; tests use
  // their own so they never touch the user's homes).
  std::string home_volume_prefix = "cagent-home";
  bool stdin_tty = false;
  bool stdout_tty = false;
  // Identifies the running Docker engine (see docker_engine_key()); when
  // set, what `docker info` said about it is remembered across sessions.
  std::optional<std::string> engine_key;
};

// "<inode>:<ctime>" of the local engine's unix socket, which dockerd
// recreates whenever it starts (e.g. after a runtime such as sysbox-runc was
// added to its config). nullopt for a remote engine (DOCKER_HOST not unix).
std::optional<std::string> docker_engine_key();

struct SessionIo {
  std::ostream& out;
  std::ostream& err;
  std::istream& in;
};

// The config layers for this invocation. Writes the global config from the
// embedded default on first run unless `dry_run`. `workspace_yaml`: the
// workspace .cagent.yaml as approved (see workspace_approval.hpp) — the very
// bytes that were hashed and shown — or nullopt for none.
std::vector<ConfigLayer> load_layers(const CliOptions& cli, const HostContext& host, bool dry_run,
                                     const std::optional<std::string>& workspace_yaml);

// Trusted workspaces: one absolute path per line in <cagent_home>/trusted.
bool workspace_trusted(const std::filesystem::path& cagent_home,
                       const std::filesystem::path& workspace);

// Runs everything; returns the process exit status. Throws only for
// unexpected failures (main maps ConfigError etc. to messages).
int run_cagent(const CliOptions& cli, const HostContext& host, ProcessRunner& runner, SessionIo io);

}  // namespace cagent::launcher::host
