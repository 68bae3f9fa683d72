#include "launcher/host/paths.hpp"

#include <pwd.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <system_error>

#include "dnsguard/atomic_file.hpp"
#include "launcher/host/text.hpp"
#include "dnsguard/posix.hpp"

namespace cagent::launcher::host {

std::string expand_home(std::string_view text, const std::filesystem::path& home) {
  for (std::string_view prefix : {std::string_view("~"), std::string_view("$HOME")}) {
    if (text == prefix) return home.string();
    if (text.size() > prefix.size() && text.substr(0, prefix.size()) == prefix &&
        text[prefix.size()] == '/') {
      return home.string() + std::string(text.substr(prefix.size()));
    }
  }
  return std::string(text);
}

std::filesystem::path home_directory(std::string_view home_env) {
  if (home_env.starts_with('/')) return home_env;
  if (const passwd* pw = ::getpwuid(::getuid()); pw != nullptr && pw->pw_dir != nullptr &&
                                                 pw->pw_dir[0] == '/') {
    return pw->pw_dir;
  }
  throw std::runtime_error("cannot find the home directory: HOME is unset and passwd has none");
}

std::filesystem::path cagent_home(const std::filesystem::path& home, std::string_view cagent_home_env) {
  if (!cagent_home_env.empty()) return std::filesystem::absolute(cagent_home_env);
  return home / ".cagent";
}

namespace {
// Whether `inner` is `outer` or lies below it (canonical paths, by components).
bool at_or_below(const std::filesystem::path& inner, const std::filesystem::path& outer) {
  auto i = inner.begin();
  for (auto o = outer.begin(); o != outer.end(); ++o, ++i) {
    if (o->empty()) continue;  // a trailing separator
    if (i == inner.end() || *i != *o) return false;
  }
  return true;
}
}  // namespace

std::optional<std::string> forbidden_workspace(const std::filesystem::path& workspace,
                                               const std::filesystem::path& home,
                                               const std::filesystem::path& cagent_home) {
  const std::string why = "cannot run in " + printable(workspace.string()) + ": ";
  const std::string fix = "; run cagent in a project directory";
  if (at_or_below(home, workspace)) {
    return why + "it holds your home directory " + printable(home.string()) +
           ", and the agent writes the whole workspace: your shell's rc files, ~/.ssh and git's config run on the "
           "host as you" + fix;
  }
  if (at_or_below(cagent_home, workspace) || at_or_below(workspace, cagent_home)) {
    return why + "it is, holds or lies in cagent's own directory " + printable(cagent_home.string()) +
           " (the global config and your approvals, which the agent must not write)" + fix;
  }
  return std::nullopt;
}

std::vector<std::string> launcher_in_workspace(const std::filesystem::path& workspace,
                                               const std::optional<std::filesystem::path>& image_context,
                                               const std::filesystem::path& executable) {
  std::vector<std::string> warnings;
  if (image_context && (at_or_below(*image_context, workspace) || at_or_below(workspace, *image_context))) {
    warnings.push_back("the workspace shares files with the cage image's build context " +
                       printable(image_context->string()) +
                       ": what the agent changes there goes into the next image, firewall included; review it "
                       "before the next session");
  }
  if (at_or_below(executable, workspace)) {
    warnings.push_back("the workspace holds the cagent you ran (" + printable(executable.string()) +
                       "): the agent can replace it; run an installed cagent, or review it before the next run");
  }
  return warnings;
}

std::string random_hex(std::size_t bytes) {
  std::string raw(bytes, '\0');
  std::size_t got = 0;
  while (got < bytes) {
    const ssize_t n = ::getrandom(raw.data() + got, bytes - got, 0);
    if (n < 0) {
      const int saved = errno;
      if (saved == EINTR) continue;
      throw std::runtime_error(std::string("getrandom failed: ") + std::strerror(saved));
    }
    got += static_cast<std::size_t>(n);
  }
  static constexpr std::array<char, 16> kHex = {'0', '1', '2', '3', '4', '5', '6', '7',
                                                '8', '9', 'a', 'b', 'c', 'd', 'e', 'f'};
  std::string out;
  for (char c : raw) {
    const auto b = static_cast<unsigned char>(c);
    out.push_back(kHex[b >> 4]);
    out.push_back(kHex[b & 0x0f]);
  }
  return out;
}

std::string shell_quote(std::string_view word) {
  if (!word.empty() &&
      word.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                             "@%+=:,./-_") == std::string_view::npos) {
    return std::string(word);
  }
  if (needs_escaping(word)) {
    // Security: the word may be a workspace path the agent named (--dry-run
    // prints the whole docker argv). Inside '...' a newline, ESC or a C1
    // control would reach the terminal raw, so such words use bash's $'...'
    // form: every byte that is not printable ASCII becomes \xNN, which bash
    // turns back into exactly the same bytes.
    static constexpr std::array<char, 16> kHexDigits = {'0', '1', '2', '3', '4', '5', '6', '7',
                                                        '8', '9', 'a', 'b', 'c', 'd', 'e', 'f'};
    std::string out = "$'";
    for (char c : word) {
      const auto b = static_cast<unsigned char>(c);
      if (c == '\\' || c == '\'') {
        out.push_back('\\');
        out.push_back(c);
      } else if (b < 0x20 || b >= 0x7f) {
        out += "\\x";
        out.push_back(kHexDigits[b >> 4]);
        out.push_back(kHexDigits[b & 0x0f]);
      } else {
        out.push_back(c);
      }
    }
    out += "'";
    return out;
  }
  std::string out = "'";
  for (char c : word) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out.push_back(c);
    }
  }
  out += "'";
  return out;
}

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    const int saved = errno;
    throw std::runtime_error("cannot read " + path.string() + ": " + std::strerror(saved));
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) throw std::runtime_error("error reading " + path.string());
  return ss.str();
}

void write_file(const std::filesystem::path& path, std::string_view content, unsigned mode) {
  dnsguard::ReplaceOptions options;
  // Whatever the umask: placeholders and the policy must be readable by
  // container root.
  options.mode = static_cast<mode_t>(mode);
  // The session's files live as long as the session; the caches and
  // markers are remade when lost.
  options.sync = false;
  try {
    dnsguard::write_file_atomically(path, content, options);
  } catch (const std::system_error& e) {
    throw std::runtime_error("cannot write " + path.string() + ": " + e.code().message());
  }
}

}  // namespace cagent::launcher::host
