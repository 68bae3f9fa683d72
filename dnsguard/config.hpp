#pragma once
// dnsguard's TOML config (contract: shared/DESIGN.md), in two stages that
// produce different types so they cannot be mixed up:
//
//   text --parse_config()--> ParsedConfig   every key known, every value the
//                                           right TOML type, source lines kept
//        --normalize()----> Config          values checked and converted
//                                           (addresses, patterns, ranges);
//                                           frozen for the daemon's lifetime
//
// Every error is a ConfigError whose message names the file, the line and
// the key ("dnsguard.toml:4: ttl.min: must be at least 1").

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "ip.hpp"

namespace cagent::dnsguard {

class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

template <typename T>
struct Located {
  T value{};
  std::uint32_t line = 0;
};

struct ParsedConfig {
  std::string source;  // file name, for messages
  std::optional<Located<std::vector<std::string>>> listen, upstreams, allow, allow_cidrs;
  // cage-init's: container ports published to the host ("8080/tcp"); the
  // firewall admits inbound connections to them. dnsguard only checks shape.
  std::optional<Located<std::vector<std::string>>> inbound;
  std::optional<Located<std::string>> deny_rcode;
  std::optional<Located<std::int64_t>> ttl_min, ttl_max, refresh_interval, cache_size;
  std::optional<Located<std::string>> nft_table, nft_set4, nft_set6, log_file, log_level;
};

enum class DenyRcode : std::uint8_t { nxdomain = 3, refused = 5 };
enum class LogLevel : std::uint8_t { debug, info, warning, error };

struct Config {
  std::vector<IpEndpoint> listen;
  std::vector<IpEndpoint> upstreams;
  std::vector<std::string> allow;  // normalized patterns (lowercase, no trailing dot)
  std::vector<Cidr> allow_cidrs;
  DenyRcode deny_rcode = DenyRcode::nxdomain;
  std::uint32_t ttl_min = 30;
  std::uint32_t ttl_max = 3600;
  std::uint32_t refresh_interval = 60;  // seconds; 0 disables
  std::uint32_t cache_size = 10000;     // answers; 0 disables
  std::string nft_table = "cagent", nft_set4 = "allow4", nft_set6 = "allow6";
  std::string log_file;  // empty: stderr
  LogLevel log_level = LogLevel::info;
};

// Stage 1. Throws ConfigError (TOML syntax, unknown key, wrong type).
ParsedConfig parse_config(std::string_view text, std::string source);

// Stage 2. `default_upstreams` is used when the file has no `upstreams`
// (the caller reads them from /etc/resolv.conf). Throws ConfigError.
Config normalize(const ParsedConfig& parsed, const std::vector<IpEndpoint>& default_upstreams);

// Nameservers from a resolv.conf-format text (port 53).
std::vector<IpEndpoint> parse_resolv_conf(std::string_view text);

// Reads the file and runs both stages; the default upstreams come from
// `resolv_conf` (read only when needed). Throws ConfigError.
Config load_config(const std::string& path, const std::string& resolv_conf = "/etc/resolv.conf");

}  // namespace cagent::dnsguard
