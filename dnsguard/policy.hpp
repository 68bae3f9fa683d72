#pragma once
// The session policy: the one TOML document that cagent writes for each
// session and that cage-init and dnsguard read (contract: cmd/README.md,
// "The session policy"; how the schema table works: dnsguard/README.md).
//
//   cagent (host)      Policy --write_policy()--> policy.toml
//   cage-init, dnsguard       policy.toml --parse_policy()--> Policy
//
// Both directions walk one schema table (policy.cpp): every key, the member
// it fills and the rule its value obeys. The defaults are the member
// initializers below. Adding a key is a member here plus a row in the table;
// the reader, the writer, unknown-key detection and the contract test
// (tests/unit/dnsguard/policy_test.cpp) follow from them.
//
// This is dnsguard/'s leaf library (`cagent_policy`: no Asio, no ldns, no
// nft): launcher/cage and launcher/host link it without pulling in the
// resolver. Every error is a PolicyError of one line naming the file, the
// line and the key ("policy.toml:4: ttl.min: must be between 1 and 604800,
// got 0").

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "dnsguard/ip.hpp"

namespace cagent::dnsguard {

class PolicyError : public std::runtime_error {
 public:
  // unreadable: the file cannot be opened or is not TOML; invalid: it is
  // TOML but breaks the schema (unknown key, wrong type, bad value). cage-init
  // reports them as different steps (read-policy / check-policy).
  enum class Kind : std::uint8_t { unreadable, invalid };
  PolicyError(Kind kind, const std::string& message) : std::runtime_error(message), kind_(kind) {}
  Kind kind() const noexcept { return kind_; }

 private:
  Kind kind_;
};

enum class DenyRcode : std::uint8_t { nxdomain = 3, refused = 5 };
enum class LogLevel : std::uint8_t { debug, info, warning, error };
// IP protocol numbers, so cage-init hands them to nft unchanged.
enum class Transport : std::uint8_t { tcp = 6, udp = 17, sctp = 132 };

// A published container port (range): "8080/tcp", "5000-5010/udp".
struct PortRange {
  Transport proto = Transport::tcp;
  std::uint16_t first = 0;  // 1..65535
  std::uint16_t last = 0;   // >= first; == first for a single port
  friend bool operator==(const PortRange&, const PortRange&) = default;
};

// "PORT[-PORT]/tcp|udp|sctp", ports 1-65535, ranges not backwards.
std::optional<PortRange> parse_port_range(std::string_view text);
std::string to_string(const PortRange& range);

struct Policy {
  // UDP and TCP on each; never empty.
  std::vector<IpEndpoint> listen = {IpEndpoint{IpAddress{false, {127, 0, 0, 1}}, 53}};
  // Empty: the key is absent and the readers take the nameservers of the
  // container's resolv.conf (an empty list in the file is an error).
  std::vector<IpEndpoint> upstreams;
  std::vector<std::string> allow;  // normalized patterns (lowercase, no trailing dot)
  std::vector<Cidr> allow_cidrs;   // no host bits set
  // Container ports published to the host: the firewall admits inbound
  // connections to these only (cage-init's; dnsguard has no use for them).
  std::vector<PortRange> inbound;
  DenyRcode deny_rcode = DenyRcode::nxdomain;
  std::uint32_t ttl_min = 30;  // seconds; set timeout = clamp(TTL, min, max)
  std::uint32_t ttl_max = 3600;
  std::uint32_t refresh_interval = 60;  // seconds; 0 disables
  std::uint32_t cache_size = 10000;     // answers; 0 disables
  std::string nft_table = "cagent", nft_set4 = "allow4", nft_set6 = "allow6";  // family inet
  // cage-init prepares its directory for dnsguard; the host reads the
  // decisions there after the session.
  std::string log_file = "/var/log/cagent/dnsguard.log";
  LogLevel log_level = LogLevel::info;
  // The connection gate: TLS and HTTP to an allowed address pass
  // only for a name that resolved to it through dnsguard. dnsguard listens
  // on the loopback addresses at gate_port (below 1024: no agent can take
  // it, even while dnsguard is down); cage-init redirects these ports there.
  // Off unless a policy says so: cagent writes it on (the trusted opt-out is
  // `connection_gate: false`).
  bool gate_enabled = false;
  std::uint32_t gate_port = 999;
  std::vector<std::uint32_t> gate_tls_ports = {443};
  std::vector<std::uint32_t> gate_http_ports = {80};
  // The secret relay (launcher/relay): the gate hands TLS for these exact
  // names to cagent-relay on 127.0.0.1:relay_port instead of connecting to
  // the server, and refuses plain HTTP to them. cage-init binds that port
  // (below 1024, so no agent can take it) and runs the relay as relay_uid,
  // without capabilities. Empty: no relay. Needs the gate.
  std::vector<std::string> relay_hosts;
  std::uint32_t relay_port = 998;
  std::uint32_t relay_uid = 65533;
  // Learn mode: a name the allowlist does not allow is resolved anyway (and
  // counted in the decision record's `learned`), still through the address
  // filter, the sets and the gate's name binding. It re-opens DNS
  // tunnelling and every destination for the session, so cagent writes it
  // only from the command line or the trusted config, never from a
  // workspace file.
  bool learn = false;
  // Ask mode (cagent watch): while an approver watches the session over the
  // control socket, a denied lookup is held for up to ask_timeout seconds
  // for the approver's decision instead of being answered at once. Bounded
  // (server.hpp); without a watcher, a lookup is denied as always. Written
  // only from the command line or the trusted config, like learn.
  bool ask_enabled = false;
  std::uint32_t ask_timeout = 10;
  friend bool operator==(const Policy&, const Policy&) = default;
};

// Text → validated policy; `source` names the file in messages. Throws
// PolicyError (unreadable for TOML syntax, invalid for the schema).
Policy parse_policy(std::string_view text, const std::string& source);

// Reads `path` and parses it; a file that cannot be read is `unreadable`.
Policy read_policy(const std::string& path);

// Policy → TOML text (toml++), every key but empty lists (an empty list and
// an absent key mean the same), so parse_policy(write_policy(p)) == p.
// `comment`, when not empty, becomes a leading `# ` line.
std::string write_policy(const Policy& policy, std::string_view comment = {});

// Every key of the schema, dotted ("ttl.min"), in schema order: for tests
// that must cover each key (the contract test does).
std::vector<std::string> policy_keys();

// The `nameserver` addresses of a resolv.conf text, in order, port 53: the
// default upstreams. Entries we cannot use (a scope id: fe80::1%eth0) are
// skipped; a resolv.conf is not ours to reject.
std::vector<IpEndpoint> parse_resolv_conf(std::string_view text);

}  // namespace cagent::dnsguard
