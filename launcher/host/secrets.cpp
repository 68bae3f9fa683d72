#include "launcher/host/secrets.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>

#include "dnsguard/allow_list.hpp"
#include "dnsguard/contracts.hpp"
#include "launcher/host/process.hpp"

namespace cagent::launcher::host {
namespace {

SourcePos pos_at(const std::string& origin, const YAML::Mark& mark) {
  return SourcePos{origin, mark.line >= 0 ? mark.line + 1 : 0, mark.column >= 0 ? mark.column + 1 : 0};
}

std::string scalar(const YAML::Node& node, const std::string& key, const std::string& origin) {
  if (!node.IsScalar()) throw ConfigError(pos_at(origin, node.Mark()), "secrets: '" + key + "' must be a string");
  return node.Scalar();
}

std::vector<std::string> strings(const YAML::Node& node, const std::string& key, const std::string& origin) {
  if (!node.IsSequence()) throw ConfigError(pos_at(origin, node.Mark()), "secrets: '" + key + "' must be a list of strings");
  std::vector<std::string> out;
  for (const auto& item : node) out.push_back(scalar(item, key, origin));
  return out;
}

bool is_env_name(std::string_view s) {
  if (s.empty() || (s.front() >= '0' && s.front() <= '9')) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
  });
}

bool is_secret_name(std::string_view s) {
  return !s.empty() && s.size() <= 32 && std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
  });
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

std::string random_hex(std::size_t bytes) {
  std::ifstream urandom("/dev/urandom", std::ios::binary);
  std::string raw(bytes, '\0');
  if (!urandom.read(raw.data(), static_cast<std::streamsize>(bytes))) throw std::runtime_error("cannot read /dev/urandom");
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (const char ch : raw) {
    const auto c = static_cast<unsigned char>(ch);
    out.push_back(digits[c >> 4]);
    out.push_back(digits[c & 15]);
  }
  return out;
}

// One line of printable ASCII without spaces at either end: what an HTTP
// header value can carry unchanged.
bool header_safe(std::string_view v) {
  return !v.empty() && v.front() != ' ' && v.back() != ' ' &&
         std::all_of(v.begin(), v.end(), [](char c) { return c >= 0x20 && c < 0x7f; });
}

std::string source_of(const SecretSpec& s) {
  if (!s.from_env.empty()) return "from_env " + s.from_env;
  if (!s.from_file.empty()) return "from_file " + s.from_file;
  std::string cmd;
  for (const auto& a : s.from_command) cmd += (cmd.empty() ? "" : " ") + a;
  return "from_command [" + cmd + "]";
}

// cagent-secret-NAME-<32 random hex digits>: recognisable, new each session.
std::string placeholder_for(const SecretSpec& s) { return "cagent-secret-" + s.name + "-" + random_hex(16); }

}  // namespace

std::vector<SessionSecret> placeholder_secrets(const std::vector<SecretSpec>& specs) {
  std::vector<SessionSecret> out;
  for (const SecretSpec& s : specs) out.push_back(SessionSecret{s, placeholder_for(s), {}});
  return out;
}

std::optional<SecretSpec> secret_preset(std::string_view name) {
  if (name == "anthropic") return SecretSpec{"anthropic", "ANTHROPIC_API_KEY", "ANTHROPIC_API_KEY", {}, {}, {"api.anthropic.com"}, false, {}};
  if (name == "openai") return SecretSpec{"openai", "OPENAI_API_KEY", "OPENAI_API_KEY", {}, {}, {"api.openai.com"}, false, {}};
  // gh reads GH_TOKEN; git gets it through the credential helper, as the
  // password of x-access-token (what GitHub takes for a token over HTTPS).
  if (name == "github") return SecretSpec{"github", "GH_TOKEN", "GH_TOKEN", {}, {}, {"api.github.com", "github.com"}, true, {}};
  return std::nullopt;
}

std::vector<SecretSpec> read_secret_specs(const YAML::Node& value, const std::string& origin) {
  if (!value.IsSequence()) {
    throw ConfigError(pos_at(origin, value.Mark()), "'secrets' must be a list of preset names or mappings");
  }
  std::vector<SecretSpec> out;
  for (const auto& item : value) {
    const SourcePos pos = pos_at(origin, item.Mark());
    if (item.IsScalar()) {
      auto preset = secret_preset(item.Scalar());
      if (!preset) {
        throw ConfigError(pos, "secrets: unknown preset '" + item.Scalar() +
                                   "' (presets: anthropic, openai, github; or a mapping with name, env, from_env, hosts)");
      }
      preset->pos = pos;
      out.push_back(*preset);
      continue;
    }
    if (!item.IsMap()) throw ConfigError(pos, "secrets: an entry is a preset name or a mapping");
    const YAML::Node name = item["name"];
    if (!name) throw ConfigError(pos, "secrets: an entry needs a 'name'");
    SecretSpec spec = secret_preset(scalar(name, "name", origin)).value_or(SecretSpec{});
    spec.name = scalar(name, "name", origin);
    spec.pos = pos;
    bool source_given = false;
    for (const auto& kv : item) {
      const std::string key = scalar(kv.first, "key", origin);
      const YAML::Node& v = kv.second;
      if (key == "name") continue;
      if (key == "env") {
        spec.env = scalar(v, key, origin);
      } else if (key == "from_env" || key == "from_file" || key == "from_command") {
        if (!source_given) spec.from_env.clear(), spec.from_file.clear(), spec.from_command.clear();
        if (source_given) {
          throw ConfigError(pos_at(origin, kv.first.Mark()),
                            "secrets: " + spec.name + ": only one of from_env, from_file, from_command");
        }
        source_given = true;
        if (key == "from_env") spec.from_env = scalar(v, key, origin);
        else if (key == "from_file") spec.from_file = scalar(v, key, origin);
        else spec.from_command = strings(v, key, origin);
      } else if (key == "hosts") {
        spec.hosts = strings(v, key, origin);
      } else if (key == "git") {
        const std::string b = scalar(v, key, origin);
        if (b != "true" && b != "false") throw ConfigError(pos_at(origin, v.Mark()), "secrets: 'git' must be true or false");
        spec.git = b == "true";
      } else {
        throw ConfigError(pos_at(origin, kv.first.Mark()),
                          "secrets: unknown key '" + key + "' (known: name, env, from_env, from_file, from_command, hosts, git)");
      }
    }
    out.push_back(std::move(spec));
  }
  return out;
}

std::vector<SecretSpec> resolve_secret_specs(const std::vector<SecretSpec>& specs,
                                             const std::vector<std::string>& domains, bool connection_gate) {
  if (specs.empty()) return {};
  if (!connection_gate) {
    throw ConfigError(specs.front().pos, "secrets need the connection gate (connection_gate: false turns it off)");
  }
  const dnsguard::AllowList allowed(domains);
  std::set<std::string> names, envs;
  std::vector<SecretSpec> out;
  for (SecretSpec s : specs) {
    const std::string who = "secret '" + s.name + "'";
    if (!is_secret_name(s.name)) throw ConfigError(s.pos, "secrets: name '" + s.name + "' must be 1-32 of a-z 0-9 -");
    if (!names.insert(s.name).second) throw ConfigError(s.pos, who + " is named twice");
    if (!is_env_name(s.env)) throw ConfigError(s.pos, who + ": 'env' must be a variable name, not '" + s.env + "'");
    if (!envs.insert(s.env).second) throw ConfigError(s.pos, who + ": another secret already uses " + s.env);
    const int sources = !s.from_env.empty() + !s.from_file.empty() + !s.from_command.empty();
    if (sources != 1) throw ConfigError(s.pos, who + " needs exactly one of from_env, from_file, from_command");
    if (s.hosts.empty()) throw ConfigError(s.pos, who + " needs 'hosts' (the only names it is ever sent to)");
    for (std::string& h : s.hosts) {
      h = lower(h);
      if (h.find('*') != std::string::npos) throw ConfigError(s.pos, who + ": host '" + h + "' is a pattern; name hosts exactly");
      if (!allowed.allows(h)) {
        throw ConfigError(s.pos, who + ": host " + h + " is not in domains (add it: the cage must reach it)");
      }
    }
    out.push_back(std::move(s));
  }
  return out;
}

CommandOutput command_output() {
  return [](const std::vector<std::string>& argv, std::string& error) -> std::optional<std::string> {
    PosixProcessRunner runner;
    RunOptions options;
    options.output = RunOptions::Output::capture;
    options.timeout = std::chrono::seconds(30);
    const RunResult r = runner.run(argv, options);
    if (r.timed_out) {
      error = "the command did not finish within 30 s";
      return std::nullopt;
    }
    if (r.status != 0) {
      error = "the command exited with status " + std::to_string(r.status);
      return std::nullopt;
    }
    return r.output;
  };
}

std::vector<SessionSecret> load_secret_values(const std::vector<SecretSpec>& specs, const CommandOutput& run,
                                              const std::function<const char*(const char*)>& getenv_fn) {
  std::vector<SessionSecret> out;
  for (const SecretSpec& s : specs) {
    const std::string who = "secret '" + s.name + "' (" + source_of(s) + ")";
    std::string value;
    if (!s.from_env.empty()) {
      const char* v = getenv_fn(s.from_env.c_str());
      if (v == nullptr || *v == '\0') throw ConfigError(s.pos, who + ": " + s.from_env + " is not set in cagent's environment");
      value = v;
    } else if (!s.from_file.empty()) {
      std::ifstream in(s.from_file, std::ios::binary);
      if (!in) throw ConfigError(s.pos, who + ": cannot read " + s.from_file + ": " + std::strerror(errno));
      std::ostringstream text;
      text << in.rdbuf();
      value = text.str();
    } else {
      std::string error;
      const auto output = run(s.from_command, error);
      if (!output) throw ConfigError(s.pos, who + ": " + error);
      value = *output;
    }
    // One trailing newline is how files and commands end their output.
    if (!value.empty() && value.back() == '\n') value.pop_back();
    if (!value.empty() && value.back() == '\r') value.pop_back();
    if (!header_safe(value)) {
      throw ConfigError(s.pos, who + ": the value is empty or not one line of printable ASCII");
    }
    out.push_back(SessionSecret{s, placeholder_for(s), std::move(value)});
  }
  return out;
}

std::vector<std::string> secret_environment(const std::vector<SessionSecret>& secrets) {
  std::vector<std::string> out;
  std::vector<std::string> git;
  for (const SessionSecret& s : secrets) {
    out.push_back(s.spec.env + "=" + s.placeholder);
    if (!s.spec.git) continue;
    for (const std::string& host : s.spec.hosts) {
      // A helper that hands git the placeholder; the relay makes it the value.
      git.push_back("credential.https://" + host + ".helper");
      git.push_back("!f() { test \"$1\" = get && echo username=x-access-token && echo \"password=$" + s.spec.env +
                    "\"; }; f");
    }
  }
  if (!git.empty()) {
    out.push_back("GIT_CONFIG_COUNT=" + std::to_string(git.size() / 2));
    for (std::size_t i = 0; i < git.size() / 2; ++i) {
      out.push_back("GIT_CONFIG_KEY_" + std::to_string(i) + "=" + git[2 * i]);
      out.push_back("GIT_CONFIG_VALUE_" + std::to_string(i) + "=" + git[2 * i + 1]);
    }
  }
  return out;
}

std::vector<std::string> secret_hosts(const std::vector<SessionSecret>& secrets) {
  std::set<std::string> hosts;
  for (const SessionSecret& s : secrets) hosts.insert(s.spec.hosts.begin(), s.spec.hosts.end());
  return {hosts.begin(), hosts.end()};
}

std::string secrets_document(const std::vector<SessionSecret>& secrets) {
  dnsguard::SecretsDocument doc;
  for (const SessionSecret& s : secrets) {
    doc.secrets.push_back(dnsguard::SecretEntry{s.spec.name, s.placeholder, s.value, s.spec.hosts});
  }
  return dnsguard::write_secrets(doc);
}

SecretsServer::SecretsServer(std::filesystem::path socket, std::string document)
    : socket_(std::move(socket)), document_(std::move(document)) {
  listener_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listener_ < 0) throw std::runtime_error(std::string("secrets socket: ") + std::strerror(errno));
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  if (socket_.native().size() >= sizeof address.sun_path) {
    ::close(listener_);
    throw std::runtime_error("secrets socket: path too long: " + socket_.string());
  }
  std::memcpy(address.sun_path, socket_.c_str(), socket_.native().size() + 1);
  const mode_t old = ::umask(077);
  const int bound = ::bind(listener_, reinterpret_cast<const sockaddr*>(&address), sizeof address);
  ::umask(old);
  if (bound != 0 || ::listen(listener_, 1) != 0 || ::pipe2(stop_, O_CLOEXEC) != 0) {
    const std::string why = std::strerror(errno);
    ::close(listener_);
    throw std::runtime_error("secrets socket " + socket_.string() + ": " + why);
  }
  thread_ = std::thread([this] {
    pollfd fds[2] = {{listener_, POLLIN, 0}, {stop_[0], POLLIN, 0}};
    while (::poll(fds, 2, -1) < 0 && errno == EINTR) {
    }
    if (!(fds[0].revents & POLLIN)) return;
    const int peer = ::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
    // One connection only: whoever comes later (the agent, once it runs)
    // finds nobody listening.
    ::close(listener_);
    listener_ = -1;
    ::unlink(socket_.c_str());
    if (peer < 0) return;
    std::string_view left = document_;
    while (!left.empty()) {
      const ssize_t n = ::send(peer, left.data(), left.size(), MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      left.remove_prefix(static_cast<std::size_t>(n));
    }
    served_ = left.empty();  // before the close the reader waits for
    ::close(peer);
    // The value is not needed any more.
    std::fill(document_.begin(), document_.end(), '\0');
  });
}

SecretsServer::~SecretsServer() {
  if (stop_[1] >= 0) {
    [[maybe_unused]] const ssize_t n = ::write(stop_[1], "x", 1);
  }
  if (thread_.joinable()) thread_.join();
  if (listener_ >= 0) {
    ::close(listener_);
    ::unlink(socket_.c_str());
  }
  for (int fd : stop_) {
    if (fd >= 0) ::close(fd);
  }
  std::fill(document_.begin(), document_.end(), '\0');
}

bool SecretsServer::served() const noexcept { return served_; }

}  // namespace cagent::launcher::host
