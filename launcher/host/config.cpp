#include "launcher/host/config.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <set>
#include <sstream>
#include <utility>

#include "dnsguard/allow_list.hpp"
#include "launcher/host/paths.hpp"
#include "launcher/host/policy.hpp"
#include "launcher/host/secrets.hpp"
#include "launcher/host/text.hpp"

namespace cagent::launcher::host {
namespace {

SourcePos pos_of(const std::string& origin, const YAML::Mark& mark) {
  // yaml-cpp marks are 0-based; -1 when unknown.
  return SourcePos{origin, mark.line < 0 ? 0 : mark.line + 1,
                   mark.column < 0 ? 0 : mark.column + 1};
}

const char* type_name(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Null: return "null";
    case YAML::NodeType::Scalar: return "a scalar";
    case YAML::NodeType::Sequence: return "a list";
    case YAML::NodeType::Map: return "a mapping";
    case YAML::NodeType::Undefined: break;
  }
  return "undefined";
}

std::vector<Entry> read_string_list(const YAML::Node& value, const std::string& key,
                                    const std::string& origin) {
  std::vector<Entry> out;
  if (value.IsNull()) return out;  // "domains:" with nothing = empty list
  if (!value.IsSequence()) {
    throw ConfigError(pos_of(origin, value.Mark()),
                      "'" + key + "' must be a list of strings, not " + type_name(value));
  }
  for (const YAML::Node& item : value) {
    if (!item.IsScalar()) {
      throw ConfigError(pos_of(origin, item.Mark()),
                        "'" + key + "' entries must be strings, not " + type_name(item));
    }
    out.push_back(Entry{item.Scalar(), pos_of(origin, item.Mark())});
  }
  return out;
}

void append(std::vector<Entry>& to, const std::vector<Entry>& from) {
  to.insert(to.end(), from.begin(), from.end());
}

// Keeps the first occurrence of each value (by key function), preserving order.
template <typename Key>
std::vector<Entry> dedupe(const std::vector<Entry>& entries, Key key) {
  std::set<std::string> seen;
  std::vector<Entry> out;
  for (const Entry& e : entries) {
    if (seen.insert(key(e.value)).second) out.push_back(e);
  }
  return out;
}

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

void emit_list(YAML::Emitter& out, const char* key, const std::vector<Entry>& entries) {
  out << YAML::Key << key << YAML::Value;
  if (entries.empty()) {
    out << YAML::Flow << YAML::BeginSeq << YAML::EndSeq;
    return;
  }
  out << YAML::BeginSeq;
  for (const Entry& e : entries) out << e.value << YAML::Comment(e.pos.str());
  out << YAML::EndSeq;
}

constexpr std::string_view kAskTimeoutRule = "'ask_timeout' must be a whole number of seconds from 1 to 60";

}  // namespace

std::string SourcePos::str() const {
  std::string s = file;
  if (line > 0) {
    s += ":" + std::to_string(line);
    if (column > 0) s += ":" + std::to_string(column);
  }
  return s;
}

// Security: the message quotes file names and values from a workspace
// .cagent.yaml (a cloned repository's, or one the agent wrote); escaped here
// once, so no construction site can print a control character raw.
ConfigError::ConfigError(const SourcePos& pos, const std::string& what)
    : std::runtime_error(printable(pos.str() + ": " + what)) {}

ConfigLayer load_config(std::string_view yaml_text, const std::string& origin, LayerKind kind) {
  ConfigLayer layer;
  layer.kind = kind;
  layer.origin = origin;
  std::vector<YAML::Node> docs;
  try {
    docs = YAML::LoadAll(std::string(yaml_text));
  } catch (const YAML::Exception& e) {
    throw ConfigError(pos_of(origin, e.mark), "invalid YAML: " + e.msg);
  }
  if (docs.empty()) return layer;
  if (docs.size() > 1) {
    throw ConfigError(pos_of(origin, docs[1].Mark()), "more than one YAML document");
  }
  const YAML::Node& root = docs.front();
  if (root.IsNull()) return layer;  // empty file or only comments
  if (!root.IsMap()) {
    throw ConfigError(pos_of(origin, root.Mark()),
                      std::string("the config must be a mapping of keys, not ") + type_name(root));
  }
  std::set<std::string> seen;
  for (const auto& kv : root) {
    const YAML::Node& key_node = kv.first;
    if (!key_node.IsScalar()) {
      throw ConfigError(pos_of(origin, key_node.Mark()), "keys must be plain names");
    }
    const std::string key = key_node.Scalar();
    if (!seen.insert(key).second) {
      throw ConfigError(pos_of(origin, key_node.Mark()), "duplicate key '" + key + "'");
    }
    if (std::find(std::begin(kConfigKeys), std::end(kConfigKeys), key) == std::end(kConfigKeys)) {
      throw ConfigError(pos_of(origin, key_node.Mark()),
                        "unknown key '" + key +
                            "' (known: ignore, readonly, domains, extra_args, dns_resolvers, "
                            "ca_certificates, connection_gate, image_packages, secrets, learn, ask, ask_timeout)");
    }
    if (key == "connection_gate" || key == "learn" || key == "ask") {
      const YAML::Node& v = kv.second;
      if (!v.IsScalar() || (v.Scalar() != "true" && v.Scalar() != "false")) {
        throw ConfigError(pos_of(origin, v.Mark()), "'" + key + "' must be true or false");
      }
      (key == "learn" ? layer.learn : key == "ask" ? layer.ask : layer.connection_gate) =
          Entry{v.Scalar(), pos_of(origin, v.Mark())};
      continue;
    }
    if (key == "ask_timeout") {
      // The number itself is checked in validate(), where --ask-timeout's is.
      const YAML::Node& v = kv.second;
      if (!v.IsScalar()) throw ConfigError(pos_of(origin, v.Mark()), std::string(kAskTimeoutRule));
      layer.ask_timeout = Entry{v.Scalar(), pos_of(origin, v.Mark())};
      continue;
    }
    if (key == "secrets") {
      layer.secrets = read_secret_specs(kv.second, origin);
      continue;
    }
    std::vector<Entry> values = read_string_list(kv.second, key, origin);
    if (key == "ignore") {
      layer.ignore = std::move(values);
    } else if (key == "readonly") {
      layer.readonly = std::move(values);
    } else if (key == "domains") {
      layer.domains = std::move(values);
    } else if (key == "extra_args") {
      layer.extra_args = std::move(values);
    } else if (key == "dns_resolvers") {
      layer.dns_resolvers = std::move(values);
    } else if (key == "image_packages") {
      layer.image_packages = std::move(values);
    } else {
      layer.ca_certificates = std::move(values);
    }
  }
  return layer;
}

MergedConfig merge_layers(const std::vector<ConfigLayer>& layers, const MergeOptions& options) {
  MergedConfig m;
  for (const ConfigLayer& layer : layers) {
    append(m.ignore, layer.ignore);
    append(m.readonly, layer.readonly);
    append(m.domains, layer.domains);
    // Security: learn mode resolves every name and opens every destination
    // for the session (DNS tunnelling included). A repository's file, or
    // one the agent wrote, must never switch it on, so it counts from the
    // global config and the command line only — a trusted workspace's
    // file included, since trusting a workspace is about its anchors, not
    // about giving up the allowlist. `learn: false` asks for more
    // protection, which needs no trust.
    if (layer.kind == LayerKind::workspace && layer.learn && layer.learn->value == "true") {
      m.warnings.push_back("ignoring learn: true from " + layer.origin +
                           ": learn mode opens every destination, so it is taken only from the command line "
                           "(cagent --learn) or the global config");
    } else if (layer.learn) {
      m.learn = layer.learn;
    }
    // Ask mode, the same way: a repository's file must not decide that its
    // names come to the user as questions to approve, nor how long the
    // agent's lookups wait for them. Both keys, whatever their value, are
    // the user's own (a held lookup costs the agent up to the timeout).
    for (auto [mine, key] : {std::pair{&ConfigEntries::ask, "ask"}, std::pair{&ConfigEntries::ask_timeout, "ask_timeout"}}) {
      const std::optional<Entry>& entry = layer.*mine;
      if (!entry) continue;
      if (layer.kind == LayerKind::workspace) {
        m.warnings.push_back(std::string("ignoring ") + key + ": " + entry->value + " from " + layer.origin +
                             ": ask mode is taken only from the command line (cagent --ask, --ask-timeout) or "
                             "the global config");
      } else {
        m.*mine = entry;
      }
    }
    if (layer.kind == LayerKind::workspace && !options.workspace_trusted) {
      // Security: these keys move the cage's trust anchors or its walls, so
      // a cloned repository (or a file the agent planted) must not set them
      // just by being opened:
      //   extra_args       docker arguments: "-v /:/host", "--privileged";
      //   dns_resolvers    who answers dnsguard: a resolver of the repo's
      //                    choosing decides every allowed name's address;
      //   ca_certificates  whom every TLS client in the cage (and the image
      //                    build) believes: a repo CA makes interception silent.
      //   image_packages   each package's maintainer scripts run as root in
      //                    the image build, and what they install is in every
      //                    later cage: a repo could pick any archive package.
      // The machine's resolvers and CAs belong in the global config.
      std::vector<std::string> dropped;
      if (!layer.extra_args.empty()) dropped.push_back("extra_args (docker arguments can escape the cage)");
      if (!layer.dns_resolvers.empty()) dropped.push_back("dns_resolvers (they decide what every name resolves to)");
      if (!layer.ca_certificates.empty()) dropped.push_back("ca_certificates (they decide which TLS peers are believed)");
      if (!layer.image_packages.empty())
        dropped.push_back("image_packages (their install scripts run as root in the image build)");
      //   secrets          which host gets which of your credentials.
      if (!layer.secrets.empty()) dropped.push_back("secrets (they decide which hosts get your credentials)");
      //   connection_gate  off, every site on an allowed address is reachable.
      if (layer.connection_gate && layer.connection_gate->value == "false")
        dropped.push_back("connection_gate: false (it opens every site on an allowed address)");
      if (!dropped.empty()) {
        std::string keys;
        for (const std::string& d : dropped) keys += (keys.empty() ? "" : ", ") + d;
        const bool anchors = !layer.dns_resolvers.empty() || !layer.ca_certificates.empty();
        m.warnings.push_back("ignoring " + keys + " from " + layer.origin +
                             ": this workspace is not trusted" +
                             (anchors ? " (this machine's resolvers and CAs belong in the global config)"
                                      : "") +
                             "; to trust it: " + options.trust_hint);
      }
      // Asking for more protection needs no trust.
      if (layer.connection_gate && layer.connection_gate->value == "true") m.connection_gate = layer.connection_gate;
      continue;
    }
    append(m.dns_resolvers, layer.dns_resolvers);
    append(m.ca_certificates, layer.ca_certificates);
    append(m.extra_args, layer.extra_args);
    append(m.image_packages, layer.image_packages);
    m.secrets.insert(m.secrets.end(), layer.secrets.begin(), layer.secrets.end());
    if (layer.connection_gate) m.connection_gate = layer.connection_gate;
  }
  const auto identity = [](const std::string& v) { return v; };
  m.ignore = dedupe(m.ignore, identity);
  m.readonly = dedupe(m.readonly, identity);
  m.domains = dedupe(m.domains, [](const std::string& v) {
    std::string k = lower(v);
    if (!k.empty() && k.back() == '.') k.pop_back();
    return k;
  });
  m.dns_resolvers = dedupe(m.dns_resolvers, identity);
  m.ca_certificates = dedupe(m.ca_certificates, identity);
  m.image_packages = dedupe(m.image_packages, identity);
  return m;
}

void check_package_name(std::string_view name) {
  if (name.size() < 2) throw PatternError("a Debian package name has at least two characters");
  const auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  if (!alnum(name.front())) {
    // Also what keeps "-o..." or "--allow-unauthenticated" from becoming apt options.
    throw PatternError("a Debian package name starts with a lowercase letter or a digit");
  }
  for (char c : name) {
    if (alnum(c) || c == '+' || c == '-' || c == '.') continue;
    if (c >= 'A' && c <= 'Z') throw PatternError("Debian package names are lowercase");
    if (c == '=' || c == ':' || c == '/') {
      throw PatternError(std::string("'") + c + "': a name only, no version, architecture or release");
    }
    if (c == ' ' || c == '\t') throw PatternError("one package per entry");
    throw PatternError(std::string("invalid character '") + c + "' (allowed: a-z 0-9 + - .)");
  }
}

dnsguard::IpEndpoint parse_resolver(std::string_view text) {
  // The policy's parser (dnsguard/ip.hpp): what passes here, dnsguard and
  // cage-init accept as an upstream.
  const auto endpoint = dnsguard::parse_endpoint(text, 53);
  if (!endpoint || endpoint->port == 0) {
    throw PatternError("'" + std::string(text) +
                       "' is not IP, IP:PORT or [IPv6]:PORT with a port of 1-65535 (resolvers are addresses, "
                       "not names)");
  }
  return *endpoint;
}

Config validate(const MergedConfig& merged, const std::filesystem::path& home) {
  Config c;
  if (merged.connection_gate) c.connection_gate = merged.connection_gate->value == "true";
  if (merged.learn) c.learn = merged.learn->value == "true";
  if (merged.ask) c.ask = merged.ask->value == "true";
  if (merged.ask_timeout) {
    const std::string& v = merged.ask_timeout->value;
    const bool digits = !v.empty() && v.size() <= 2 && std::all_of(v.begin(), v.end(), [](char ch) {
      return ch >= '0' && ch <= '9';
    });
    const int seconds = digits ? std::stoi(v) : 0;
    if (seconds < 1 || seconds > 60) throw ConfigError(merged.ask_timeout->pos, std::string(kAskTimeoutRule));
    c.ask_timeout = static_cast<std::uint32_t>(seconds);
  }
  for (const Entry& e : merged.ignore) {
    try {
      c.ignore.push_back(Pattern::parse(e.value));
    } catch (const PatternError& err) {
      throw ConfigError(e.pos, "bad ignore pattern '" + e.value + "': " + err.what());
    }
  }
  for (const Entry& e : merged.readonly) {
    try {
      c.readonly.push_back(Pattern::parse(e.value));
    } catch (const PatternError& err) {
      throw ConfigError(e.pos, "bad readonly pattern '" + e.value + "': " + err.what());
    }
  }
  std::set<std::string> seen;
  for (const Entry& e : merged.domains) {
    try {
      std::string d = dnsguard::normalize_pattern(e.value);
      if (seen.insert(d).second) c.domains.push_back(std::move(d));
    } catch (const dnsguard::PatternError& err) {
      throw ConfigError(e.pos, std::string("bad domain ") + err.what());
    }
  }
  if (c.domains.empty()) {
    throw ConfigError(SourcePos{"config", 0, 0},
                      "the merged domain list is empty: the cage could reach nothing (add "
                      "'domains' to a config file or pass -d NAME)");
  }
  for (const Entry& e : merged.extra_args) {
    if (e.value.empty()) throw ConfigError(e.pos, "empty extra_args entry");
    c.extra_args.push_back(expand_home(e.value, home));
  }
  // Published ports open the cage's firewall to inbound connections: a spec
  // we cannot read is an error here, not a surprise at cage start.
  for (const PublishSpec& p : publish_specs(c.extra_args)) {
    try {
      c.inbound.push_back(inbound_port(p.spec));
    } catch (const std::invalid_argument& err) {
      throw ConfigError(merged.extra_args[p.index].pos, err.what());
    }
  }
  for (const Entry& e : merged.dns_resolvers) {
    try {
      c.dns_resolvers.push_back(parse_resolver(e.value));
    } catch (const PatternError& err) {
      throw ConfigError(e.pos, "bad dns_resolvers entry '" + e.value + "': " + err.what());
    }
  }
  for (const Entry& e : merged.ca_certificates) {
    if (e.value == "system") {
      c.ca_certificates.push_back(CaSource{{}, true, e.pos});
      continue;
    }
    if (e.value.empty()) throw ConfigError(e.pos, "empty ca_certificates entry");
    std::filesystem::path p = expand_home(e.value, home);
    if (p.is_relative()) {
      // Relative to the file that named it, so a config is self-contained.
      const std::filesystem::path origin(e.pos.file);
      if (origin.is_absolute()) p = origin.parent_path() / p;
    }
    c.ca_certificates.push_back(CaSource{p, false, e.pos});
  }
  for (const Entry& e : merged.image_packages) {
    try {
      check_package_name(e.value);
    } catch (const PatternError& err) {
      throw ConfigError(e.pos, "bad image_packages entry '" + e.value + "': " + err.what());
    }
    c.image_packages.push_back(e.value);
  }
  std::sort(c.image_packages.begin(), c.image_packages.end());
  c.secrets = resolve_secret_specs(merged.secrets, c.domains, c.connection_gate);
  return c;
}

std::string render_config(const MergedConfig& merged) {
  YAML::Emitter out;
  out << YAML::BeginMap;
  emit_list(out, "ignore", merged.ignore);
  emit_list(out, "readonly", merged.readonly);
  emit_list(out, "domains", merged.domains);
  emit_list(out, "extra_args", merged.extra_args);
  emit_list(out, "dns_resolvers", merged.dns_resolvers);
  emit_list(out, "ca_certificates", merged.ca_certificates);
  emit_list(out, "image_packages", merged.image_packages);
  if (!merged.secrets.empty()) {
    // Names, variables, hosts and sources: never a value (none is read here).
    out << YAML::Key << "secrets" << YAML::Value << YAML::BeginSeq;
    for (const SecretSpec& s : merged.secrets) {
      out << YAML::BeginMap << YAML::Key << "name" << YAML::Value << s.name << YAML::Key << "env" << YAML::Value << s.env;
      if (!s.from_env.empty()) out << YAML::Key << "from_env" << YAML::Value << s.from_env;
      if (!s.from_file.empty()) out << YAML::Key << "from_file" << YAML::Value << s.from_file;
      if (!s.from_command.empty()) out << YAML::Key << "from_command" << YAML::Value << YAML::Flow << s.from_command;
      out << YAML::Key << "hosts" << YAML::Value << YAML::Flow << s.hosts;
      if (s.git) out << YAML::Key << "git" << YAML::Value << true;
      out << YAML::EndMap << YAML::Comment(s.pos.str());
    }
    out << YAML::EndSeq;
  }
  out << YAML::Key << "connection_gate" << YAML::Value;
  if (merged.connection_gate) {
    out << merged.connection_gate->value << YAML::Comment(merged.connection_gate->pos.str());
  } else {
    out << "true" << YAML::Comment("default");
  }
  const auto emit_scalar = [&](const char* key, const std::optional<Entry>& entry, const char* fallback) {
    out << YAML::Key << key << YAML::Value;
    if (entry) {
      out << entry->value << YAML::Comment(entry->pos.str());
    } else {
      out << fallback << YAML::Comment("default");
    }
  };
  emit_scalar("learn", merged.learn, "false");
  emit_scalar("ask", merged.ask, "false");
  emit_scalar("ask_timeout", merged.ask_timeout, "10");
  out << YAML::EndMap;
  std::string s = "# merged configuration (each entry: where it came from)\n";
  s += out.c_str();
  s += "\n";
  return s;
}

}  // namespace cagent::launcher::host
