#pragma once
// Live policy from the host: `cagent allow NAME… [--session ID]` and
// `cagent deny NAME… [--session ID]` change the allowlist of running cages
// without restarting them.
//
//   argv ─parse_live_command()─▶ LiveCommand
//   docker ps/inspect ─parse_running_cages()─▶ cages ─select_cages()─▶ targets
//   each target ─control_argv()─▶ docker exec -u 0 … dnsguard --control SOCKET allow …
//
// The way in is `docker exec -u 0` into the container: only someone who can
// use the Docker engine (the user on the host) can take it. dnsguard's
// control socket sits in a 0700 directory of dnsguard's own and serves only
// uid 0, so the agent, an unprivileged uid inside the same container, has no
// path to it (see dnsguard/control.hpp).

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "launcher/host/process.hpp"
#include "launcher/host/session.hpp"

namespace cagent::launcher::host {

struct LiveCommand {
  enum class Kind { allow, deny } kind = Kind::allow;
  std::vector<std::string> names;   // normalized patterns (validated)
  std::optional<std::string> session;
};

// nullopt when args do not start with "allow" or "deny" (the ordinary
// cagent command line). Throws UsageError for a bad one: no names, an
// invalid pattern, an unknown option — before anything is changed.
std::optional<LiveCommand> parse_live_command(const std::vector<std::string>& args);

struct RunningCage {
  std::string container;
  std::string session;
  std::filesystem::path workspace;  // the bind source of /workspace ("" if unknown)
};

// `docker ps --format '{{.Names}}\t{{.Label "cagent.session"}}'` output.
std::vector<RunningCage> parse_running_cages(const std::string& docker_ps_output);

// The cages a command applies to: the one session named, else every cage
// of `workspace`. Throws UsageError("no running cage for this workspace" /
// "unknown session ID").
std::vector<RunningCage> select_cages(const std::vector<RunningCage>& cages, const std::filesystem::path& workspace,
                                      const std::optional<std::string>& session);

std::vector<std::string> control_argv(const RunningCage& cage, const LiveCommand& command);

// The whole command: find, select, send; one line per cage on io.err.
// 0 when every cage took it, 2 when a usage error or dnsguard refused it.
int run_live(const LiveCommand& command, const HostContext& host, ProcessRunner& runner, SessionIo io);

}  // namespace cagent::launcher::host
