#pragma once
// One cagent invocation, in named stages (run_cagent() chains them; each is
// callable on its own, which is how the tests drive them):
//
//   resolve_config   CliOptions ─▶ base layer ─▶ workspace .cagent.yaml
//                    approval (workspace_approval.hpp) ─▶ layers (base,
//                    workspace, flags) ─▶ merge ─▶ MergedConfig   [--print-config stops here]
//   probe_engine     docker info (reachable? sysbox-runc?) ─▶ EngineFacts
//   prepare_session  ─▶ validate ─▶ Config ─▶ CA bundle; workspace ─▶ scan
//                    started on its own threads (kept listings:
//                    listing_cache.hpp); docker run spec + image request ─▶
//                    PreparedSession
//   finish_scan      waits for the scan ─▶ MountPlan (complete: nothing later
//                    changes the plan) ─▶ listings written for the next one
//                    (plan_session calls it at once, but for a session, which
//                    calls it after start_session: the scan overlaps the engine)
//   print_dry_run    the docker build/run commands            [--dry-run stops here]
//   start_session    update check ─▶ ensure_image (waits for the scan before a build) ─▶ log dir
//   supervise_session  session dir (policy.toml, placeholders, CA bundle) ─▶
//                    engine watch ─▶ docker run (foreground; at the cage's
//                    `die` event the end walk starts) ─▶ stop on
//                    signals ─▶ is the engine still there? ─▶ name what
//                    the session created that runs on the host later (a new
//                    .cagent.yaml / .envrc, new git repositories) ─▶ remove
//                    session dir ─▶ SessionOutcome
//   summarize_session  blocked-lookups summary ─▶ decide_session_end ─▶
//                    the line that says why, exit status
//
// All process starts go through the injected ProcessRunner and all output
// through SessionIo; the environment is read once, in main, into HostContext.

#include <csignal>
#include <filesystem>
#include <future>
#include <iosfwd>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "launcher/host/ca_bundle.hpp"
#include "launcher/host/cli.hpp"
#include "launcher/host/secrets.hpp"
#include "launcher/host/config.hpp"
#include "launcher/host/docker_argv.hpp"
#include "launcher/host/secrets.hpp"
#include "launcher/host/engine.hpp"
#include "launcher/host/image.hpp"
#include "launcher/host/mount_plan.hpp"
#include "launcher/host/git_markers.hpp"
#include "launcher/host/listing_cache.hpp"
#include "launcher/host/process.hpp"

namespace cagent::launcher::host {

inline constexpr int kExitUsage = 2;
inline constexpr int kExitDocker = 125;

struct HostContext {
  std::filesystem::path home;
  std::filesystem::path cagent_home;
  std::filesystem::path workspace;   // canonical
  // file_identity() of the workspace directory: what approvals of its
  // .cagent.yaml and its home volume belong to. nullopt: the filesystem
  // gives none, and nothing is remembered for it.
  std::optional<std::string> workspace_identity;
  std::filesystem::path executable;  // for finding the image context
  std::string image = "cagent:latest";
  // Prefix of the per-workspace home volumes (CAGENT_HOME_VOLUME; tests use
  // their own so they never touch the user's homes).
  std::string home_volume_prefix = "cagent-home";
  bool stdin_tty = false;
  bool stdout_tty = false;
  // The local engine's unix socket, the one the docker CLI uses (see
  // local_engine_socket() in engine.hpp); nullopt for a remote engine or a
  // docker context. When set, the session watches the engine (EngineWatch).
  std::optional<std::filesystem::path> engine_socket;
  // Identifies the running Docker engine (see docker_engine_key()); when
  // set, what `docker info` said about it is remembered across sessions.
  std::optional<std::string> engine_key;
  // CAGENT_CONTEXT: the image context to use instead of looking for one
  // (see find_image_context()).
  std::optional<std::filesystem::path> image_context;
  // BASE and AGENT_NPM_PACKAGES (CAGENT_BASE_IMAGE, CAGENT_NPM_PACKAGES).
  BuildArgs build_args = default_build_args(std::nullopt, std::nullopt);
};

struct SessionIo {
  std::ostream& out;
  std::ostream& err;
  std::istream& in;
};

// The base config layer: -c FILE, the built-in default, or the global
// config, which it writes from the built-in default on first run unless
// `dry_run` (and says so on `err`).
ConfigLayer load_base_layer(const CliOptions& cli, const HostContext& host, bool dry_run, std::ostream& err);

// Trusted workspaces: one absolute path per line in <cagent_home>/trusted.
bool workspace_trusted(const std::filesystem::path& cagent_home,
                       const std::filesystem::path& workspace);

// What one session is, before anything of it exists on the host.
struct PreparedSession {
  std::string id;  // random; names the container, the session dir and the log dir
  Config config;
  CaBundle ca;
  MountPlan plan;
  RunSpec run;
  ImageRequest image;
  // Read when the session was prepared (secrets.hpp): served to the cage's
  // relay once, on the session's secrets socket.
  std::vector<SessionSecret> secrets;
  std::filesystem::path session_dir;  // <cagent_home>/sessions/<id>: exists only while supervised
  std::filesystem::path log_dir;      // <cagent_home>/logs/session-<id>: kept (the newest few)
  // From the scan, for the end of the session: the git repositories present
  // at the start, and the directories the session cannot write into.
  std::vector<GitMarker> git_markers;
  SkipDirs unwritable;
  // The listings the scan used (listing_cache.hpp), for the walk at the end.
  std::shared_ptr<ListingCache> listings;
  // The scan while it runs; finish_scan() fills in what it found (plan,
  // run.mounts, git_markers, unwritable).
  std::future<ScanResult> pending_scan;
  // The listings being written for the next session (waited for when the
  // session is destroyed).
  std::future<void> saving_listings;
};

// How docker run ended, as observed.
struct SessionOutcome {
  int status = 0;             // docker run's exit status
  bool signalled = false;     // cagent got SIGINT/SIGTERM/SIGHUP and stopped the container
  int first_signal = SIGTERM; // the first of those
  // The engine that ran the session, after docker run (engine.hpp): nullopt
  // when it was not watched (a remote engine, a docker context, or it
  // refused the watch); `closed` also when the watch closed while docker
  // run was still running.
  std::optional<EngineCheck> engine;
  bool docker_run_killed = false;  // it outlived the engine by the grace and was killed
};

// What happened, decided from a SessionOutcome alone: the user stopped the
// session, the engine went away during it, docker run failed (exit 125 with
// the engine still there: it could not start the cage — or the command
// itself exited 125, which docker cannot tell apart), or the command
// exited. `status` is cagent's exit status.
struct SessionEnd {
  enum class Kind { stopped, engine_lost, docker_failed, command_exited };
  Kind kind = Kind::command_exited;
  int status = 0;
};
SessionEnd decide_session_end(const SessionOutcome& outcome);

// Stage "prepare", first half: approval of the workspace .cagent.yaml (a
// question on a terminal), layers, merge; merge warnings are printed. With
// --dry-run or --print-config nothing is remembered or written.
MergedConfig resolve_config(const CliOptions& cli, const HostContext& host, SessionIo io);
// What the Docker engine offers, asked before planning: `docker info`, its
// answer kept per engine process (see docker_engine_key()) unless
// `remember` is false (--dry-run writes nothing). Never throws: an engine
// that does not answer is reported, and only a real run needs one.
struct EngineFacts {
  bool reachable = false;
  std::string unreachable;  // why not, for the one-line error
  bool sysbox = false;      // the sysbox-runc runtime is registered
};
EngineFacts probe_engine(ProcessRunner& runner, const HostContext& host, bool remember = true);
// Stage "prepare", second half: validation, CA bundle, workspace scan (its
// warnings printed), mount plan, the docker run spec and image request —
// with sysbox (the image variant with an engine, its runtime, cage-init's
// engine) when the engine has it. Reads only; creates nothing.
PreparedSession prepare_session(const CliOptions& cli, const HostContext& host, const MergedConfig& merged,
                                const EngineFacts& engine, SessionIo io);
// Stage "dry-run": the docker build (when a context exists) and run commands
// exactly as a real run would use them (said so when no engine answered:
// then as for an engine without sysbox-runc).
void print_dry_run(const PreparedSession& session, const EngineFacts& engine, std::ostream& out);
// Stage "start": the update check, the image, the session's log dir.
void start_session(PreparedSession& session, const HostContext& host, ProcessRunner& runner, SessionIo io);
// Stage "supervise": the session dir and its files, docker run in the
// foreground, signals turned into docker stop/kill, the container gone
// before it returns; a local engine watched meanwhile (engine.hpp), docker
// run killed if it outlives the engine, and asked about once docker run
// ended; then what the session created that runs on the host later is
// named, and the session dir removed whatever happens (its owner socket
// with it: a cage still running stops itself).
SessionOutcome supervise_session(const PreparedSession& session, const HostContext& host, ProcessRunner& runner,
                                 SessionIo io);
// Stage "summarize": what dnsguard and the firewall refused, from the
// session's decision record (nothing when the cage ended before dnsguard
// wrote one), the reason for an odd end (decide_session_end), and the exit
// status (128 + signal when stopped, 125 when the engine went away).
int summarize_session(const SessionOutcome& outcome, const std::filesystem::path& log_dir, SessionIo io);

// The stages from the effective config to a complete plan, as every
// session runs them (cagent, cagent check): the workspace is one cagent
// may run in, the engine answers (unless `cli.dry_run`), the plan.
struct PlannedSession {
  EngineFacts engine;
  PreparedSession session;
};
// `defer_scan`: return while the workspace scan still runs (call
// finish_scan() before the plan is used).
PlannedSession plan_session(const CliOptions& cli, const HostContext& host, const MergedConfig& merged,
                            ProcessRunner& runner, SessionIo io, bool defer_scan = false);

// Waits for the scan prepare_session() started, says its warnings and fills
// in the plan; keeps the listings it used for the next session. Throws what
// the scan threw (a workspace that cannot be read). Does nothing the second
// time.
void finish_scan(PreparedSession& session, const HostContext& host, SessionIo io);

// Runs everything; returns the process exit status. Throws only for
// unexpected failures (main maps ConfigError etc. to messages).
int run_cagent(const CliOptions& cli, const HostContext& host, ProcessRunner& runner, SessionIo io);

}  // namespace cagent::launcher::host
