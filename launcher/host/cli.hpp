#pragma once
// Command line → CliOptions (no side effects). Both "--flag value" and
// "--flag=value" work for long options, "-d value" and "-dvalue" for short
// ones. Everything after "--" is the command. Usage errors exit 2.

#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "launcher/host/config.hpp"

namespace cagent::launcher::host {

struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct CliOptions {
  bool help = false;
  bool version = false;
  bool no_update = false;
  bool print_config = false;
  bool dry_run = false;
  bool no_global_config = false;
  bool yes = false;
  // The user's word on the host's command line: approve the workspace
  // .cagent.yaml's exact current content for this directory, and use it
  // (workspace_approval.hpp).
  bool accept_workspace_config = false;
  std::optional<std::string> reset;  // subset of "civd"
  std::optional<std::filesystem::path> config_file;
  ConfigLayer flags;  // -d, -i, -r, --arg, --ca-cert: the last config layer
  std::vector<std::string> command;
};

// Default letters of a bare --reset: containers and image (a clean rebuild);
// --reset-all adds the volume and ~/.cagent.
inline constexpr const char* kDefaultReset = "ci";

CliOptions parse_cli(const std::vector<std::string>& args);

std::string usage_text();

}  // namespace cagent::launcher::host
