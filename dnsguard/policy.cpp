#include "dnsguard/policy.hpp"

#include <algorithm>
#include <charconv>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <toml++/toml.h>
#include <utility>

#include "dnsguard/allow_list.hpp"

namespace cagent::dnsguard {
namespace {

// What a rule throws for a bad value; parse_policy adds "file:line: key: ".
// `line` 0: the key's own line (an array entry names its own line).
struct Invalid {
  std::string what;
  std::uint32_t line = 0;
};

std::uint32_t line_of(const toml::node& node) {
  return static_cast<std::uint32_t>(node.source().begin.line);
}

std::string quoted(std::string_view text) { return "'" + std::string(text) + "'"; }

// ---- rules: how one key's value is read from and written to TOML ----------
// Each rule has  T read(const toml::node&) const  (throws Invalid) and
// void write(const T&, Emit) const  (calls emit(value) unless nothing is to
// be written: empty lists are left out, absence means the same).

// A list of strings, each converted by `Item::parse` (std::optional<T>) and
// written back by `Item::format`; `shape` says what a valid entry looks like.
template <typename Item>
struct List {
  Item item;
  bool non_empty = false;

  template <typename T>
  void read_into(const toml::node& node, std::vector<T>& out) const {
    const auto* array = node.as_array();
    if (array == nullptr) throw Invalid{"must be an array of strings"};
    std::vector<T> values;
    for (const toml::node& entry : *array) {
      const auto* text = entry.as_string();
      if (text == nullptr) throw Invalid{"must be an array of strings", line_of(entry)};
      values.push_back(item.parse(text->get(), line_of(entry)));
    }
    if (non_empty && values.empty()) throw Invalid{"must not be empty"};
    out = std::move(values);
  }
  template <typename T, typename Emit>
  void write(const std::vector<T>& values, Emit&& emit) const {
    if (values.empty()) return;
    toml::array array;
    for (const T& v : values) array.push_back(item.format(v));
    emit(std::move(array));
  }
};

// listen, upstreams: an address with an optional port (53), port 0 refused
// (it would bind a random port, or send nowhere).
struct EndpointItem {
  IpEndpoint parse(const std::string& text, std::uint32_t line) const {
    auto ep = parse_endpoint(text, 53);
    if (!ep || ep->port == 0)
      throw Invalid{quoted(text) + " is not ADDRESS[:PORT] or [IPV6][:PORT] with a port of 1-65535", line};
    return *ep;
  }
  std::string format(const IpEndpoint& ep) const { return to_string(ep); }
};

struct PatternItem {
  std::string parse(const std::string& text, std::uint32_t line) const {
    try {
      return normalize_pattern(text);
    } catch (const PatternError& e) {
      throw Invalid{e.what(), line};
    }
  }
  std::string format(const std::string& pattern) const { return pattern; }
};

// Host bits below the prefix are refused rather than cleared: a typo more
// often than not, and the kernel's interval set wants a canonical range.
struct CidrItem {
  Cidr parse(const std::string& text, std::uint32_t line) const {
    auto cidr = parse_cidr(text);
    if (!cidr) throw Invalid{quoted(text) + " is not ADDRESS/PREFIX (with no host bits set)", line};
    return *cidr;
  }
  std::string format(const Cidr& cidr) const { return to_string(cidr); }
};

struct PortRangeItem {
  PortRange parse(const std::string& text, std::uint32_t line) const {
    auto range = parse_port_range(text);
    if (!range)
      throw Invalid{quoted(text) + " is not PORT[-PORT]/tcp|udp|sctp with ports 1-65535, low to high", line};
    return *range;
  }
  std::string format(const PortRange& range) const { return to_string(range); }
};

// A string naming one of a few values; the first name of a value is the
// one written.
template <typename E>
struct Choice {
  std::vector<std::pair<std::string_view, E>> names;
  const char* expected;  // "must be …"

  void read_into(const toml::node& node, E& out) const {
    const auto* text = node.as_string();
    if (text == nullptr) throw Invalid{"must be a string"};
    for (const auto& [name, value] : names) {
      if (name == text->get()) {
        out = value;
        return;
      }
    }
    throw Invalid{std::string("must be ") + expected};
  }
  template <typename Emit>
  void write(E value, Emit&& emit) const {
    for (const auto& [name, v] : names) {
      if (v == value) {
        emit(std::string(name));
        return;
      }
    }
  }
};

struct Range {
  std::int64_t lo, hi;

  void read_into(const toml::node& node, std::uint32_t& out) const {
    const auto* i = node.as_integer();
    if (i == nullptr) throw Invalid{"must be an integer"};
    if (i->get() < lo || i->get() > hi)
      throw Invalid{"must be between " + std::to_string(lo) + " and " + std::to_string(hi) + ", got " +
                    std::to_string(i->get())};
    out = static_cast<std::uint32_t>(i->get());
  }
  template <typename Emit>
  void write(std::uint32_t value, Emit&& emit) const {
    emit(static_cast<std::int64_t>(value));
  }
};

const toml::value<std::string>& string_node(const toml::node& node) {
  const auto* s = node.as_string();
  if (s == nullptr) throw Invalid{"must be a string"};
  return *s;
}

struct NonEmptyString {
  void read_into(const toml::node& node, std::string& out) const {
    const std::string& text = string_node(node).get();
    if (text.empty()) throw Invalid{"must not be empty"};
    out = text;
  }
  template <typename Emit>
  void write(const std::string& value, Emit&& emit) const {
    emit(value);
  }
};

// nft object names: what the kernel accepts (NFT_NAME_MAXLEN 256) and what
// is safe to print; we restrict to the identifier characters nft(8) uses.
struct NftName : NonEmptyString {
  void read_into(const toml::node& node, std::string& out) const {
    const std::string& text = string_node(node).get();
    bool ok = !text.empty() && text.size() < 256;
    for (char c : text)
      ok = ok && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '_' || c == '-');
    if (!ok) throw Invalid{quoted(text) + " is not a valid nft name"};
    out = text;
  }
};

struct Bool {
  void read_into(const toml::node& node, bool& out) const {
    const auto* b = node.as_boolean();
    if (b == nullptr) throw Invalid{"must be true or false"};
    out = b->get();
  }
  template <typename Emit>
  void write(bool value, Emit&& emit) const {
    emit(value);
  }
};

// A non-empty array of TCP ports (integers 1-65535), no port twice.
struct PortList {
  void read_into(const toml::node& node, std::vector<std::uint32_t>& out) const {
    const auto* array = node.as_array();
    if (array == nullptr) throw Invalid{"must be an array of ports"};
    std::vector<std::uint32_t> ports;
    for (const toml::node& entry : *array) {
      const auto* i = entry.as_integer();
      if (i == nullptr || i->get() < 1 || i->get() > 65535)
        throw Invalid{"must be an array of ports (1-65535)", line_of(entry)};
      const auto port = static_cast<std::uint32_t>(i->get());
      if (std::find(ports.begin(), ports.end(), port) != ports.end())
        throw Invalid{"port " + std::to_string(port) + " twice", line_of(entry)};
      ports.push_back(port);
    }
    if (ports.empty()) throw Invalid{"must not be empty"};
    out = std::move(ports);
  }
  template <typename Emit>
  void write(const std::vector<std::uint32_t>& values, Emit&& emit) const {
    toml::array array;
    for (const std::uint32_t v : values) array.push_back(static_cast<std::int64_t>(v));
    emit(std::move(array));
  }
};

const Choice<DenyRcode> deny_rcodes{
    {{"nxdomain", DenyRcode::nxdomain}, {"refused", DenyRcode::refused}}, "\"nxdomain\" or \"refused\""};
const Choice<LogLevel> log_levels{{{"debug", LogLevel::debug},
                                   {"info", LogLevel::info},
                                   {"warning", LogLevel::warning},
                                   {"warn", LogLevel::warning},
                                   {"error", LogLevel::error}},
                                  "debug, info, warning or error"};

// ---- the schema -------------------------------------------------------------
// Every key of the policy, in one place: its dotted name ("section.key" for
// the [section] tables), the member it fills and its rule. The reader, the
// writer and the unknown-key check all walk this; the defaults are the
// member initializers of Policy.
template <typename P, typename Visit>
void for_each_key(P& p, Visit&& visit) {
  visit("listen", p.listen, List<EndpointItem>{{}, true});
  visit("upstreams", p.upstreams, List<EndpointItem>{{}, true});
  visit("allow", p.allow, List<PatternItem>{});
  visit("allow_cidrs", p.allow_cidrs, List<CidrItem>{});
  visit("inbound", p.inbound, List<PortRangeItem>{});
  visit("deny_rcode", p.deny_rcode, deny_rcodes);
  // ttl.min >= 1: a set timeout of 0 would mean "never expires".
  visit("ttl.min", p.ttl_min, Range{1, 604800});
  visit("ttl.max", p.ttl_max, Range{1, 604800});
  visit("refresh.interval", p.refresh_interval, Range{0, 86400});
  visit("cache.size", p.cache_size, Range{0, 10000000});
  visit("nft.table", p.nft_table, NftName{});
  visit("nft.set4", p.nft_set4, NftName{});
  visit("nft.set6", p.nft_set6, NftName{});
  visit("log.file", p.log_file, NonEmptyString{});
  visit("log.level", p.log_level, log_levels);
  visit("gate.enabled", p.gate_enabled, Bool{});
  // Below 1024: only dnsguard (CAP_NET_BIND_SERVICE) can bind it in the cage.
  visit("gate.port", p.gate_port, Range{1, 1023});
  visit("gate.tls_ports", p.gate_tls_ports, PortList{});
  visit("gate.http_ports", p.gate_http_ports, PortList{});
  visit("relay.hosts", p.relay_hosts, List<PatternItem>{});
  visit("relay.port", p.relay_port, Range{1, 1023});
  // Not root, and not a uid an image's own accounts use (Debian's dynamic
  // system and user ranges end far below).
  visit("relay.uid", p.relay_uid, Range{1, 2147483647});
  visit("learn", p.learn, Bool{});
  visit("ask.enabled", p.ask_enabled, Bool{});
  // A resolver's client gives up after about 10 s (glibc: 5 s × 2 tries);
  // longer holds only answer a client that is gone.
  visit("ask.timeout", p.ask_timeout, Range{1, 60});
}

// Relations between keys, checked after every key was read. `line` gives the
// line of a key (0 when the file does not set it).
template <typename Line>
void check_relations(const Policy& p, Line&& line, const std::string& source) {
  for (const std::uint32_t port : p.gate_tls_ports) {
    if (std::find(p.gate_http_ports.begin(), p.gate_http_ports.end(), port) != p.gate_http_ports.end()) {
      const std::uint32_t at = line("gate.http_ports") != 0 ? line("gate.http_ports") : line("gate.tls_ports");
      throw PolicyError(PolicyError::Kind::invalid, source + ":" + std::to_string(at) +
                                                        ": gate.http_ports: port " + std::to_string(port) +
                                                        " is also in gate.tls_ports");
    }
  }
  if (!p.relay_hosts.empty()) {
    const auto at = [&] { return source + ":" + std::to_string(line("relay.hosts")) + ": relay.hosts: "; };
    if (!p.gate_enabled) throw PolicyError(PolicyError::Kind::invalid, at() + "the relay needs gate.enabled = true");
    for (const std::string& host : p.relay_hosts) {
      if (host.find('*') != std::string::npos) {
        throw PolicyError(PolicyError::Kind::invalid, at() + quoted(host) + " is a pattern; name hosts exactly");
      }
    }
    if (p.relay_port == p.gate_port) {
      throw PolicyError(PolicyError::Kind::invalid, source + ":" + std::to_string(line("relay.port")) +
                                                        ": relay.port: must differ from gate.port");
    }
  }
  if (p.ttl_max < p.ttl_min) {
    const std::uint32_t at = line("ttl.max") != 0 ? line("ttl.max") : line("ttl.min");
    throw PolicyError(PolicyError::Kind::invalid, source + ":" + std::to_string(at) +
                                                      ": ttl.max: must be >= ttl.min (" +
                                                      std::to_string(p.ttl_min) + ")");
  }
}

bool is_section(const std::set<std::string, std::less<>>& keys, std::string_view name) {
  const std::string prefix = std::string(name) + ".";
  auto it = keys.lower_bound(prefix);
  return it != keys.end() && it->compare(0, prefix.size(), prefix) == 0;
}

[[noreturn]] void invalid(const std::string& source, std::uint32_t line, std::string_view key,
                          const std::string& what) {
  throw PolicyError(PolicyError::Kind::invalid,
                    source + ":" + std::to_string(line) + ": " + std::string(key) + ": " + what);
}

// Every key in the file is in the schema, and every [section] is a table.
void reject_unknown_keys(const toml::table& root, const std::string& source) {
  static const auto keys = [] {
    const auto all = policy_keys();
    return std::set<std::string, std::less<>>(all.begin(), all.end());
  }();
  for (const auto& [k, v] : root) {
    const std::string_view name = k.str();
    if (keys.count(name) != 0) continue;
    const auto key_line = static_cast<std::uint32_t>(k.source().begin.line);
    if (!is_section(keys, name)) invalid(source, key_line, name, "unknown key");
    const auto* section = v.as_table();
    if (section == nullptr) invalid(source, line_of(v), name, "must be a table");
    for (const auto& [k2, v2] : *section) {
      const std::string dotted = std::string(name) + "." + std::string(k2.str());
      if (keys.count(dotted) == 0)
        invalid(source, static_cast<std::uint32_t>(k2.source().begin.line), dotted, "unknown key");
    }
  }
}

}  // namespace

std::optional<PortRange> parse_port_range(std::string_view text) {
  const std::size_t slash = text.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  const std::string_view ports = text.substr(0, slash);
  const std::string_view proto = text.substr(slash + 1);
  PortRange range;
  if (proto == "tcp") range.proto = Transport::tcp;
  else if (proto == "udp") range.proto = Transport::udp;
  else if (proto == "sctp") range.proto = Transport::sctp;
  else return std::nullopt;
  const auto number = [](std::string_view digits) -> std::optional<std::uint16_t> {
    unsigned value = 0;
    const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
    if (digits.empty() || ec != std::errc{} || end != digits.data() + digits.size() || value == 0 ||
        value > 65535)
      return std::nullopt;
    return static_cast<std::uint16_t>(value);
  };
  const std::size_t dash = ports.find('-');
  const auto first = number(ports.substr(0, dash));
  const auto last = dash == std::string_view::npos ? first : number(ports.substr(dash + 1));
  if (!first || !last || *last < *first) return std::nullopt;
  range.first = *first;
  range.last = *last;
  return range;
}

std::string to_string(const PortRange& range) {
  std::string out = std::to_string(range.first);
  if (range.last != range.first) out += "-" + std::to_string(range.last);
  switch (range.proto) {
    case Transport::tcp: return out + "/tcp";
    case Transport::udp: return out + "/udp";
    case Transport::sctp: return out + "/sctp";
  }
  return out;
}

Policy parse_policy(std::string_view text, const std::string& source) {
  toml::table root;
  try {
    root = toml::parse(text, source);
  } catch (const toml::parse_error& e) {
    throw PolicyError(PolicyError::Kind::unreadable, source + ":" + std::to_string(e.source().begin.line) +
                                                         ": " + std::string(e.description()));
  }
  reject_unknown_keys(root, source);
  Policy policy;
  std::map<std::string, std::uint32_t, std::less<>> lines;
  for_each_key(policy, [&](std::string_view key, auto& member, const auto& rule) {
    const toml::node* node = root.at_path(key).node();
    if (node == nullptr) return;
    lines.emplace(key, line_of(*node));
    try {
      rule.read_into(*node, member);
    } catch (const Invalid& bad) {
      invalid(source, bad.line != 0 ? bad.line : line_of(*node), key, bad.what);
    }
  });
  check_relations(
      policy,
      [&](std::string_view key) {
        auto it = lines.find(key);
        return it == lines.end() ? 0u : it->second;
      },
      source);
  return policy;
}

Policy read_policy(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw PolicyError(PolicyError::Kind::unreadable, path + ": cannot open the policy file");
  std::stringstream text;
  text << in.rdbuf();
  return parse_policy(text.str(), path);
}

std::string write_policy(const Policy& policy, std::string_view comment) {
  toml::table root;
  for_each_key(policy, [&](std::string_view key, const auto& member, const auto& rule) {
    rule.write(member, [&](auto&& value) {
      const std::size_t dot = key.find('.');
      if (dot == std::string_view::npos) {
        root.insert_or_assign(key, std::forward<decltype(value)>(value));
        return;
      }
      const std::string_view section = key.substr(0, dot);
      if (root.get(section) == nullptr) root.insert(section, toml::table{});
      root.get(section)->as_table()->insert_or_assign(key.substr(dot + 1),
                                                      std::forward<decltype(value)>(value));
    });
  });
  std::ostringstream out;
  if (!comment.empty()) out << "# " << comment << "\n";
  // Basic strings only ("…", escapes for control characters): literal
  // strings ('…') would be valid TOML but surprise every grep.
  out << toml::toml_formatter(root, toml::format_flags::indentation) << "\n";
  return out.str();
}

std::vector<std::string> policy_keys() {
  std::vector<std::string> keys;
  Policy scratch;
  for_each_key(scratch, [&](std::string_view key, auto&, const auto&) { keys.emplace_back(key); });
  return keys;
}

std::vector<IpEndpoint> parse_resolv_conf(std::string_view text) {
  std::vector<IpEndpoint> out;
  std::istringstream in{std::string(text)};
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream words(line);
    std::string keyword, address;
    if (!(words >> keyword >> address) || keyword != "nameserver") continue;
    // Scope ids (fe80::1%eth0) are not supported; skip them rather than fail.
    if (auto ip = parse_ip(address)) out.push_back(IpEndpoint{*ip, 53});
  }
  return out;
}

}  // namespace cagent::dnsguard
