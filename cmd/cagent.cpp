// cagent — run a command (default: a shell) in the cage. Parses argv, wires
// the host launcher to the real process runner, maps errors to exit codes:
// usage and config errors 2, docker failures 125, anything else 1.
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include "launcher/host/ca_bundle.hpp"
#include "launcher/host/cli.hpp"
#include "launcher/host/config.hpp"
#include "launcher/host/docker_argv.hpp"
#include "launcher/host/image.hpp"
#include "launcher/host/paths.hpp"
#include "launcher/host/process.hpp"
#include "launcher/host/session.hpp"

namespace host = cagent::launcher::host;

int main(int argc, char** argv) {
  try {
    const std::vector<std::string> args(argv + 1, argv + argc);
    const host::CliOptions cli = host::parse_cli(args);
    host::HostContext ctx;
    ctx.home = host::home_directory();
    ctx.cagent_home = host::cagent_home(ctx.home);
    ctx.workspace = std::filesystem::canonical(std::filesystem::current_path());
    ctx.executable = std::filesystem::read_symlink("/proc/self/exe");
    if (const char* image = std::getenv("CAGENT_IMAGE"); image != nullptr && image[0] != '\0') {
      ctx.image = image;
    }
    if (const char* volume = std::getenv("CAGENT_HOME_VOLUME"); volume != nullptr && volume[0] != '\0') {
      if (!host::valid_home_volume_prefix(volume)) {
        throw host::UsageError("CAGENT_HOME_VOLUME must be a volume name prefix ([A-Za-z0-9][A-Za-z0-9_.-]*)");
      }
      ctx.home_volume_prefix = volume;
    }
    ctx.stdin_tty = ::isatty(STDIN_FILENO) == 1;
    ctx.stdout_tty = ::isatty(STDOUT_FILENO) == 1;
    ctx.engine_key = host::docker_engine_key();
    host::PosixProcessRunner runner;
    return host::run_cagent(cli, ctx, runner, host::SessionIo{std::cout, std::cerr, std::cin});
  } catch (const host::UsageError& e) {
    std::cerr << "cagent: " << e.what() << "\n";
    return host::kExitUsage;
  } catch (const host::ConfigError& e) {
    std::cerr << "cagent: " << e.what() << "\n";
    return host::kExitUsage;
  } catch (const host::CaError& e) {
    std::cerr << "cagent: " << e.what() << "\n";
    return host::kExitUsage;
  } catch (const host::DockerError& e) {
    std::cerr << "cagent: " << e.what() << "\n";
    return host::kExitDocker;
  } catch (const std::exception& e) {
    std::cerr << "cagent: " << e.what() << "\n";
    return 1;
  }
}
