#pragma once
// cage-init's command line → Options (plan.hpp). Pure: no I/O, no exit; the
// main prints and maps the outcome to an exit status.
//
//   cage-init [--mode cage|guard|dnsguard|probe|agent]
//             [--policy FILE] [--user NAME] [--dnsguard-user NAME] [--dnsguard PATH]
//             [--ca-bundle FILE] [--owner SOCKET] [--secrets SOCKET] [--relay PATH]
//             [--workspace DIR] [--runtime-dir DIR]
//             [--ready-timeout MS]
//             [--nested-docker DOCKERD [--nested-socket-dir DIR] [--nested-data-root DIR]]
//             [-- CMD [ARGS...]]

#include <span>
#include <string>

#include "launcher/cage/plan.hpp"

namespace cagent::cage {

// The usage text (ends with a newline).
const char* cage_init_usage() noexcept;

struct CommandLine {
  enum class Action : unsigned char { run, help, usage_error };
  Action action = Action::run;
  Options options;    // for run: defaults overridden by the flags, command after "--"
  std::string error;  // for usage_error: one line, what was wrong
};

// `args`: argv without the program name. Every option takes a value; the
// first "--" ends the options and everything after it is the command
// (nothing: the agent's login shell). -h/--help anywhere before "--" wins
// over later errors, so asking for help never ends in a usage error about
// the rest of the line.
CommandLine parse_cage_init_args(std::span<const std::string> args);

}  // namespace cagent::cage
