// The policy contract: one schema, one writer, two readers.
//
//   cagent      launcher/host render_policy_toml  ──▶ policy.toml
//   dnsguard    dnsguard::load_config             ◀── policy.toml
//   cage-init   cage::read_policy                 ◀── policy.toml
//
// Both readers must see every key alike, and refuse the same bad files with
// the same one-line message naming the key. Every key of the schema has a
// row below; a key added without one fails "every key has a bad-value row".
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <string>

#include "../common/temp_dir.hpp"
#include "dnsguard/config.hpp"
#include "launcher/cage/policy.hpp"
#include "launcher/host/policy.hpp"

using namespace cagent;
using cagent::test::TempDir;
namespace fs = std::filesystem;

namespace {

// What each reader makes of a file: the policy, or the error message.
struct Outcome {
  std::optional<dnsguard::Policy> policy;
  std::string error;
};

Outcome dnsguard_reads(const fs::path& file, const fs::path& resolv_conf) {
  try {
    return {dnsguard::load_config(file.string(), resolv_conf.string()), {}};
  } catch (const dnsguard::ConfigError& e) {
    return {std::nullopt, e.what()};
  }
}

Outcome cage_reads(const fs::path& file) {
  try {
    return {cage::read_policy(file), {}};
  } catch (const cage::PolicyError& e) {
    return {std::nullopt, e.what()};
  }
}

// Through the host's own pipeline (load → merge → validate), as cagent does.
launcher::host::Config host_config() {
  using namespace launcher::host;
  const ConfigLayer layer = load_config(
      "domains: [github.com, '*.githubusercontent.com']\n"
      "dns_resolvers: ['192.0.2.53:53', '[2001:db8::53]:5300']\n"
      "extra_args: [-p, '8080:80', '--publish=127.0.0.1:5353:53/udp', -p, '9000-9010:9000-9010/sctp']\n",
      "/contract.yaml", LayerKind::base);
  return validate(merge_layers({layer}, MergeOptions{true, ""}), "/home/u");
}

// One bad value per row: the key the message must name and a file body.
struct BadRow {
  const char* key;
  const char* toml;
};
const BadRow bad_rows[] = {
    {"listen", "listen = []"},
    {"listen", "listen = [\"localhost:53\"]"},
    // Port 0: dnsguard took it (a random port nobody can find), cage-init
    // refused it; now both refuse.
    {"listen", "listen = [\"127.0.0.1:0\"]"},
    {"listen", "listen = \"127.0.0.1:53\""},
    {"upstreams", "upstreams = []"},
    {"upstreams", "upstreams = [\"192.0.2.x\"]"},
    {"upstreams", "upstreams = [\"192.0.2.1:70000\"]"},
    {"upstreams", "upstreams = [\"192.0.2.1:0\"]"},
    {"upstreams", "upstreams = [1]"},
    {"allow", "allow = [\"*.*.test\"]"},
    {"allow", "allow = [\"a_b c.test\"]"},
    {"allow", "allow = \"a.test\""},
    // Host bits: cage-init cleared them, dnsguard refused; now both refuse.
    {"allow_cidrs", "allow_cidrs = [\"203.0.113.7/24\"]"},
    {"allow_cidrs", "allow_cidrs = [\"10.0.0.0/33\"]"},
    // Bad inbound entries: dnsguard passed them, cage-init refused them.
    {"inbound", "inbound = [\"0/tcp\"]"},
    {"inbound", "inbound = [\"80/icmp\"]"},
    {"inbound", "inbound = [\"90-80/tcp\"]"},
    {"deny_rcode", "deny_rcode = \"servfail\""},
    {"deny_rcode", "deny_rcode = 3"},
    {"ttl.min", "[ttl]\nmin = 0"},
    {"ttl.max", "[ttl]\nmax = \"1h\""},
    {"ttl.max", "[ttl]\nmin = 60\nmax = 30"},
    {"refresh.interval", "[refresh]\ninterval = -1"},
    {"cache.size", "[cache]\nsize = 10000001"},
    {"nft.table", "[nft]\ntable = \"a b\""},
    {"nft.set4", "[nft]\nset4 = \"\""},
    {"nft.set6", "[nft]\nset6 = 6"},
    {"log.file", "[log]\nfile = \"\""},
    {"log.level", "[log]\nlevel = \"loud\""},
    {"gate.enabled", "[gate]\nenabled = \"yes\""},
    {"gate.port", "[gate]\nport = 1024"},
    {"gate.port", "[gate]\nport = 0"},
    {"gate.tls_ports", "[gate]\ntls_ports = []"},
    {"gate.tls_ports", "[gate]\ntls_ports = [\"443\"]"},
    {"gate.tls_ports", "[gate]\ntls_ports = [443, 443]"},
    {"gate.http_ports", "[gate]\nhttp_ports = [70000]"},
    {"gate.http_ports", "[gate]\ntls_ports = [443]\nhttp_ports = [80, 443]"},
    {"relay.hosts", "[gate]\nenabled = true\n[relay]\nhosts = [\"*.a.test\"]"},
    {"relay.hosts", "[relay]\nhosts = [\"a.test\"]"},
    {"relay.port", "[gate]\nenabled = true\nport = 999\n[relay]\nhosts = [\"a.test\"]\nport = 999"},
    {"relay.port", "[relay]\nport = 1024"},
    {"relay.uid", "[relay]\nuid = 0"},
    {"learn", "learn = 1"},
    {"learn", "learn = \"true\""},
    {"ask.enabled", "[ask]\nenabled = 1"},
    {"ask.timeout", "[ask]\ntimeout = 0"},
    {"ask.timeout", "[ask]\ntimeout = 61"},
    {"bogus", "bogus = 1"},
    {"ttl.maxx", "[ttl]\nmaxx = 3"},
    {"colour", "[colour]\nred = 1"},
    {"ttl", "ttl = 5"},
};

}  // namespace

TEST_CASE("what cagent writes, dnsguard and cage-init read alike, key by key") {
  TempDir dir;
  const auto resolv = dir.write("resolv.conf", "nameserver 198.51.100.53\n");
  const dnsguard::Policy written = launcher::host::session_policy(host_config());
  const fs::path file = dir.write("policy.toml", launcher::host::render_policy_toml(host_config()));

  const Outcome d = dnsguard_reads(file, resolv);
  const Outcome c = cage_reads(file);
  REQUIRE_MESSAGE(d.policy, d.error);
  REQUIRE_MESSAGE(c.policy, c.error);
  CHECK(*d.policy == written);
  CHECK(*c.policy == written);
  // Spelled out, so a failure names the key.
  CHECK(d.policy->listen == c.policy->listen);
  CHECK(d.policy->upstreams == c.policy->upstreams);
  CHECK(d.policy->allow == c.policy->allow);
  CHECK(d.policy->allow_cidrs == c.policy->allow_cidrs);
  CHECK(d.policy->inbound == c.policy->inbound);
  CHECK(d.policy->deny_rcode == c.policy->deny_rcode);
  CHECK(d.policy->ttl_min == c.policy->ttl_min);
  CHECK(d.policy->ttl_max == c.policy->ttl_max);
  CHECK(d.policy->refresh_interval == c.policy->refresh_interval);
  CHECK(d.policy->cache_size == c.policy->cache_size);
  CHECK(d.policy->nft_table == c.policy->nft_table);
  CHECK(d.policy->nft_set4 == c.policy->nft_set4);
  CHECK(d.policy->nft_set6 == c.policy->nft_set6);
  CHECK(d.policy->log_file == c.policy->log_file);
  CHECK(d.policy->log_level == c.policy->log_level);
  CHECK(d.policy->learn == c.policy->learn);
  CHECK(d.policy->ask_enabled == c.policy->ask_enabled);
  CHECK(d.policy->ask_timeout == c.policy->ask_timeout);

  // What the host asked for is what arrives.
  REQUIRE(written.upstreams.size() == 2);
  CHECK(dnsguard::to_string(written.upstreams[1]) == "[2001:db8::53]:5300");
  CHECK(written.allow == std::vector<std::string>{"github.com", "*.githubusercontent.com"});
  CHECK(written.inbound == std::vector<dnsguard::PortRange>{{dnsguard::Transport::tcp, 80, 80},
                                                            {dnsguard::Transport::udp, 53, 53},
                                                            {dnsguard::Transport::sctp, 9000, 9010}});
  CHECK(written.log_file == "/var/log/cagent/dnsguard.log");  // the cage's log dir, which the host reads
  CHECK(written.listen.size() == 2);
}

TEST_CASE("without resolvers the host writes no upstreams, and both readers fall back alike") {
  TempDir dir;
  const auto resolv = dir.write("resolv.conf", "nameserver 198.51.100.53\n");
  launcher::host::Config config = host_config();
  config.dns_resolvers.clear();
  const std::string text = launcher::host::render_policy_toml(config);
  CHECK(text.find("upstreams") == std::string::npos);
  const fs::path file = dir.write("policy.toml", text);
  const Outcome d = dnsguard_reads(file, resolv);
  const Outcome c = cage_reads(file);
  REQUIRE(d.policy);
  REQUIRE(c.policy);
  CHECK(c.policy->upstreams.empty());  // cage-init adds resolv.conf's in its copy (plan)
  CHECK(d.policy->upstreams == dnsguard::parse_resolv_conf("nameserver 198.51.100.53\n"));
}

TEST_CASE("a policy with every key set survives writer and both readers") {
  TempDir dir;
  const auto resolv = dir.write("resolv.conf", "");
  dnsguard::Policy p;
  p.listen = {*dnsguard::parse_endpoint("127.0.0.1:5353", 53)};
  p.upstreams = {*dnsguard::parse_endpoint("192.0.2.1", 53)};
  p.allow = {"a.test"};
  p.allow_cidrs = {*dnsguard::parse_cidr("2001:db8::/32")};
  p.inbound = {*dnsguard::parse_port_range("22/tcp")};
  p.deny_rcode = dnsguard::DenyRcode::refused;
  p.ttl_min = 5;
  p.ttl_max = 50;
  p.refresh_interval = 0;
  p.cache_size = 7;
  p.nft_table = "t";
  p.nft_set4 = "s4";
  p.nft_set6 = "s6";
  p.log_file = "/tmp/x.log";
  p.log_level = dnsguard::LogLevel::error;
  p.gate_enabled = true;
  p.gate_port = 444;
  p.gate_tls_ports = {443, 8443};
  p.gate_http_ports = {80, 8080};
  p.relay_hosts = {"a.test"};
  p.relay_port = 997;
  p.relay_uid = 4545;
  p.learn = true;
  p.ask_enabled = true;
  p.ask_timeout = 7;
  const fs::path file = dir.write("policy.toml", dnsguard::write_policy(p));
  const Outcome d = dnsguard_reads(file, resolv);
  const Outcome c = cage_reads(file);
  REQUIRE_MESSAGE(d.policy, d.error);
  REQUIRE_MESSAGE(c.policy, c.error);
  CHECK(*d.policy == p);
  CHECK(*c.policy == p);
}

TEST_CASE("both readers refuse the same bad values with the same message naming the key") {
  TempDir dir;
  const auto resolv = dir.write("resolv.conf", "nameserver 198.51.100.53\n");
  for (const BadRow& row : bad_rows) {
    CAPTURE(row.toml);
    const fs::path file = dir.write("bad.toml", row.toml);
    const Outcome d = dnsguard_reads(file, resolv);
    const Outcome c = cage_reads(file);
    CHECK_FALSE(d.policy);
    CHECK_FALSE(c.policy);
    CHECK(d.error == c.error);
    CHECK(d.error.rfind(file.string() + ":", 0) == 0);  // file:line first
    CHECK(d.error.find(": " + std::string(row.key) + ": ") != std::string::npos);
    CHECK(d.error.find('\n') == std::string::npos);  // one line
    try {
      cage::read_policy(file);
    } catch (const cage::PolicyError& e) {
      CHECK(e.kind() == cage::PolicyError::Kind::invalid);  // cage-init: step check-policy
    }
  }
}

TEST_CASE("every key has a bad-value row") {
  std::set<std::string> covered;
  for (const BadRow& row : bad_rows) covered.insert(row.key);
  for (const std::string& key : dnsguard::policy_keys()) {
    CAPTURE(key);
    CHECK(covered.count(key) == 1);
  }
}

TEST_CASE("TOML syntax errors: both readers refuse, cage-init calls it unreadable") {
  TempDir dir;
  const auto resolv = dir.write("resolv.conf", "nameserver 198.51.100.53\n");
  const fs::path file = dir.write("syntax.toml", "allow = [\"a.test\"\n");
  const Outcome d = dnsguard_reads(file, resolv);
  const Outcome c = cage_reads(file);
  CHECK_FALSE(d.policy);
  CHECK(d.error == c.error);
  CHECK(d.error.rfind(file.string() + ":", 0) == 0);
  try {
    cage::read_policy(file);
    FAIL("no error");
  } catch (const cage::PolicyError& e) {
    CHECK(e.kind() == cage::PolicyError::Kind::unreadable);  // cage-init: step read-policy
  }
}
