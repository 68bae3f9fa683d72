// cagent-docs — writes cagent's man page or a shell completion, rendered from
// the option table (launcher/host/cli_docs.hpp). Run at build time by
// cmd/cagent-docs.cmake; never installed.
//   cagent-docs man|bash|zsh OUTPUT
#include <fstream>
#include <iostream>
#include <string>

#include "launcher/host/cli_docs.hpp"

namespace host = cagent::launcher::host;

int main(int argc, char** argv) {
  const std::string kind = argc == 3 ? argv[1] : "";
  std::string text;
  if (kind == "man") {
    text = host::render_man_page();
  } else if (kind == "bash") {
    text = host::render_bash_completion();
  } else if (kind == "zsh") {
    text = host::render_zsh_completion();
  } else {
    std::cerr << "usage: cagent-docs man|bash|zsh OUTPUT\n";
    return 2;
  }
  std::ofstream out(argv[2], std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  if (!out) {
    std::cerr << "cagent-docs: cannot write " << argv[2] << "\n";
    return 1;
  }
  return 0;
}
