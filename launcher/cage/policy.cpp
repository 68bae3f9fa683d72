#include "launcher/cage/policy.hpp"

#include <arpa/inet.h>

#include <charconv>
#include <sstream>
#include <toml++/toml.h>

namespace cagent::cage {
namespace {

bool parse_address(const std::string& text, nft::Address& out) {
  if (inet_pton(AF_INET, text.c_str(), out.bytes.data()) == 1) {
    out.family = nft::Family::v4;
    return true;
  }
  if (inet_pton(AF_INET6, text.c_str(), out.bytes.data()) == 1) {
    out.family = nft::Family::v6;
    return true;
  }
  return false;
}

std::uint16_t parse_port(std::string_view text, std::string_view whole) {
  unsigned value = 0;
  const auto* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (ec != std::errc{} || ptr != end || value == 0 || value > 65535) {
    throw std::invalid_argument("bad port in \"" + std::string(whole) + "\"");
  }
  return static_cast<std::uint16_t>(value);
}

std::string where(const std::filesystem::path& path, const toml::node& node) {
  std::ostringstream out;
  out << path.string();
  if (node.source().begin.line != 0) out << ':' << node.source().begin.line;
  return out.str();
}

// Each entry of a string array through `convert`; errors name file:line + key.
template <typename T, typename Convert>
std::vector<T> read_list(const std::filesystem::path& path, const toml::table& root,
                         std::string_view key, Convert convert) {
  std::vector<T> result;
  const toml::node* node = root.get(key);
  if (node == nullptr) return result;
  const toml::array* array = node->as_array();
  if (array == nullptr) {
    throw PolicyError(where(path, *node) + ": `" + std::string(key) + "` must be a list of strings");
  }
  for (const toml::node& item : *array) {
    const auto* text = item.as_string();
    if (text == nullptr) {
      throw PolicyError(where(path, item) + ": `" + std::string(key) + "` must be a list of strings");
    }
    try {
      result.push_back(convert(text->get()));
    } catch (const std::invalid_argument& error) {
      throw PolicyError(where(path, item) + ": `" + std::string(key) + "`: " + error.what());
    }
  }
  return result;
}

void read_string(const std::filesystem::path& path, const toml::table& root, std::string_view section,
                 std::string_view key, std::string& out) {
  const toml::node* table_node = root.get(section);
  if (table_node == nullptr) return;
  const toml::table* table = table_node->as_table();
  if (table == nullptr) throw PolicyError(where(path, *table_node) + ": `" + std::string(section) + "` must be a table");
  const toml::node* node = table->get(key);
  if (node == nullptr) return;
  const auto* text = node->as_string();
  if (text == nullptr || text->get().empty()) {
    throw PolicyError(where(path, *node) + ": `" + std::string(section) + "." + std::string(key) +
                      "` must be a non-empty string");
  }
  out = text->get();
}

}  // namespace

nft::Endpoint parse_endpoint(std::string_view text, std::uint16_t default_port) {
  nft::Endpoint endpoint;
  endpoint.port = default_port;
  std::string host;
  if (!text.empty() && text.front() == '[') {
    const auto close = text.find(']');
    if (close == std::string_view::npos) throw std::invalid_argument("unclosed '[' in \"" + std::string(text) + "\"");
    host = std::string(text.substr(1, close - 1));
    const auto rest = text.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') throw std::invalid_argument("junk after ']' in \"" + std::string(text) + "\"");
      endpoint.port = parse_port(rest.substr(1), text);
    }
  } else if (text.find(':') != text.rfind(':')) {
    host = std::string(text);  // bare IPv6: more than one colon, no port
  } else if (const auto colon = text.find(':'); colon != std::string_view::npos) {
    host = std::string(text.substr(0, colon));
    endpoint.port = parse_port(text.substr(colon + 1), text);
  } else {
    host = std::string(text);
  }
  if (!parse_address(host, endpoint.addr)) {
    throw std::invalid_argument("not an IP address: \"" + std::string(text) + "\"");
  }
  return endpoint;
}

nft::Cidr parse_cidr(std::string_view text) {
  nft::Cidr cidr;
  const auto slash = text.find('/');
  const std::string host(text.substr(0, slash));
  if (!parse_address(host, cidr.base)) throw std::invalid_argument("not a CIDR: \"" + std::string(text) + "\"");
  const unsigned max_len = cidr.base.family == nft::Family::v4 ? 32 : 128;
  unsigned len = max_len;
  if (slash != std::string_view::npos) {
    const auto digits = text.substr(slash + 1);
    const auto* end = digits.data() + digits.size();
    auto [ptr, ec] = std::from_chars(digits.data(), end, len);
    if (ec != std::errc{} || ptr != end || len > max_len) {
      throw std::invalid_argument("bad prefix length in \"" + std::string(text) + "\"");
    }
  }
  cidr.prefix_len = static_cast<std::uint8_t>(len);
  // Clear host bits so the kernel's interval set sees a canonical range.
  for (unsigned bit = len; bit < max_len; ++bit) {
    cidr.base.bytes[bit / 8] = static_cast<std::uint8_t>(cidr.base.bytes[bit / 8] & ~(0x80u >> (bit % 8)));
  }
  return cidr;
}

std::vector<nft::Endpoint> parse_resolv_conf(std::string_view text) {
  std::vector<nft::Endpoint> result;
  std::istringstream lines{std::string(text)};
  std::string line;
  while (std::getline(lines, line)) {
    std::istringstream words(line);
    std::string keyword, address;
    if (!(words >> keyword >> address) || keyword != "nameserver") continue;
    // glibc accepts a zone suffix (fe80::1%eth0); we cannot express it in
    // the ruleset, so such an entry is skipped like any other bad one.
    try {
      result.push_back(parse_endpoint(address));
    } catch (const std::invalid_argument&) {
    }
  }
  return result;
}

std::string format_endpoint(const nft::Endpoint& endpoint) {
  char buffer[INET6_ADDRSTRLEN] = {};
  const int family = endpoint.addr.family == nft::Family::v4 ? AF_INET : AF_INET6;
  inet_ntop(family, endpoint.addr.bytes.data(), buffer, sizeof buffer);
  const std::string port = std::to_string(endpoint.port);
  return family == AF_INET ? std::string(buffer) + ":" + port : "[" + std::string(buffer) + "]:" + port;
}

nft::InboundPort parse_inbound_port(std::string_view text) {
  const auto bad = [&](const char* why) {
    return std::invalid_argument("'" + std::string(text) + "' is not PORT[-PORT]/tcp|udp|sctp: " + why);
  };
  const std::size_t slash = text.find('/');
  if (slash == std::string_view::npos) throw bad("no protocol");
  const std::string_view ports = text.substr(0, slash);
  const std::string_view proto = text.substr(slash + 1);
  nft::InboundPort p;
  if (proto == "tcp") p.l4proto = IPPROTO_TCP;
  else if (proto == "udp") p.l4proto = IPPROTO_UDP;
  else if (proto == "sctp") p.l4proto = IPPROTO_SCTP;
  else throw bad("unknown protocol");
  const auto number = [&](std::string_view digits) {
    unsigned value = 0;
    const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
    if (ec != std::errc{} || end != digits.data() + digits.size() || value == 0 || value > 65535)
      throw bad("ports are 1-65535");
    return static_cast<std::uint16_t>(value);
  };
  const std::size_t dash = ports.find('-');
  p.first = number(ports.substr(0, dash));
  p.last = dash == std::string_view::npos ? p.first : number(ports.substr(dash + 1));
  if (p.last < p.first) throw bad("the range is backwards");
  return p;
}

Policy read_policy(const std::filesystem::path& path) {
  toml::table root;
  try {
    root = toml::parse_file(path.string());
  } catch (const toml::parse_error& error) {
    std::ostringstream out;
    out << path.string() << ':' << error.source().begin.line << ": " << error.description();
    throw PolicyError(out.str());
  }
  Policy policy;
  policy.path = path;
  policy.upstreams = read_list<nft::Endpoint>(path, root, "upstreams",
                                              [](const std::string& s) { return parse_endpoint(s); });
  policy.listen = read_list<nft::Endpoint>(path, root, "listen",
                                           [](const std::string& s) { return parse_endpoint(s); });
  policy.allow_cidrs = read_list<nft::Cidr>(path, root, "allow_cidrs",
                                            [](const std::string& s) { return parse_cidr(s); });
  policy.inbound = read_list<nft::InboundPort>(path, root, "inbound",
                                               [](const std::string& s) { return parse_inbound_port(s); });
  if (policy.listen.empty()) policy.listen.push_back(parse_endpoint("127.0.0.1:53"));
  read_string(path, root, "nft", "table", policy.table);
  read_string(path, root, "nft", "set4", policy.set4);
  read_string(path, root, "nft", "set6", policy.set6);
  std::string log_file = policy.log_file.string();
  read_string(path, root, "log", "file", log_file);
  policy.log_file = log_file;
  return policy;
}

}  // namespace cagent::cage
