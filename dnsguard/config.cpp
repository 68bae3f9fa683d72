#include "config.hpp"

#include <fstream>
#include <sstream>
#include <toml++/toml.h>

#include "allow_list.hpp"

namespace cagent::dnsguard {

namespace {

std::uint32_t line_of(const toml::node& node) {
  return static_cast<std::uint32_t>(node.source().begin.line);
}

[[noreturn]] void fail(const std::string& source, std::uint32_t line, std::string_view key,
                       const std::string& what) {
  throw ConfigError(source + ":" + std::to_string(line) + ": " + std::string(key) + ": " + what);
}

Located<std::vector<std::string>> string_list(const std::string& source, std::string_view key,
                                              const toml::node& node) {
  const auto* arr = node.as_array();
  if (arr == nullptr) fail(source, line_of(node), key, "must be an array of strings");
  Located<std::vector<std::string>> out{{}, line_of(node)};
  for (const auto& item : *arr) {
    const auto* s = item.as_string();
    if (s == nullptr) fail(source, line_of(item), key, "must be an array of strings");
    out.value.push_back(s->get());
  }
  return out;
}

Located<std::string> string_value(const std::string& source, std::string_view key,
                                  const toml::node& node) {
  const auto* s = node.as_string();
  if (s == nullptr) fail(source, line_of(node), key, "must be a string");
  return {s->get(), line_of(node)};
}

Located<std::int64_t> integer_value(const std::string& source, std::string_view key,
                                    const toml::node& node) {
  const auto* i = node.as_integer();
  if (i == nullptr) fail(source, line_of(node), key, "must be an integer");
  return {i->get(), line_of(node)};
}

// One [section] with a fixed set of keys.
void parse_section(const std::string& source, std::string_view section, const toml::node& node,
                   ParsedConfig& out) {
  const auto* table = node.as_table();
  if (table == nullptr) fail(source, line_of(node), section, "must be a table");
  for (const auto& [k, v] : *table) {
    std::string key = std::string(section) + "." + std::string(k.str());
    if (key == "ttl.min") out.ttl_min = integer_value(source, key, v);
    else if (key == "ttl.max") out.ttl_max = integer_value(source, key, v);
    else if (key == "refresh.interval") out.refresh_interval = integer_value(source, key, v);
    else if (key == "cache.size") out.cache_size = integer_value(source, key, v);
    else if (key == "nft.table") out.nft_table = string_value(source, key, v);
    else if (key == "nft.set4") out.nft_set4 = string_value(source, key, v);
    else if (key == "nft.set6") out.nft_set6 = string_value(source, key, v);
    else if (key == "log.file") out.log_file = string_value(source, key, v);
    else if (key == "log.level") out.log_level = string_value(source, key, v);
    else fail(source, static_cast<std::uint32_t>(k.source().begin.line), key, "unknown key");
  }
}

template <typename T>
std::uint32_t in_range(const std::string& source, std::string_view key, const Located<T>& v,
                       std::int64_t lo, std::int64_t hi) {
  if (v.value < lo || v.value > hi)
    fail(source, v.line, key,
         "must be between " + std::to_string(lo) + " and " + std::to_string(hi) + ", got " +
             std::to_string(v.value));
  return static_cast<std::uint32_t>(v.value);
}

// nft object names: what the kernel accepts (NFT_NAME_MAXLEN 256) and what
// is safe to print; we restrict to the identifier characters nft(8) uses.
std::string nft_name(const std::string& source, std::string_view key, const Located<std::string>& v) {
  bool ok = !v.value.empty() && v.value.size() < 256;
  for (char c : v.value)
    ok = ok && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                c == '_' || c == '-');
  if (!ok) fail(source, v.line, key, "'" + v.value + "' is not a valid nft name");
  return v.value;
}

}  // namespace

ParsedConfig parse_config(std::string_view text, std::string source) {
  ParsedConfig out;
  out.source = source;
  toml::table root;
  try {
    root = toml::parse(text, source);
  } catch (const toml::parse_error& e) {
    throw ConfigError(source + ":" + std::to_string(e.source().begin.line) + ": " +
                      std::string(e.description()));
  }
  for (const auto& [k, v] : root) {
    std::string_view key = k.str();
    if (key == "listen") out.listen = string_list(source, key, v);
    else if (key == "upstreams") out.upstreams = string_list(source, key, v);
    else if (key == "allow") out.allow = string_list(source, key, v);
    else if (key == "allow_cidrs") out.allow_cidrs = string_list(source, key, v);
    else if (key == "inbound") out.inbound = string_list(source, key, v);
    else if (key == "deny_rcode") out.deny_rcode = string_value(source, key, v);
    else if (key == "ttl" || key == "refresh" || key == "cache" || key == "nft" || key == "log")
      parse_section(source, key, v, out);
    else fail(source, static_cast<std::uint32_t>(k.source().begin.line), key, "unknown key");
  }
  return out;
}

Config normalize(const ParsedConfig& p, const std::vector<IpEndpoint>& default_upstreams) {
  const std::string& src = p.source;
  Config c;
  if (p.listen) {
    if (p.listen->value.empty()) fail(src, p.listen->line, "listen", "must not be empty");
    for (const auto& s : p.listen->value) {
      auto ep = parse_endpoint(s, 53);
      if (!ep) fail(src, p.listen->line, "listen", "'" + s + "' is not ADDRESS:PORT or [V6]:PORT");
      c.listen.push_back(*ep);
    }
  } else {
    c.listen = {*parse_endpoint("127.0.0.1:53", 53)};
  }
  if (p.upstreams) {
    for (const auto& s : p.upstreams->value) {
      auto ep = parse_endpoint(s, 53);
      if (!ep) fail(src, p.upstreams->line, "upstreams", "'" + s + "' is not ADDRESS[:PORT]");
      c.upstreams.push_back(*ep);
    }
    if (c.upstreams.empty()) fail(src, p.upstreams->line, "upstreams", "must not be empty");
  } else {
    c.upstreams = default_upstreams;
    if (c.upstreams.empty())
      fail(src, 0, "upstreams", "not set and no nameserver found in resolv.conf");
  }
  if (p.allow) {
    for (const auto& s : p.allow->value) {
      try {
        c.allow.push_back(normalize_pattern(s));
      } catch (const PatternError& e) {
        fail(src, p.allow->line, "allow", e.what());
      }
    }
  }
  if (p.allow_cidrs) {
    for (const auto& s : p.allow_cidrs->value) {
      auto cidr = parse_cidr(s);
      if (!cidr)
        fail(src, p.allow_cidrs->line, "allow_cidrs",
             "'" + s + "' is not ADDRESS/PREFIX (with no host bits set)");
      c.allow_cidrs.push_back(*cidr);
    }
  }
  if (p.deny_rcode) {
    if (p.deny_rcode->value == "nxdomain") c.deny_rcode = DenyRcode::nxdomain;
    else if (p.deny_rcode->value == "refused") c.deny_rcode = DenyRcode::refused;
    else fail(src, p.deny_rcode->line, "deny_rcode", "must be \"nxdomain\" or \"refused\"");
  }
  // ttl.min >= 1: a set timeout of 0 would mean "never expires".
  if (p.ttl_min) c.ttl_min = in_range(src, "ttl.min", *p.ttl_min, 1, 604800);
  if (p.ttl_max) c.ttl_max = in_range(src, "ttl.max", *p.ttl_max, 1, 604800);
  if (c.ttl_max < c.ttl_min)
    fail(src, p.ttl_max ? p.ttl_max->line : (p.ttl_min ? p.ttl_min->line : 0), "ttl.max",
         "must be >= ttl.min (" + std::to_string(c.ttl_min) + ")");
  if (p.refresh_interval)
    c.refresh_interval = in_range(src, "refresh.interval", *p.refresh_interval, 0, 86400);
  if (p.cache_size) c.cache_size = in_range(src, "cache.size", *p.cache_size, 0, 10000000);
  if (p.nft_table) c.nft_table = nft_name(src, "nft.table", *p.nft_table);
  if (p.nft_set4) c.nft_set4 = nft_name(src, "nft.set4", *p.nft_set4);
  if (p.nft_set6) c.nft_set6 = nft_name(src, "nft.set6", *p.nft_set6);
  if (p.log_file) {
    if (p.log_file->value.empty()) fail(src, p.log_file->line, "log.file", "must not be empty");
    c.log_file = p.log_file->value;
  }
  if (p.log_level) {
    const auto& l = p.log_level->value;
    if (l == "debug") c.log_level = LogLevel::debug;
    else if (l == "info") c.log_level = LogLevel::info;
    else if (l == "warn" || l == "warning") c.log_level = LogLevel::warning;
    else if (l == "error") c.log_level = LogLevel::error;
    else fail(src, p.log_level->line, "log.level", "must be debug, info, warning or error");
  }
  return c;
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

Config load_config(const std::string& path, const std::string& resolv_conf) {
  std::ifstream in(path);
  if (!in) throw ConfigError(path + ": cannot open config file");
  std::stringstream text;
  text << in.rdbuf();
  auto parsed = parse_config(text.str(), path);
  std::vector<IpEndpoint> defaults;
  if (!parsed.upstreams) {
    std::ifstream resolv(resolv_conf);
    std::stringstream rtext;
    rtext << resolv.rdbuf();
    defaults = parse_resolv_conf(rtext.str());
  }
  return normalize(parsed, defaults);
}

}  // namespace cagent::dnsguard
