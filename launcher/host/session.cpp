#include "launcher/host/session.hpp"

#include <poll.h>

#include <algorithm>
#include <chrono>
#include <sstream>
#include <string_view>
#include <system_error>

#include "cagent_host/build_info.hpp"
#include "launcher/host/blocked_summary.hpp"
#include "launcher/host/ca_bundle.hpp"
#include "launcher/host/docker_argv.hpp"
#include "launcher/host/image.hpp"
#include "launcher/host/learn.hpp"
#include "launcher/host/mount_plan.hpp"
#include "launcher/host/paths.hpp"
#include "launcher/host/policy.hpp"
#include "launcher/host/reset.hpp"
#include "launcher/host/scan.hpp"
#include "launcher/host/session_record.hpp"
#include "launcher/host/text.hpp"
#include "launcher/host/update_check.hpp"
#include "launcher/host/workspace_approval.hpp"

namespace cagent::launcher::host {
namespace fs = std::filesystem;
namespace {

constexpr std::size_t kKeptSessionLogs = 20;
// The engine watch (engine.hpp): how long the engine may take to accept it,
// how long docker run may outlive the engine (it notices by itself within a
// fraction of a second), and how long the engine may take to answer
// whether it is still there once docker run ended.
constexpr std::chrono::seconds kEngineWatchOpen{2};
constexpr std::chrono::seconds kEngineGrace{3};
constexpr std::chrono::seconds kEngineCheck{5};

std::string join_quoted(const std::vector<std::string>& argv) {
  std::string s;
  for (const std::string& a : argv) s += (s.empty() ? "" : " ") + shell_quote(a);
  return s;
}

std::string trust_hint(const HostContext& host) {
  return "echo " + shell_quote(host.workspace.string()) + " >> " +
         shell_quote((host.cagent_home / "trusted").string());
}

// The first line of a failed docker command's output that says something:
// docker prints a --format template's empty value ("null") before the error.
std::string first_message_line(const std::string& output) {
  std::istringstream in(output);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line != "null") return line;
  }
  return "no output";
}

// Keeps the newest `keep` session log directories; best effort.
void prune_session_logs(const fs::path& logs, std::size_t keep) {
  std::error_code ec;
  std::vector<std::pair<fs::file_time_type, fs::path>> dirs;
  for (fs::directory_iterator it(logs, ec); !ec && it != fs::directory_iterator(); it.increment(ec)) {
    if (it->path().filename().string().rfind("session-", 0) == 0 && it->is_directory()) {
      dirs.emplace_back(it->last_write_time(ec), it->path());
    }
  }
  if (dirs.size() <= keep) return;
  std::sort(dirs.begin(), dirs.end());
  for (std::size_t i = 0; i + keep < dirs.size(); ++i) fs::remove_all(dirs[i].second, ec);
}

// Everything the session creates on the host, removed at exit whatever happens.
constexpr const char* kWorkspaceConfig = ".cagent.yaml";
constexpr const char* kEnvrc = ".envrc";
// Larger files are not shown for review (nobody reads that on a prompt).
constexpr std::size_t kMaxShownConfig = 64 * 1024;
// New git repositories named at the end of a session, at most.
constexpr std::size_t kMaxNamedGitMarkers = 10;

// The file for review on the terminal: every line escaped (no raw control
// characters, escapes or bidi overrides reach the terminal), marked "| ".
void show_config(std::ostream& err, const std::string& content) {
  std::istringstream in(content);
  for (std::string line; std::getline(in, line);) err << "  | " << printable(line) << "\n";
  if (!content.empty() && content.back() != '\n') err << "  (no newline at the end)\n";
}

// What the file would add, for the person deciding: the lines of
// describe_additions(), or why they cannot be told.
void show_additions(std::ostream& err, const ConfigLayer& base, const std::string& content,
                    const std::string& origin, bool trusted) {
  std::vector<std::string> lines;
  try {
    lines = describe_additions(base, load_config(content, origin, LayerKind::workspace), trusted);
  } catch (const ConfigError& e) {
    err << "cagent: it is not a valid configuration: " << printable(e.what()) << "\n";
    return;
  }
  if (lines.empty()) {
    err << "cagent: it adds nothing to your global config\n";
    return;
  }
  err << "cagent: over your global config it adds:\n";
  for (const std::string& l : lines) err << "  - " << l << "\n";
}

// Decides whether the workspace .cagent.yaml is used (workspace_approval.hpp)
// and returns the very bytes that were hashed (and shown), or nullopt.
// `record`: remember an approval (not for --dry-run / --print-config).
std::optional<std::string> approve_workspace_config(const CliOptions& cli, const HostContext& host, SessionIo io,
                                                    const ConfigLayer& base, const ConfigFileState& file,
                                                    bool trusted, bool record) {
  const std::string shown = printable((host.workspace / kWorkspaceConfig).string());
  const ApprovalStore store(host.cagent_home);
  ApprovalInput in;
  in.workspace = host.workspace.string();
  in.identity = host.workspace_identity;
  in.file = file;
  in.accept_flag = cli.accept_workspace_config;
  in.can_ask = record && host.stdin_tty;
  if (in.file.content && in.identity) in.approvals = store.load(in.workspace, *in.identity);
  ApprovalDecision decision = decide_workspace_config(in);
  if (decision.verdict == Verdict::ask && file.content->size() > kMaxShownConfig) {
    decision = {Verdict::ignore, decision.why + ", and it is too large to show here (" +
                                     std::to_string(file.content->size()) + " bytes)"};
  }
  if (decision.verdict == Verdict::ask) {
    io.err << "cagent: " << shown << " is not approved: " << decision.why
           << ". Whoever wrote to this directory may have written it (an earlier session's agent, a repository"
              " you cloned); it would apply from this session on:\n";
    show_config(io.err, *file.content);
    show_additions(io.err, base, *file.content, (host.workspace / kWorkspaceConfig).string(), trusted);
    io.err << "cagent: use it, and remember that you approved it? [y/N] " << std::flush;
    std::string answer;
    std::getline(io.in, answer);
    const bool yes = answer == "y" || answer == "Y" || answer == "yes";
    if (!yes) io.err << "cagent: not using " << shown << " in this session\n";
    decision.verdict = yes ? Verdict::accept : Verdict::ignore;
  } else if (decision.verdict == Verdict::ignore) {
    io.err << "cagent: ignoring " << shown << ": " << decision.why
           << "; read it, then run cagent --accept-workspace-config (or run cagent on a terminal to be asked)\n";
  }
  if (decision.verdict == Verdict::accept && record) {
    if (!in.identity) {
      io.err << "cagent: using " << shown
             << " in this session only: this filesystem gives the directory no identity to remember approvals by\n";
    } else {
      try {
        store.approve(in.workspace, *in.identity, file.hash);
      } catch (const std::exception& e) {
        io.err << "cagent: using " << shown << ", but could not remember the approval: " << printable(e.what())
               << "\n";
      }
    }
  }
  if (decision.verdict == Verdict::none || decision.verdict == Verdict::ignore) return std::nullopt;
  return file.content;
}

// What the session may have changed in the workspace that runs on the host
// later, as found before the container starts; named at the end.
struct WorkspaceBefore {
  std::string config_hash;
  std::string envrc_hash;
  std::vector<std::string> approved;  // the contents of .cagent.yaml approved for this workspace
};

std::vector<std::string> approved_contents(const HostContext& host) {
  if (!host.workspace_identity) return {};
  const auto approvals = ApprovalStore(host.cagent_home).load(host.workspace.string(), *host.workspace_identity);
  return approvals ? approvals->contents : std::vector<std::string>{};
}

WorkspaceBefore workspace_before(const HostContext& host) {
  return {file_state_hash(host.workspace / kWorkspaceConfig), file_state_hash(host.workspace / kEnvrc),
          approved_contents(host)};
}

// The end-of-session line about a .cagent.yaml the session created or
// changed; takes back an approval of what the agent wrote (see
// content_to_withdraw()), so that the line can say what the next session does.
void name_config_change(const WorkspaceBefore& before, const HostContext& host, SessionIo io) {
  const fs::path file = host.workspace / kWorkspaceConfig;
  const std::string now = file_state_hash(file);
  if (now == before.config_hash) return;
  const std::string shown = printable(file.string());
  if (now == kAbsentConfig) {
    io.err << "cagent: this session removed " << shown << "\n";
    return;
  }
  if (const auto hash = content_to_withdraw(before.config_hash, before.approved, now)) {
    ApprovalStore(host.cagent_home).withdraw(host.workspace.string(), *host.workspace_identity, *hash);
  }
  const std::vector<std::string> approved_now = approved_contents(host);
  if (std::find(approved_now.begin(), approved_now.end(), now) == approved_now.end()) {
    io.err << "cagent: this session created or changed " << shown
           << "; the next session shows it and uses it only once you approve it\n";
  } else {
    io.err << "cagent: this session changed " << shown
           << " and you approved the new content (cagent allow --save); the next session uses it\n";
  }
}

// Whether the cage gets a PID namespace of its own: no extra --pid argument
// ("--pid=host", "--pid container:NAME") shares one.
bool own_pid_namespace(const std::vector<std::string>& extra_args) {
  return std::none_of(extra_args.begin(), extra_args.end(),
                      [](const std::string& a) { return a.rfind("--pid", 0) == 0; });
}

// Once the container is gone: a .cagent.yaml or .envrc at the workspace root
// that the session created or changed, and the git repositories it created
// (git_markers.hpp). Best effort: a failure here is one line.
void name_session_changes(const WorkspaceBefore& before, const PreparedSession& p, const HostContext& host,
                          SessionIo io, std::future<GitMarkerWalk> walked) {
  try {
    name_config_change(before, host, io);
    if (file_state_hash(host.workspace / kEnvrc) != before.envrc_hash) {
      io.err << "cagent: this session created or changed " << printable((host.workspace / kEnvrc).string())
             << "; direnv runs it after 'direnv allow' - read it first\n";
    }
    // Walked already, since the cage's end, while the engine removed it (see
    // supervise_session) — or now.
    const GitMarkerWalk after =
        walked.valid() ? walked.get() : find_git_markers(host.workspace, p.unwritable, p.listings.get());
    for (const std::string& line : describe_new_git_markers(new_git_markers(p.git_markers, after.markers),
                                                            after.unchecked, kMaxNamedGitMarkers)) {
      io.err << "cagent: " << line << "\n";
    }
  } catch (const std::exception& e) {
    io.err << "cagent: could not look at what the session changed in the workspace: " << printable(e.what())
           << "\n";
  }
}

int do_reset(const CliOptions& cli, const HostContext& host, ProcessRunner& runner, SessionIo io) {
  const ResetPlan plan = parse_reset(*cli.reset);
  io.err << "cagent: this removes:\n" << describe_reset(plan, host.image, host.cagent_home, host.home_volume_prefix)
         << "  (workspace files are not touched)\n";
  if (!cli.yes) {
    if (!host.stdin_tty) {
      io.err << "cagent: refusing to reset without confirmation: no terminal to ask on; pass -y\n";
      return kExitUsage;
    }
    io.err << "continue? [y/N] " << std::flush;
    std::string answer;
    std::getline(io.in, answer);
    if (answer != "y" && answer != "Y" && answer != "yes") {
      io.err << "cagent: reset cancelled\n";
      return 1;
    }
  }
  const int status = run_reset(runner, plan, host.image, host.cagent_home, host.home_volume_prefix, io.err);
  if (status == 0) io.err << "cagent: reset done\n";
  return status;
}

}  // namespace

bool workspace_trusted(const fs::path& cagent_home, const fs::path& workspace) {
  std::string text;
  try {
    text = read_file(cagent_home / "trusted");
  } catch (const std::exception&) {
    return false;
  }
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    while (!line.empty() && (line.back() == '/' || line.back() == ' ' || line.back() == '\r')) {
      line.pop_back();
    }
    if (line.empty() || line.front() == '#') continue;
    if (fs::path(line) == workspace) return true;
  }
  return false;
}

ConfigLayer load_base_layer(const CliOptions& cli, const HostContext& host, bool dry_run, std::ostream& err) {
  if (cli.config_file) {
    const fs::path file = fs::absolute(*cli.config_file);
    return load_config(read_file(file), file.string(), LayerKind::base);
  }
  if (cli.no_global_config) {
    return load_config(build_info::kDefaultConfigYaml, "<built-in default>", LayerKind::base);
  }
  const fs::path global = host.cagent_home / "config.yaml";
  std::error_code ec;
  if (!fs::exists(global, ec)) {
    if (dry_run) return load_config(build_info::kDefaultConfigYaml, global.string(), LayerKind::base);
    // First run: the user gets an editable copy; never overwritten later.
    fs::create_directories(host.cagent_home);
    fs::permissions(host.cagent_home, fs::perms::owner_all);
    write_file(global, build_info::kDefaultConfigYaml, 0644);
    err << "cagent: wrote the default configuration to " << global.string() << "\n";
  }
  return load_config(read_file(global), global.string(), LayerKind::base);
}

MergedConfig resolve_config(const CliOptions& cli, const HostContext& host, SessionIo io) {
  const bool dry = cli.dry_run || cli.print_config;
  const bool trusted = workspace_trusted(host.cagent_home, host.workspace);
  std::vector<ConfigLayer> layers{load_base_layer(cli, host, dry, io.err)};
  const ConfigFileState ws_state = inspect_config_file(host.workspace / kWorkspaceConfig);
  if (const std::optional<std::string> ws_yaml =
          approve_workspace_config(cli, host, io, layers.front(), ws_state, trusted, !dry)) {
    layers.push_back(load_config(*ws_yaml, (host.workspace / kWorkspaceConfig).string(), LayerKind::workspace));
  }
  layers.push_back(cli.flags);
  MergedConfig merged = merge_layers(layers, MergeOptions{trusted, trust_hint(host)});
  // They quote config paths, which a workspace may have chosen.
  for (const std::string& w : merged.warnings) io.err << "cagent: " << printable(w) << "\n";
  return merged;
}

EngineFacts probe_engine(ProcessRunner& runner, const HostContext& host, bool remember) {
  // `docker info` is the slowest step of a cage start (~70 ms), so its
  // answer is kept in <cagent_home>/engine-runtimes under the engine's key:
  // the next session of the same engine process skips it. A stale socket
  // left by a dead dockerd still fails loudly at `docker run`.
  const fs::path cache = host.cagent_home / "engine-runtimes";
  if (host.engine_key) {
    try {
      const std::string cached = read_file(cache);
      const std::string prefix = *host.engine_key + " sysbox=";
      if (cached.rfind(prefix, 0) == 0 && cached.size() > prefix.size())
        return EngineFacts{true, "", cached[prefix.size()] == '1'};
    } catch (const std::exception&) {
      // No cache yet: ask the engine.
    }
  }
  RunOptions opts;
  opts.output = RunOptions::Output::capture;
  opts.merge_stderr = true;
  opts.timeout = std::chrono::seconds(20);
  const RunResult r = runner.run({"docker", "info", "--format", "{{json .Runtimes}}"}, opts);
  if (r.status != 0 || r.timed_out) {
    const std::string detail = r.timed_out ? std::string("timed out") : first_message_line(r.output);
    return EngineFacts{false,
                       "cannot reach the Docker engine (docker info: " + detail +
                           "); is dockerd running and may this user use it?",
                       false};
  }
  const bool sysbox = r.output.find("\"sysbox-runc\"") != std::string::npos;
  if (host.engine_key && remember) {
    try {
      std::error_code ec;
      fs::create_directories(host.cagent_home, ec);
      write_file(cache, *host.engine_key + " sysbox=" + (sysbox ? "1" : "0") + "\n", 0644);
    } catch (const std::exception&) {
      // Best effort: without the cache the next start asks again.
    }
  }
  return EngineFacts{true, "", sysbox};
}

PreparedSession prepare_session(const CliOptions& cli, const HostContext& host, const MergedConfig& merged,
                                const EngineFacts& engine, SessionIo io) {
  PreparedSession p;
  p.id = random_hex(6);
  p.config = validate(merged, host.home);
  p.ca = collect_ca_bundle(p.config.ca_certificates, default_system_bundles());
  p.session_dir = host.cagent_home / "sessions" / p.id;
  p.log_dir = host.cagent_home / "logs" / ("session-" + p.id);

  // The scan runs on threads of its own while the rest is prepared and, for
  // a session, while the engine is asked about the image: finish_scan()
  // waits for it. The listings kept from the last session's scan stand in
  // for the directories still as they were then (listing_cache.hpp).
  // (std::async falls back to running it in finish_scan when no thread can
  // be had.)
  p.listings = std::make_shared<ListingCache>(ListingCache::horizon_now());
  p.pending_scan = std::async(std::launch::async | std::launch::deferred,
                              [root = host.workspace, file = listing_cache_file(host.cagent_home, host.workspace),
                               ignore = p.config.ignore, readonly = p.config.readonly, listings = p.listings] {
                                listings->load(file, root);
                                return scan_workspace(root, ignore, readonly, listings.get());
                              });

  RunSpec& spec = p.run;
  spec.image = host.image;
  spec.container_name = "cagent-" + p.id;
  spec.session_id = p.id;
  spec.tty = host.stdin_tty && host.stdout_tty;
  spec.policy_file = p.session_dir / "policy.toml";
  spec.log_dir = p.log_dir;
  if (!p.ca.empty()) spec.ca_bundle = p.session_dir / "extra-ca.pem";
  spec.owner_socket = p.session_dir / kOwnerSocketName;
  // Read now: a missing source stops everything before it starts. A dry run
  // (--dry-run, cagent kube) serves nothing, so it reads nothing either.
  p.secrets = cli.dry_run ? placeholder_secrets(p.config.secrets)
                          : load_secret_values(p.config.secrets, command_output(),
                                               [](const char* name) { return std::getenv(name); });
  if (!p.secrets.empty()) {
    spec.secret_env = secret_environment(p.secrets);
    spec.secrets_socket = p.session_dir / kSecretsSocketName;
  }
  if (host.workspace_identity) {
    spec.home_volume = home_volume_name(host.home_volume_prefix, *host.workspace_identity);
  } else {
    io.err << "cagent: the filesystem of " << printable(host.workspace.string())
           << " gives the directory no identity (no file handle, no inode generation), so cagent remembers"
              " nothing for it: the agent's home starts empty and goes with the container\n";
  }
  spec.home_volume_prefix = host.home_volume_prefix;
  spec.workspace = host.workspace;
  spec.extra_args = p.config.extra_args;
  spec.command = cli.command;
  spec.sysbox = engine.sysbox;

  ImageRequest& image = p.image;
  image.image = host.image;
  image.context = find_image_context(host.executable, host.image_context);
  const std::optional<fs::path> context =
      image.context ? std::optional<fs::path>(fs::weakly_canonical(*image.context)) : std::nullopt;
  for (const std::string& w : launcher_in_workspace(host.workspace, context, host.executable)) {
    io.err << "cagent: " << w << "\n";
  }
  image.build_args = with_extra_packages(host.build_args, p.config.image_packages);
  // Only with sysbox: the image variant with an engine (its own tag by its
  // hash). Without it nothing changes, not even the build args.
  if (engine.sysbox) image.build_args = with_nested_docker(std::move(image.build_args));
  image.ca_pem = p.ca.pem;
  image.work_dir = host.cagent_home / "build";
  image.log_dir = host.cagent_home / "logs";
  image.check_for_update = !cli.no_update;
  // The user's own layer on the image. Read from the cagent home only (the
  // agent never sees that directory); a workspace cannot name one.
  if (const fs::path user = host.cagent_home / "Dockerfile"; fs::is_regular_file(user)) {
    image.user_dockerfile = read_file(user);
    image.user_dockerfile_origin = user.string();
  }
  return p;
}

void finish_scan(PreparedSession& p, const HostContext& host, SessionIo io) {
  if (!p.pending_scan.valid()) return;  // finished already
  const ScanResult scan = p.pending_scan.get();
  for (const std::string& w : scan.warnings) io.err << "cagent: " << w << "\n";
  p.plan = plan_mounts(scan, host.workspace, p.session_dir);
  p.run.mounts = p.plan;
  p.git_markers = scan.git_markers;
  p.unwritable = unwritable_directories(host.workspace, scan);
  if (p.listings->settle()) {
    // Written while the session starts (the walk at the end only reads the
    // listings too). Best effort: the next scan lists what it must.
    const auto save = [listings = p.listings, file = listing_cache_file(host.cagent_home, host.workspace),
                       root = host.workspace] {
      try {
        listings->save(file, root);
        prune_listing_files(file.parent_path(), kKeptListingFiles);
      } catch (const std::exception&) {
      }
    };
    try {
      p.saving_listings = std::async(std::launch::async, save);
    } catch (const std::system_error&) {
      save();  // no thread to be had
    }
  }
}

void print_dry_run(const PreparedSession& p, const EngineFacts& engine, std::ostream& out) {
  if (!engine.reachable) {
    out << "# " << engine.unreachable << "\n# the commands an engine without sysbox-runc would get:\n";
  }
  const ImageRequest& image = p.image;
  if (image.context) {
    const std::string hash = context_hash(*image.context, context_files(*image.context), image.build_args, image.ca_pem);
    const std::string context_image = image.user_dockerfile ? base_tag(image.image) : image.image;
    const fs::path copy = image.work_dir / "context-XXXX";
    out << "# when " << image.image << " is missing or its " << kHashLabel << " label differs"
        << " (context copied to " << copy.string() << "; the throwaway stages first, side by side, each under its own tag):\n";
    for (std::string_view stage : kThrowawayStages) {
      out << join_quoted(
                 render_build_argv(stage_build_spec(image.image, stage, copy, hash, image.build_args, "XXXX")))
          << "\n";
    }
    out << join_quoted(render_build_argv(
               context_build_spec(context_image, copy, hash, image.build_args, builder_tag(image.image, "XXXX"))))
        << "\n";
    if (image.user_dockerfile) {
      out << "# then " << image.user_dockerfile_origin << " on it:\n"
          << join_quoted(render_user_build_argv(image.image, image.work_dir / "user-XXXX",
                                                user_layer_hash(hash, *image.user_dockerfile), context_image))
          << "\n";
    }
  }
  out << join_quoted(render_run_argv(p.run)) << "\n";
}

void start_session(PreparedSession& p, const HostContext& host, ProcessRunner& runner, SessionIo io) {
  if (!p.run.sysbox) {
    const fs::path notice = host.cagent_home / "nested-docker-notice";
    std::error_code ec;
    if (!fs::exists(notice, ec)) {
      io.err << "cagent: nested Docker is unavailable in the cage (no sysbox-runc runtime); "
                "this is said once\n";
      fs::create_directories(host.cagent_home, ec);
      try {
        write_file(notice, "", 0644);
      } catch (const std::exception&) {
        // Best effort: without the marker the notice is said again next time.
      }
    }
  }
  if (p.image.check_for_update && p.image.context && update_check_due(host.cagent_home / "last-update-check")) {
    if (auto msg = check_for_update(runner, *p.image.context, std::chrono::seconds(2))) {
      io.err << "cagent: " << *msg << "\n";
    }
  }
  ensure_image(runner, p.image, io.err);
  fs::create_directories(p.log_dir);
  prune_session_logs(host.cagent_home / "logs", kKeptSessionLogs);
}

SessionOutcome supervise_session(const PreparedSession& p, const HostContext& host, ProcessRunner& runner,
                                 SessionIo io) {
  SessionOutcome outcome;
  const std::string& container = p.run.container_name;
  const WorkspaceBefore before = workspace_before(host);
  SessionRecord session(p.session_dir);
  const OwnerSocket owner(session.path());
  std::optional<SecretsServer> secrets;
  if (p.run.secrets_socket) secrets.emplace(*p.run.secrets_socket, secrets_document(p.secrets));
  write_file(p.run.policy_file, render_policy_toml(p.config), 0644);
  if (p.run.ca_bundle) write_file(*p.run.ca_bundle, p.ca.pem, 0644);
  if (p.plan.needs_empty_file) write_file(session.path() / kEmptyFileName, "", 0444);
  if (p.plan.needs_empty_dir) {
    fs::create_directory(session.path() / kEmptyDirName);
    fs::permissions(session.path() / kEmptyDirName,
                    fs::perms::owner_read | fs::perms::owner_exec | fs::perms::group_read | fs::perms::group_exec |
                        fs::perms::others_read | fs::perms::others_exec);
  }
  int signals_seen = 0;
  RunOptions quiet;
  quiet.output = RunOptions::Output::discard;
  quiet.merge_stderr = true;
  quiet.timeout = std::chrono::seconds(30);
  // Subscribed before docker run starts: the engine process that runs this
  // session is the one watched.
  std::optional<EngineWatch> watch;
  if (host.engine_socket) watch = EngineWatch::open(*host.engine_socket, kEngineWatchOpen);
  Hangup hangup;
  hangup.fd = watch ? watch->fd() : -1;
  hangup.grace = kEngineGrace;
  // The walk for new git repositories starts as soon as the cage has ended
  // (ContainerEndWatch: no process of it is left), while the engine still
  // removes the container. Not when the cage shares a PID namespace (an
  // extra --pid argument): then its processes need not end with it.
  std::optional<ContainerEndWatch> end_watch;
  std::future<GitMarkerWalk> walked;
  if (host.engine_socket && own_pid_namespace(p.run.extra_args)) {
    end_watch = ContainerEndWatch::open(*host.engine_socket, container, kEngineWatchOpen);
  }
  if (end_watch) {
    hangup.event_fd = end_watch->fd();
    hangup.on_event = [&] {
      if (!end_watch->died()) return !end_watch->closed();
      try {
        walked = std::async(std::launch::async,
                            [&] { return find_git_markers(host.workspace, p.unwritable, p.listings.get()); });
      } catch (const std::system_error&) {
        // No thread to be had: the walk runs once docker run returned.
      }
      return false;
    };
  }
  const ForegroundResult run = runner.run_foreground(
      render_run_argv(p.run),
      [&](int signo) {
        if (!outcome.signalled) outcome.first_signal = signo;
        outcome.signalled = true;
        // First signal: a graceful stop (SIGTERM, then SIGKILL after 3 s);
        // again: kill at once. docker run then returns and we clean up.
        runner.run(++signals_seen == 1 ? std::vector<std::string>{"docker", "stop", "--time", "3", container}
                                       : std::vector<std::string>{"docker", "kill", container},
                   quiet);
      },
      hangup);
  outcome.status = run.status;
  outcome.docker_run_killed = run.killed;
  if (run.hung_up) {
    outcome.engine = EngineCheck::closed;
  } else if (watch && !outcome.signalled) {
    // A graceful stop of the engine ends the cage first, so docker run may
    // have returned the cage's status (143) with the engine on its way out.
    outcome.engine = watch->check(kEngineCheck);
  }
  // With the engine gone there is nobody to ask: the engine removes the
  // --rm container itself when it is back.
  if (outcome.signalled && !run.hung_up) {
    // --rm removes it, unless docker run died first; leave nothing behind.
    // The daemon's auto-removal is asynchronous (and makes a concurrent
    // "rm -f" fail with "removal in progress"), so wait, bounded, until the
    // name is gone before saying the session stopped.
    runner.run({"docker", "rm", "-f", container}, quiet);
    RunOptions probe = quiet;
    probe.timeout = std::chrono::seconds(5);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
    while (runner.run({"docker", "container", "inspect", "--format", "{{.Id}}", container}, probe).status == 0 &&
           std::chrono::steady_clock::now() < deadline) {
      ::poll(nullptr, 0, 100);
    }
  }
  name_session_changes(before, p, host, io, std::move(walked));
  return outcome;  // the session dir goes
}

namespace {

// What dnsguard refused, from its decision record. A session without one
// ended before the agent ran: dnsguard writes the record as it starts
// serving, and cage-init starts the agent only once dnsguard answers — so
// whatever stopped the cage (docker run, cage-init, dnsguard's start) has
// already said why, and a line about the missing record would only bury
// that — unless the log directory is full, when dnsguard may have served
// without being able to write it. A record that is there but unreadable is
// said, since silence would read as "nothing was blocked"; so is one that
// is incomplete (the log directory ran out of space, dnsguard could not
// write its last counts), after the counts it qualifies.
void print_blocked_summary(const std::filesystem::path& log_dir, SessionIo io) {
  try {
    const RecordCheck check{log_dir,
                            std::chrono::duration_cast<std::chrono::seconds>(
                                std::chrono::system_clock::now().time_since_epoch())
                                .count(),
                            true, free_bytes(log_dir)};
    if (const auto line = relay_line(read_relay_record(log_dir))) io.err << "cagent: " << printable(*line) << "\n";
    const std::optional<dnsguard::Decisions> record = read_decision_record(log_dir);
    if (!record) {
      if (const auto line = missing_record_line(check)) io.err << "cagent: " << printable(*line) << "\n";
      return;
    }
    for (const std::string& line : summary_lines(*record)) io.err << "cagent: " << printable(line) << "\n";
    if (const auto line = incomplete_line(*record, check)) io.err << "cagent: " << printable(*line) << "\n";
  } catch (const std::exception& e) {
    io.err << "cagent: cannot summarize what was blocked: " << printable(e.what()) << "\n";
  }
}

}  // namespace

SessionEnd decide_session_end(const SessionOutcome& outcome) {
  using Kind = SessionEnd::Kind;
  // Like a shell reports an interrupted command: 128 + the signal the user
  // sent (130 for Ctrl-C), whatever the container died of.
  if (outcome.signalled) return {Kind::stopped, 128 + outcome.first_signal};
  // Whatever docker run returned: "unexpected EOF" (125), or the status of
  // the cage the stopping engine ended (143) — not the command's own.
  if (outcome.engine && *outcome.engine != EngineCheck::answered) return {Kind::engine_lost, kExitDocker};
  if (outcome.status == kExitDocker) return {Kind::docker_failed, kExitDocker};
  return {Kind::command_exited, outcome.status};
}

int summarize_session(const SessionOutcome& outcome, const std::filesystem::path& log_dir, SessionIo io) {
  print_blocked_summary(log_dir, io);
  const SessionEnd end = decide_session_end(outcome);
  switch (end.kind) {
    case SessionEnd::Kind::stopped: io.err << "cagent: session stopped\n"; break;
    case SessionEnd::Kind::engine_lost:
      // The cage stops itself: the session's owner socket went with its
      // record (session_record.hpp), engine or not.
      io.err << "cagent: the Docker engine went away during the session (" << describe(*outcome.engine)
             << (outcome.docker_run_killed ? "; docker run did not notice and was killed" : "")
             << "); the cage stops itself and the engine removes its container when it is back:"
                " run cagent again once `docker info` answers\n";
      break;
    case SessionEnd::Kind::docker_failed: io.err << "cagent: docker run failed (exit 125; its message is above)\n"; break;
    case SessionEnd::Kind::command_exited: break;
  }
  return end.status;
}

PlannedSession plan_session(const CliOptions& cli, const HostContext& host, const MergedConfig& merged,
                            ProcessRunner& runner, SessionIo io, bool defer_scan) {
  if (const auto why = forbidden_workspace(host.workspace, fs::weakly_canonical(host.home),
                                           fs::weakly_canonical(host.cagent_home))) {
    throw UsageError(*why);
  }
  EngineFacts engine = probe_engine(runner, host, !cli.dry_run);
  if (!engine.reachable && !cli.dry_run) throw DockerError(engine.unreachable);
  PreparedSession session = prepare_session(cli, host, merged, engine, io);
  if (!defer_scan) finish_scan(session, host, io);
  return {std::move(engine), std::move(session)};
}

int run_cagent(const CliOptions& cli, const HostContext& host, ProcessRunner& runner, SessionIo io) {
  if (cli.help) {
    io.out << usage_text();
    return 0;
  }
  if (cli.version) {
    io.out << "cagent " << build_info::kVersion << "\n";
    return 0;
  }
  if (cli.reset) return do_reset(cli, host, runner, io);

  const MergedConfig merged = resolve_config(cli, host, io);
  if (cli.print_config) {
    io.out << render_config(merged);
    return 0;
  }
  // The scan goes on while the engine is asked about the image (before a
  // build, it is waited for: its warnings and errors come first).
  auto [engine, session] = plan_session(cli, host, merged, runner, io, !cli.dry_run);
  session.image.before_build = [&session, &host, io] { finish_scan(session, host, io); };
  if (cli.dry_run) {
    print_dry_run(session, engine, io.out);
    return 0;
  }
  // Records of sessions whose cagent was killed (their cages have ended).
  remove_stale_sessions(host.cagent_home / "sessions");
  // Learn mode is said loudly where the user looks, at the start and at
  // the end, so a session nobody meant to run open does not pass unnoticed.
  if (session.config.learn) io.err << "cagent: " << learn_start_line() << "\n";
  start_session(session, host, runner, io);
  finish_scan(session, host, io);
  const SessionOutcome outcome = supervise_session(session, host, runner, io);
  const int status = summarize_session(outcome, session.log_dir, io);
  if (session.config.learn) finish_learn_session(session.log_dir, session.config.domains, session.id, host, io);
  return status;
}

}  // namespace cagent::launcher::host
