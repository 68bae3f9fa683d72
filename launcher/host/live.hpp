#pragma once
// Live policy from the host: `cagent allow NAME… [--session ID]` and
// `cagent deny NAME… [--session ID]` change the allowlist of running cages
// without restarting them.
//
//   argv ─parse_live_command()─▶ LiveCommand ─run_live()─▶ one of:
//   allow/deny: docker ps/inspect ─parse_running_cages()─▶ cages ─select_cages()─▶ targets
//               each target ─control_argv()─▶ docker exec -u 0 … dnsguard --control SOCKET allow …
//               ─▶ ControlReply (dnsguard/contracts.hpp) ─describe()─▶ one line per cage
//   ps:         cages + each session's decision record ─render_ps()─▶ listing
//   log [-f]:   a session's decision record ─render_log()─▶ lines (again as they change)
//   watch:      every running cage's dnsguard event stream, one key per decision (watch.hpp)
//
// The way in is `docker exec -u 0` into the container: only someone who can
// use the Docker engine (the user on the host) can take it. dnsguard's
// control socket sits in a 0700 directory of dnsguard's own and serves only
// uid 0, so the agent, an unprivileged uid inside the same container, has no
// path to it (see dnsguard/control.hpp).

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "dnsguard/contracts.hpp"
#include "launcher/host/kube.hpp"
#include "launcher/host/process.hpp"
#include "launcher/host/session.hpp"

namespace cagent::launcher::host {

struct LiveCommand {
  enum class Kind { allow, deny, ps, log, check, kube, watch } kind = Kind::allow;
  std::vector<std::string> names;   // allow/deny: normalized patterns (validated)
  std::optional<std::string> session;  // allow/deny --session; log and watch: SESSION
  bool json = false;                // ps, log: one JSON object per line
  bool follow = false;              // log -f: until the session's cage is gone
  bool all = false;                 // watch --all: every user's cages too, not only this user's sessions
  std::chrono::milliseconds follow_interval{1000};
  // allow --save[=workspace|global]: also append the names to that config
  // file's domains (yaml_edit.hpp), as the user's approved change.
  enum class Save { none, workspace, global } save = Save::none;
  // allow --from-learned: the names of the last learn session's proposal
  // for this workspace (learn.hpp), added to `names` by run_live.
  bool from_learned = false;
  // check (check.hpp): --name, and the ordinary options of the session it
  // starts (-c, --arg, -d, …), parsed by parse_cli.
  std::optional<std::string> check_name;
  CliOptions check_cli;  // check and kube: the session's ordinary options
  // kube (kube.hpp): its own options; the command after -- is in check_cli.
  KubeOptions kube;
};

// `cagent allow --save`: adds `names` to the file's domains, keeping the
// rest as written. The workspace file is written only when it is the
// content the user last accepted (workspace_approval.hpp) — otherwise a
// session may have changed it and saving would approve that unseen — and
// the new content is then recorded as accepted. Throws UsageError (one
// line, nothing written) when it cannot. Returns the file written ("" when
// every name was already there).
std::filesystem::path save_domains(LiveCommand::Save where, const std::vector<std::string>& names,
                                   const HostContext& host);

// nullopt when args do not start with "allow", "deny", "ps" or "log" (the
// ordinary cagent command line). Throws UsageError for a bad one: no names,
// an invalid pattern, an unknown option — before anything is changed.
std::optional<LiveCommand> parse_live_command(const std::vector<std::string>& args);

struct RunningCage {
  std::string container;
  std::string session;
  std::filesystem::path workspace;  // the bind source of /workspace ("" if unknown)
  std::vector<std::string> command; // what the agent runs (after cage-init's --)
  std::int64_t started = 0;         // unix seconds (0: unknown)
  bool learn = false;               // the session runs in learn mode (its policy says so)
};

// One line of `docker inspect --format` (kInspectFormat in live.cpp):
// "STARTED\tWORKSPACE\tARGS-JSON" into `cage`.
void apply_inspect(RunningCage& cage, const std::string& line);

// `cagent ps`: one line per cage (or one JSON object per line). `blocked`
// gives (denied lookups, gate refusals) of a session, from its record.
struct Blocked {
  std::uint64_t denied = 0, refused = 0;  // refused: by the gate
  std::uint64_t firewall = 0;             // packets the firewall refused
};
std::string render_ps(const std::vector<RunningCage>& cages, const std::vector<Blocked>& blocked, std::int64_t now,
                      bool json);

// `cagent log [-f]`: a decision record as lines for people, or as one JSON
// object per decision.
std::string render_log(const std::string& session, const dnsguard::Decisions& record, bool json);

// `docker ps --format '{{.Names}}\t{{.Label "cagent.session"}}'` output.
std::vector<RunningCage> parse_running_cages(const std::string& docker_ps_output);

// The cages a command applies to: the one session named, else every cage
// of `workspace`. Throws UsageError("no running cage for this workspace" /
// "unknown session ID").
std::vector<RunningCage> select_cages(const std::vector<RunningCage>& cages, const std::filesystem::path& workspace,
                                      const std::optional<std::string>& session);

std::vector<std::string> control_argv(const RunningCage& cage, const LiveCommand& command);
// `docker exec -u 0 CONTAINER dnsguard --control SOCKET OP NAME…`: the way
// into one cage's dnsguard (OP: a ControlOp word).
std::vector<std::string> control_argv(const RunningCage& cage, std::string_view op,
                                      const std::vector<std::string>& names);

// dnsguard's reply to OP NAME… in one cage: the line dnsguard --control
// printed last, or, when there is none (docker exec or the socket failed),
// a refusal (ok false) carrying what they printed instead.
dnsguard::ControlReply send_control(ProcessRunner& runner, const RunningCage& cage, dnsguard::ControlOp op,
                                    const std::vector<std::string>& names);

// The running cages of this Docker engine (every user's workspace), with
// what docker inspect tells (apply_inspect). Throws DockerError.
std::vector<RunningCage> list_cages(ProcessRunner& runner);
// The same in two steps: docker ps only (container and session), and one
// cage's docker inspect.
std::vector<RunningCage> list_cage_names(ProcessRunner& runner);
void inspect_cage(ProcessRunner& runner, RunningCage& cage);

// A DNS query type for people: "A", "AAAA", …, else "TYPE<n>".
std::string dns_type_text(int type);

// The whole command. allow/deny: find, select, send; one line per cage on
// io.err; 0 when every cage took it, 2 when dnsguard refused it or could
// not be asked. ps, log: the listing on io.out.
int run_live(const LiveCommand& command, const HostContext& host, ProcessRunner& runner, SessionIo io);

}  // namespace cagent::launcher::host
