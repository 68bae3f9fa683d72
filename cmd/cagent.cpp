// cagent — run a command (default: a shell) in the cage. Parses argv, wires
// the host launcher to the real process runner, maps errors to exit codes:
// usage and config errors 2, docker failures 125, anything else 1.
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "launcher/host/ca_bundle.hpp"
#include "launcher/host/cli.hpp"
#include "launcher/host/config.hpp"
#include "launcher/host/docker_argv.hpp"
#include "launcher/host/engine.hpp"
#include "launcher/host/file_identity.hpp"
#include "launcher/host/image.hpp"
#include "launcher/host/paths.hpp"
#include "launcher/host/process.hpp"
#include "launcher/host/live.hpp"
#include "launcher/host/session.hpp"

namespace host = cagent::launcher::host;

namespace {

// Usage and config errors 2, docker failures 125, anything else 1.
int exit_status_for(const std::exception& e) {
  if (dynamic_cast<const host::UsageError*>(&e) != nullptr || dynamic_cast<const host::ConfigError*>(&e) != nullptr ||
      dynamic_cast<const host::CaError*>(&e) != nullptr) {
    return host::kExitUsage;
  }
  if (dynamic_cast<const host::DockerError*>(&e) != nullptr) return host::kExitDocker;
  return 1;
}

// The docker CLI's chosen context, from its config.json ($DOCKER_CONFIG or
// ~/.docker); "" when there is none to read.
template <typename Env>
std::string docker_current_context(const Env& env, const std::filesystem::path& home) {
  const std::filesystem::path dir = env("DOCKER_CONFIG").value_or((home / ".docker").string());
  try {
    return host::current_context_of(host::read_file(dir / "config.json"));
  } catch (const std::exception&) {
    return "";
  }
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const std::vector<std::string> args(argv + 1, argv + argc);
    // `cagent allow|deny …` (words before any --) or the ordinary command line.
    const std::optional<host::LiveCommand> live = host::parse_live_command(args);
    const host::CliOptions cli = live ? host::CliOptions{} : host::parse_cli(args);
    // The environment is read here and nowhere else: the library gets values.
    const auto env = [](const char* name) -> std::optional<std::string> {
      const char* value = std::getenv(name);
      return value == nullptr ? std::nullopt : std::optional<std::string>(value);
    };
    const auto env_or_empty = [&](const char* name) { return env(name).value_or(""); };
    host::HostContext ctx;
    ctx.home = host::home_directory(env_or_empty("HOME"));
    ctx.cagent_home = host::cagent_home(ctx.home, env_or_empty("CAGENT_HOME"));
    ctx.workspace = std::filesystem::canonical(std::filesystem::current_path());
    ctx.workspace_identity = host::file_identity(ctx.workspace);
    ctx.executable = std::filesystem::read_symlink("/proc/self/exe");
    if (const std::string image = env_or_empty("CAGENT_IMAGE"); !image.empty()) ctx.image = image;
    if (const std::string volume = env_or_empty("CAGENT_HOME_VOLUME"); !volume.empty()) {
      if (!host::valid_home_volume_prefix(volume)) {
        throw host::UsageError("CAGENT_HOME_VOLUME must be a volume name prefix ([A-Za-z0-9][A-Za-z0-9_.-]*)");
      }
      ctx.home_volume_prefix = volume;
    }
    if (const std::string context = env_or_empty("CAGENT_CONTEXT"); !context.empty()) ctx.image_context = context;
    ctx.build_args = host::default_build_args(env("CAGENT_BASE_IMAGE"), env("CAGENT_NPM_PACKAGES"));
    ctx.stdin_tty = ::isatty(STDIN_FILENO) == 1;
    ctx.stdout_tty = ::isatty(STDOUT_FILENO) == 1;
    ctx.engine_socket = host::local_engine_socket(
        {env_or_empty("DOCKER_HOST"), env_or_empty("DOCKER_CONTEXT"), docker_current_context(env, ctx.home)});
    if (ctx.engine_socket) ctx.engine_key = host::docker_engine_key(*ctx.engine_socket);
    host::PosixProcessRunner runner;
    if (live) return host::run_live(*live, ctx, runner, host::SessionIo{std::cout, std::cerr, std::cin});
    return host::run_cagent(cli, ctx, runner, host::SessionIo{std::cout, std::cerr, std::cin});
  } catch (const std::exception& e) {
    std::cerr << "cagent: " << e.what() << "\n";
    return exit_status_for(e);
  }
}
