#pragma once
// cagent's configuration, in stages that each have their own type:
//
//   YAML text ──load_config()──▶ ConfigLayer        (one file, positions kept)
//   layers   ──merge_layers()──▶ MergedConfig       (lists appended, trust applied)
//   merged   ──validate()─────▶ Config              (every value typed and
//                                                     checked once: patterns,
//                                                     domains, resolvers,
//                                                     published ports; ~ expanded)
//
// Layers, in order: the base (the global ~/.cagent/config.yaml, or -c FILE,
// or with --no-global-config the embedded default), then the workspace's
// .cagent.yaml, then the command-line flags. Every error names
// file:line:column (flags: "command line:argument N").

#include <cstdint>
#include <filesystem>
#include <stdexcept>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "dnsguard/ip.hpp"
#include "dnsguard/policy.hpp"
#include "launcher/host/pattern.hpp"

namespace cagent::launcher::host {

struct SourcePos {
  std::string file;
  int line = 0;    // 1-based; 0 = unknown
  int column = 0;  // 1-based
  std::string str() const;
};

// A configuration error, already formatted as "where: what".
struct ConfigError : std::runtime_error {
  ConfigError(const SourcePos& pos, const std::string& what);
};

struct Entry {
  std::string value;
  SourcePos pos;
};

enum class LayerKind { base, workspace, flags };

// One entry of `secrets:` (secrets.hpp has the whole story).
struct SecretSpec {
  std::string name;                       // shown in logs, never the value
  std::string env;                        // the agent's variable
  std::string from_env;                   // one source of three
  std::string from_file;
  std::vector<std::string> from_command;
  std::vector<std::string> hosts;         // exact names, lower case
  bool git = false;                       // git's credential helper for these hosts (Basic)
  SourcePos pos;
};


// Every key's entries, each with where it came from: one layer's, and the
// merged result's.
struct ConfigEntries {
  std::vector<Entry> ignore;
  std::vector<Entry> readonly;
  std::vector<Entry> domains;
  std::vector<Entry> extra_args;
  std::vector<Entry> dns_resolvers;
  std::vector<Entry> ca_certificates;
  std::vector<Entry> image_packages;     // extra Debian packages for the image
  std::optional<Entry> connection_gate;  // "true" / "false"; merged: the last trusted layer's
  std::vector<SecretSpec> secrets;       // trusted layers only
  std::optional<Entry> learn;            // "true" / "false"; merged: the last layer's but a workspace's
  std::optional<Entry> ask;              // "true" / "false"; like learn, never a workspace's
  std::optional<Entry> ask_timeout;      // seconds (checked in validate); like learn
};

struct ConfigLayer : ConfigEntries {
  LayerKind kind = LayerKind::base;
  std::string origin;  // file path, "<built-in default>" or "command line"
};

// The keys a config file may have; anything else is an error.
inline constexpr std::string_view kConfigKeys[] = {"ignore",        "readonly",        "domains",        "extra_args",
                                                   "dns_resolvers", "ca_certificates", "connection_gate",
                                                   "image_packages", "secrets", "learn",
                                                   "ask",           "ask_timeout"};

// Parses one YAML document. An empty file is an empty layer. Throws ConfigError.
ConfigLayer load_config(std::string_view yaml_text, const std::string& origin, LayerKind kind);

struct MergeOptions {
  // A workspace .cagent.yaml may carry extra_args that escape the cage
  // (-v /:/host, --privileged) and dns_resolvers / ca_certificates that move
  // its trust anchors: all three are used only for trusted workspaces.
  bool workspace_trusted = false;
  std::string trust_hint;  // the command that trusts this workspace, for the warning
};

struct MergedConfig : ConfigEntries {
  std::vector<std::string> warnings;  // printed once by the caller
};

MergedConfig merge_layers(const std::vector<ConfigLayer>& layers, const MergeOptions& options);

// A CA source after expansion: a file or directory, or the host's system bundle.
struct CaSource {
  std::filesystem::path path;  // empty when system
  bool system = false;
  SourcePos pos;
};

struct Config {
  std::vector<Pattern> ignore;
  std::vector<Pattern> readonly;
  std::vector<std::string> domains;        // dnsguard::normalize_pattern's form, deduplicated
  std::vector<std::string> extra_args;     // leading ~/ and $HOME/ expanded
  // The container ports extra_args publish (-p/--publish): the firewall
  // admits inbound connections to these only.
  std::vector<dnsguard::PortRange> inbound;
  std::vector<dnsguard::IpEndpoint> dns_resolvers;  // with their ports (53 when not written)
  std::vector<CaSource> ca_certificates;
  // TLS and HTTP reach an allowed address only for the names that resolved
  // to it. Turning it off is trusted config only.
  bool connection_gate = true;
  // Extra Debian packages installed into the image (a build arg, so the
  // image's context hash covers them): sorted and deduplicated, so one set
  // names one image whatever the order it was written in. Trusted config
  // only: their maintainer scripts run as root during the build.
  std::vector<std::string> image_packages;
  // Secrets the relay puts in for their hosts (secrets.hpp): checked, the
  // presets filled in; the values are read only when a session starts.
  std::vector<SecretSpec> secrets;
  // Learn mode (learn.hpp): every name resolves for this session and is
  // recorded; at the end cagent proposes the names to allow. Only from the
  // command line (--learn) or the global config — never from a workspace
  // file, trusted or not: it opens every destination.
  bool learn = false;
  // Ask mode (watch.hpp): while `cagent watch` is attached to the session, a
  // denied lookup is held up to ask_timeout seconds (1-60) for the user's
  // decision. Like learn, only from the command line (--ask, --ask-timeout)
  // or the global config: a repository must not choose to put its names in
  // front of the user as questions, nor how long the agent waits for them.
  bool ask = false;
  std::uint32_t ask_timeout = 10;
};

// Throws ConfigError naming the first bad entry; an empty domain list is an error.
Config validate(const MergedConfig& merged, const std::filesystem::path& home);

// A Debian package name (Policy 5.6.1): lowercase letters, digits, '+', '-'
// and '.', at least two characters, starting with a letter or digit. No
// versions, architectures or apt options: the name reaches `apt-get install`
// in the build. Throws PatternError with the reason.
void check_package_name(std::string_view name);

// Upstream resolver: "IP", "IP:port", "[IPv6]:port". Throws PatternError
// with the reason.
dnsguard::IpEndpoint parse_resolver(std::string_view text);

// YAML for --print-config, each entry commented with where it came from.
std::string render_config(const MergedConfig& merged);

}  // namespace cagent::launcher::host
