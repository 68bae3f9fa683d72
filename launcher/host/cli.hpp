#pragma once
// Command line → CliOptions (no side effects). Both "--flag value" and
// "--flag=value" work for long options, "-d value" and "-dvalue" for short
// ones. Everything after "--" is the command. Usage errors exit 2.
//
// One table describes every option: option_table() drives this parser,
// usage_text() (--help), and the man page and shell completions that
// cli_docs.hpp renders at build time. Adding an option means adding a row;
// nothing else can forget it. The subcommands' own options (allow, deny,
// ps, log) are rows too — their parser is parse_live_command() in live.cpp,
// and a unit test holds the two in agreement.

#include <filesystem>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
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

// ---- the option table --------------------------------------------------------

// The command lines an option belongs to (a bit set): the ordinary one
// (`cagent [options] [-- command]`) and the subcommands.
enum Command : unsigned {
  kMain = 1U << 0,
  kAllow = 1U << 1,
  kDeny = 1U << 2,
  kPs = 1U << 3,
  kLog = 1U << 4,
  kCheck = 1U << 5,
  kKube = 1U << 6,
  kWatch = 1U << 7,
};

enum class ArgKind {
  none,      // a switch
  required,  // --name VALUE, --name=VALUE, -x VALUE, -xVALUE
  // --name=VALUE, or the next word when accepts_next() takes it
  // (`--reset civd`), or nothing (the default)
  optional,
};

// What a shell offers for an option's value.
enum class Complete { nothing, files, words, files_and_words };

struct OptionSpec {
  std::string_view name;  // long name, without "--"
  char short_name = 0;    // 0: none
  ArgKind arg = ArgKind::none;
  std::string_view metavar = {};  // "NAME", "FILE", …: what --help and the man page call the value
  std::string_view help = {};     // one line: --help, the man page, the completions
  std::string_view detail = {};   // more for the man page ("" for none)
  std::string_view example = {};  // a whole command line ("" for none)
  unsigned commands = kMain;      // Command bits
  bool repeatable = false;        // each use adds a value
  Complete complete = Complete::nothing;
  std::string_view words = {};  // space-separated values a shell offers (Complete::words…)
  // The main command line's effect (subcommand options: nullptr, live.cpp
  // parses them). `value` is nullopt for a switch or an omitted optional
  // value; `pos` is where the value stood.
  void (*apply)(CliOptions& out, const std::optional<std::string>& value,
                const SourcePos& pos) = nullptr;
  // ArgKind::optional: may the next word be the value?
  bool (*accepts_next)(std::string_view word) = nullptr;
};

struct SubcommandSpec {
  std::string_view name;  // the first word: "allow"
  Command id;
  std::string_view operands;  // "NAME…", "[SESSION]"
  std::string_view help;      // one line
  std::string_view example;
};

struct EnvironmentSpec {
  std::string_view name;
  std::string_view help;
};

std::span<const OptionSpec> option_table();
std::span<const SubcommandSpec> subcommand_table();
std::span<const EnvironmentSpec> environment_table();

// What every rendering says about the command as a whole.
inline constexpr std::string_view kSummary = "run an AI coding agent in a locked-down container";
inline constexpr std::string_view kDescription =
    "Runs the command (default: a login shell) in a locked-down container with the current "
    "directory at /workspace: DNS and connections only to allowlisted names, ignored paths "
    "hidden, read-only paths mounted read-only, no capabilities.";
inline constexpr std::string_view kExitStatus =
    "the command's; 125 when docker fails or the Docker engine goes away during the session; "
    "2 for usage and configuration errors; "
    "128 + the signal when the session is interrupted";
inline constexpr std::string_view kSubcommandNote =
    "Subcommands are words before any --: `cagent -- allow` runs a command named allow in a cage.";

// "--domain NAME", "--reset[=civd]", "--help".
std::string long_form(const OptionSpec& o);

CliOptions parse_cli(const std::vector<std::string>& args);

// --help, from the tables (cli_docs.cpp, with the other renderings).
std::string usage_text();

}  // namespace cagent::launcher::host
