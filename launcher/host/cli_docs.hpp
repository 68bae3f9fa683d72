#pragma once
// The option table (cli.hpp) rendered for people and shells. Pure text, no
// I/O: --help is usage_text() (declared in cli.hpp, defined here); the man
// page and the two completion scripts are written at build time by
// cagent-docs (cmd/cagent-docs.cpp) and installed with the package. All
// four read the same rows, so none of them can name an option the parser
// lacks or miss one it has.

#include <string>

#include "launcher/host/cli.hpp"

namespace cagent::launcher::host {

// "cagent log [SESSION] [-f] [--json]".
std::string synopsis(const SubcommandSpec& s);

// cagent(1), groff man macros, for this build's version.
std::string render_man_page();

// For share/bash-completion/completions/cagent: defines _cagent and
// registers it for cagent. Works without the bash-completion package's
// helpers, and uses _command_offset for the command after -- when present.
std::string render_bash_completion();

// For share/zsh/vendor-completions/_cagent (#compdef cagent).
std::string render_zsh_completion();

}  // namespace cagent::launcher::host
