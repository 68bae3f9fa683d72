#include "launcher/host/session.hpp"

#include <poll.h>
#include <signal.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <sstream>
#include <string_view>
#include <system_error>

#include "cagent_host/build_info.hpp"
#include "launcher/host/blocked_summary.hpp"
#include "launcher/host/ca_bundle.hpp"
#include "launcher/host/docker_argv.hpp"
#include "launcher/host/image.hpp"
#include "launcher/host/mount_plan.hpp"
#include "launcher/host/paths.hpp"
#include "launcher/host/policy.hpp"
#include "launcher/host/reset.hpp"
#include "launcher/host/scan.hpp"
#include "launcher/host/update_check.hpp"

namespace cagent::launcher::host {
namespace fs = std::filesystem;
namespace {

constexpr std::size_t kKeptSessionLogs = 20;

std::string join_quoted(const std::vector<std::string>& argv) {
  std::string s;
  for (const std::string& a : argv) s += (s.empty() ? "" : " ") + shell_quote(a);
  return s;
}

std::string trust_hint(const HostContext& host) {
  return "echo " + shell_quote(host.workspace.string()) + " >> " +
         shell_quote((host.cagent_home / "trusted").string());
}

// Sysbox from `docker info`; throws DockerError when the engine is unreachable.
// `docker info` is the slowest step of a cage start (~70 ms), so its answer
// is kept in <cagent_home>/engine-runtimes under the engine's key: the next
// session of the same engine process skips it. A stale socket left by a dead
// dockerd still fails loudly at `docker run`.
bool detect_sysbox(ProcessRunner& runner, const HostContext& host) {
  const fs::path cache = host.cagent_home / "engine-runtimes";
  if (host.engine_key) {
    try {
      const std::string cached = read_file(cache);
      const std::string prefix = *host.engine_key + " sysbox=";
      if (cached.rfind(prefix, 0) == 0 && cached.size() > prefix.size())
        return cached[prefix.size()] == '1';
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
    std::string detail = r.output.substr(0, r.output.find('\n'));
    throw DockerError("cannot reach the Docker engine (docker info: " +
                      (r.timed_out ? std::string("timed out") : detail) +
                      "); is dockerd running and may this user use it?");
  }
  const bool sysbox = r.output.find("\"sysbox-runc\"") != std::string::npos;
  if (host.engine_key) {
    try {
      std::error_code ec;
      fs::create_directories(host.cagent_home, ec);
      write_file(cache, *host.engine_key + " sysbox=" + (sysbox ? "1" : "0") + "\n", 0644);
    } catch (const std::exception&) {
      // Best effort: without the cache the next start asks again.
    }
  }
  return sysbox;
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
class SessionDir {
 public:
  explicit SessionDir(fs::path dir) : dir_(std::move(dir)) {
    fs::create_directories(dir_.parent_path());
    fs::create_directory(dir_);
    fs::permissions(dir_, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                              fs::perms::others_read | fs::perms::others_exec);
  }
  ~SessionDir() {
    std::error_code ec;
    // The placeholders are read-only; make them removable first.
    fs::permissions(dir_ / kEmptyDirName, fs::perms::owner_all, ec);
    fs::remove_all(dir_, ec);
  }
  SessionDir(const SessionDir&) = delete;
  SessionDir& operator=(const SessionDir&) = delete;
  const fs::path& path() const { return dir_; }

 private:
  fs::path dir_;
};

struct Prepared {
  Config config;
  CaBundle ca;
  MountPlan plan;
  std::vector<std::string> scan_warnings;
};

int do_reset(const CliOptions& cli, const HostContext& host, ProcessRunner& runner, SessionIo io) {
  const ResetPlan plan = parse_reset(*cli.reset);
  io.err << "cagent: this removes:\n" << describe_reset(plan, host.image, host.cagent_home)
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
  const int status = run_reset(runner, plan, host.image, host.cagent_home);
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

std::vector<ConfigLayer> load_layers(const CliOptions& cli, const HostContext& host, bool dry_run) {
  std::vector<ConfigLayer> layers;
  if (cli.config_file) {
    const fs::path file = fs::absolute(*cli.config_file);
    layers.push_back(load_config(read_file(file), file.string(), LayerKind::base));
  } else if (cli.no_global_config) {
    layers.push_back(load_config(build_info::kDefaultConfigYaml, "<built-in default>", LayerKind::base));
  } else {
    const fs::path global = host.cagent_home / "config.yaml";
    std::error_code ec;
    if (!fs::exists(global, ec)) {
      if (dry_run) {
        layers.push_back(load_config(build_info::kDefaultConfigYaml, global.string(), LayerKind::base));
      } else {
        // First run: the user gets an editable copy; never overwritten later.
        fs::create_directories(host.cagent_home);
        fs::permissions(host.cagent_home, fs::perms::owner_all);
        write_file(global, build_info::kDefaultConfigYaml, 0644);
        std::cerr << "cagent: wrote the default configuration to " << global.string() << "\n";
      }
    }
    if (layers.empty()) layers.push_back(load_config(read_file(global), global.string(), LayerKind::base));
  }
  const fs::path ws_config = host.workspace / ".cagent.yaml";
  std::error_code ec;
  if (fs::is_regular_file(ws_config, ec)) {
    layers.push_back(load_config(read_file(ws_config), ws_config.string(), LayerKind::workspace));
  }
  layers.push_back(cli.flags);
  return layers;
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

  const std::vector<ConfigLayer> layers = load_layers(cli, host, cli.dry_run || cli.print_config);
  const MergedConfig merged = merge_layers(
      layers, MergeOptions{workspace_trusted(host.cagent_home, host.workspace), trust_hint(host)});
  for (const std::string& w : merged.warnings) io.err << "cagent: " << w << "\n";
  if (cli.print_config) {
    io.out << render_config(merged);
    return 0;
  }
  Prepared p;
  p.config = validate(merged, host.home);
  p.ca = collect_ca_bundle(p.config.ca_certificates, default_system_bundles());

  const std::string session_id = random_hex(6);
  const std::string container = "cagent-" + session_id;
  const fs::path session_path = host.cagent_home / "sessions" / session_id;
  const fs::path log_dir = host.cagent_home / "logs" / ("session-" + session_id);

  const ScanResult scan = scan_workspace(host.workspace, p.config.ignore, p.config.readonly);
  for (const std::string& w : scan.warnings) io.err << "cagent: " << w << "\n";
  p.plan = plan_mounts(scan, host.workspace, session_path);

  RunSpec spec;
  spec.image = host.image;
  spec.container_name = container;
  spec.session_id = session_id;
  spec.tty = host.stdin_tty && host.stdout_tty;
  spec.mounts = p.plan;
  spec.policy_file = session_path / "policy.toml";
  spec.log_dir = log_dir;
  if (!p.ca.empty()) spec.ca_bundle = session_path / "extra-ca.pem";
  spec.extra_args = p.config.extra_args;
  spec.command = cli.command;

  const std::optional<fs::path> context = find_image_context(host.executable);
  ImageRequest image;
  image.image = host.image;
  image.context = context;
  image.build_args = default_build_args();
  image.ca_pem = p.ca.pem;
  image.work_dir = host.cagent_home / "build";
  image.log_dir = host.cagent_home / "logs";
  image.check_for_update = !cli.no_update;

  if (cli.dry_run) {
    if (context) {
      const std::string hash =
          context_hash(*context, context_files(*context), image.build_args, image.ca_pem);
      io.out << "# when " << host.image << " is missing or its " << kHashLabel << " label differs"
             << " (context copied to " << (image.work_dir / "context-XXXX").string() << "):\n"
             << join_quoted(render_build_argv(
                    BuildSpec{host.image, image.work_dir / "context-XXXX", hash, image.build_args}))
             << "\n";
    }
    io.out << "# sysbox-runc adds --runtime sysbox-runc\n" << join_quoted(render_run_argv(spec)) << "\n";
    return 0;
  }

  spec.sysbox = detect_sysbox(runner, host);
  if (!spec.sysbox) {
    const fs::path notice = host.cagent_home / "nested-docker-notice";
    std::error_code ec;
    if (!fs::exists(notice, ec)) {
      io.err << "cagent: nested Docker is unavailable in the cage (no sysbox-runc runtime); "
                "this is said once\n";
      fs::create_directories(host.cagent_home, ec);
      try {
        write_file(notice, "", 0644);
      } catch (const std::exception&) {
      }
    }
  }
  if (!cli.no_update && context && update_check_due(host.cagent_home / "last-update-check")) {
    if (auto msg = check_for_update(runner, *context, std::chrono::seconds(2))) {
      io.err << "cagent: " << *msg << "\n";
    }
  }
  ensure_image(runner, image);

  fs::create_directories(log_dir);
  prune_session_logs(host.cagent_home / "logs", kKeptSessionLogs);
  int status = 0;
  bool signalled = false;
  int first_signal = SIGTERM;  // the first of SIGINT/SIGTERM/SIGHUP cagent received
  {
    SessionDir session(session_path);
    write_file(spec.policy_file, render_policy_toml(p.config), 0644);
    if (spec.ca_bundle) write_file(*spec.ca_bundle, p.ca.pem, 0644);
    if (p.plan.needs_empty_file) write_file(session.path() / kEmptyFileName, "", 0444);
    if (p.plan.needs_empty_dir) {
      fs::create_directory(session.path() / kEmptyDirName);
      fs::permissions(session.path() / kEmptyDirName,
                      fs::perms::owner_read | fs::perms::owner_exec | fs::perms::group_read |
                          fs::perms::group_exec | fs::perms::others_read | fs::perms::others_exec);
    }
    int signals_seen = 0;
    RunOptions quiet;
    quiet.output = RunOptions::Output::discard;
    quiet.merge_stderr = true;
    quiet.timeout = std::chrono::seconds(30);
    status = runner.run_foreground(render_run_argv(spec), [&](int signo) {
      if (!signalled) first_signal = signo;
      signalled = true;
      // First signal: a graceful stop (SIGTERM, then SIGKILL after 3 s);
      // again: kill at once. docker run then returns and we clean up.
      runner.run(++signals_seen == 1
                     ? std::vector<std::string>{"docker", "stop", "--time", "3", container}
                     : std::vector<std::string>{"docker", "kill", container},
                 quiet);
    });
    if (signalled) {
      // --rm removes it, unless docker run died first; leave nothing behind.
      // The daemon's auto-removal is asynchronous (and makes a concurrent
      // "rm -f" fail with "removal in progress"), so wait, bounded, until the
      // name is gone before saying the session stopped.
      runner.run({"docker", "rm", "-f", container}, quiet);
      RunOptions probe = quiet;
      probe.timeout = std::chrono::seconds(5);
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
      while (runner.run({"docker", "container", "inspect", "--format", "{{.Id}}", container}, probe)
                     .status == 0 &&
             std::chrono::steady_clock::now() < deadline) {
        ::poll(nullptr, 0, 100);
      }
    }
  }
  try {
    const std::string summary =
        summarize_blocked(parse_denied_names(read_file(log_dir / "dnsguard.log")));
    if (!summary.empty()) io.err << "cagent: " << summary << "\n";
  } catch (const std::exception&) {
    // No log (the cage never got that far): nothing to summarize.
  }
  if (signalled) {
    io.err << "cagent: session stopped\n";
    // Like a shell reports an interrupted command: 128 + the signal the
    // user sent (130 for Ctrl-C), whatever the container died of.
    return 128 + first_signal;
  }
  if (status == kExitDocker) {
    io.err << "cagent: docker run failed (exit 125; its message is above)\n";
  }
  return status;
}

std::optional<std::string> docker_engine_key() {
  std::string socket = "/var/run/docker.sock";
  if (const char* env = std::getenv("DOCKER_HOST"); env != nullptr && env[0] != '\0') {
    const std::string_view value(env);
    if (value.rfind("unix://", 0) != 0) return std::nullopt;
    socket = std::string(value.substr(7));
  }
  struct stat st {};
  if (::stat(socket.c_str(), &st) != 0 || !S_ISSOCK(st.st_mode)) return std::nullopt;
  return std::to_string(st.st_ino) + ":" + std::to_string(st.st_ctim.tv_sec) + "." +
         std::to_string(st.st_ctim.tv_nsec);
}

}  // namespace cagent::launcher::host
