// nft/ against the real kernel. The process moves itself into a fresh network
// namespace before any test runs, so the host's ruleset is never touched and
// everything disappears with the process. The kernel's own view comes from
// the `nft` tool run as a child (it inherits the namespace) and from
// SetUpdater::list().
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <regex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "nft/logic.hpp"
#include "nft/nft.hpp"

using namespace cagent::nft;
using namespace std::chrono_literals;

namespace {

struct PipeCloser {
  void operator()(FILE* f) const noexcept { pclose(f); }
};

// Runs a fixed command line (no user input) and returns its stdout.
std::string run(const std::string& command) {
  std::unique_ptr<FILE, PipeCloser> p(popen((command + " 2>&1").c_str(), "r"));
  REQUIRE(p != nullptr);
  std::string out;
  std::array<char, 4096> buf{};
  std::size_t n = 0;
  while ((n = fread(buf.data(), 1, buf.size(), p.get())) > 0) out.append(buf.data(), n);
  return out;
}

std::string kernel_view() { return run("nft list table inet cagent"); }

// `nft list` without counter values (and the refused sets' elements, which
// the namespace's own traffic may add at any time).
std::string without_counts(std::string view) {
  view = std::regex_replace(view, std::regex("packets [0-9]+ bytes [0-9]+"), "packets _ bytes _");
  return std::regex_replace(view, std::regex("(set refused[46] \\{[^}]*flags dynamic\\n)[^}]*\\}"), "$1\t}");
}

std::size_t count(const std::string& haystack, const std::string& needle) {
  std::size_t n = 0;
  for (std::size_t pos = haystack.find(needle); pos != std::string::npos; pos = haystack.find(needle, pos + 1)) ++n;
  return n;
}

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

Address addr(const char* text) {
  auto a = parse_address(text);
  REQUIRE(a.has_value());
  return *a;
}

RulesetSpec test_spec() {
  RulesetSpec spec;
  spec.dnsguard_uid = 4242;
  spec.listen_port = 5353;
  spec.upstreams = {Endpoint{addr("192.0.2.53"), 53}, Endpoint{addr("2001:db8::53"), 53}};
  spec.static_cidrs = {Cidr{addr("203.0.113.0"), 24}, Cidr{addr("2001:db8:1::"), 48}};
  spec.onlink6 = {Cidr{addr("2001:db8:e2e::"), 64}};
  spec.inbound = {InboundPort{6, 8080, 8080}, InboundPort{17, 5000, 5010}};
  return spec;
}

const ListedElement* find(const std::vector<ListedElement>& v, const Address& a) {
  auto it = std::find_if(v.begin(), v.end(), [&](const ListedElement& e) { return e.addr == a; });
  return it == v.end() ? nullptr : &*it;
}

// Documentation IPv6 addresses 2001:db8:aa::<i>.
Address v6_doc(std::uint32_t i) {
  Address a = addr("2001:db8:aa::");
  a.bytes[12] = static_cast<std::uint8_t>(i >> 24);
  a.bytes[13] = static_cast<std::uint8_t>(i >> 16);
  a.bytes[14] = static_cast<std::uint8_t>(i >> 8);
  a.bytes[15] = static_cast<std::uint8_t>(i);
  return a;
}

}  // namespace

TEST_CASE("install_ruleset: the kernel holds the expected sets, chains and rules") {
  install_ruleset(test_spec());
  const std::string view = kernel_view();
  INFO(view);
  CHECK(contains(view, "set allow4 {\n\t\ttype ipv4_addr\n\t\tsize 65536\n\t\tflags timeout\n"));
  CHECK(contains(view, "set allow6 {\n\t\ttype ipv6_addr\n\t\tsize 65536\n\t\tflags timeout\n"));
  CHECK(contains(view, "set static4 {\n\t\ttype ipv4_addr\n\t\tflags constant,interval\n\t\telements = { 203.0.113.0/24 }"));
  CHECK(contains(view, "set static6 {\n\t\ttype ipv6_addr\n\t\tflags constant,interval\n\t\telements = { 2001:db8:1::/48 }"));
  // Flows belong to their owner, before anything accepts established
  // traffic: dnsguard's new flows are marked, no other local socket answers
  // on them, and dnsguard's packets to an upstream never ride on the reply
  // direction of a flow someone else opened.
  CHECK(contains(view, "chain output {\n\t\ttype filter hook output priority filter; policy drop;\n"
                       "\t\tct state new meta skuid 4242 ct mark set ct mark | 0x20000000 comment \"flows dnsguard opens are owned\"\n"
                       "\t\tct direction reply ct mark & 0x20000000 != 0x00000000 meta skuid != 4294967295 drop"));
  CHECK(contains(view, "meta skuid 4242 ct direction original ct mark & 0x20000000 == 0x00000000 drop comment "
                       "\"dnsguard sends only on flows it opened, or in reply\""));
  CHECK(contains(view, "meta skuid 4242 ip daddr 192.0.2.53 ct mark & 0x20000000 == 0x00000000 drop"));
  CHECK(contains(view, "meta skuid 4242 ip6 daddr 2001:db8::53 ct mark & 0x20000000 == 0x00000000 drop comment "
                       "\"dnsguard reaches upstream 2001:db8::53 only on flows it opened\"\n"
                       "\t\tct state established,related accept"));
  CHECK_FALSE(contains(view, "local resolver"));  // none in this spec
  // Inbound: default drop; upstream queries never delivered locally, no flow
  // opened from an upstream's address (any port), then replies and loopback only.
  CHECK(contains(view, "chain input {\n\t\ttype filter hook input priority filter; policy drop;\n"
                       "\t\tip daddr 192.0.2.53 udp dport 53 drop"));
  CHECK(contains(view, "ip saddr 192.0.2.53 ct direction original drop"));
  CHECK(contains(view, "ip6 daddr 2001:db8::53 tcp dport 53 drop"));
  CHECK(contains(view, "ip6 saddr 2001:db8::53 ct direction original drop"));
  CHECK(contains(view, "iif \"lo\" accept"));
  CHECK(contains(view, "tcp dport 8080-8080 accept comment \"published port 8080/tcp\""));
  CHECK(contains(view, "udp dport 5000-5010 accept comment \"published port 5000-5010/udp\""));
  CHECK(contains(view, "ip6 daddr 2001:db8:e2e::/64 ip6 hoplimit 255 icmpv6 type nd-router-advert accept"));
  CHECK(contains(view, "chain forward {\n\t\ttype filter hook forward priority filter; policy drop;\n"
                       "\t\tct state established,related accept"));
  // -150 (nft names that number "mangle"): ahead of Docker's DNAT at -100.
  CHECK(contains(view, "chain dns_redirect {\n\t\ttype nat hook output priority mangle; policy accept;\n"));
  CHECK(contains(view, "meta skuid != 4242 ip daddr 127.0.0.11 reject with icmpx admin-prohibited"));
  CHECK(contains(view, "oif \"lo\" accept"));
  CHECK(contains(view, "ip daddr 127.0.0.1 udp dport 5353 accept"));
  CHECK(contains(view, "ip daddr 127.0.0.1 tcp dport 5353 accept"));
  CHECK(contains(view, "ip6 daddr ::1 udp dport 5353 accept"));
  CHECK(contains(view, "ip6 daddr ::1 tcp dport 5353 accept"));
  // Neighbour discovery: hop limit 255, link-local / link multicast / on-link only.
  for (const char* type : {"nd-neighbor-solicit", "nd-neighbor-advert"}) {
    for (const char* scope : {"fe80::/10", "ff02::/16", "2001:db8:e2e::/64"}) {
      CAPTURE(type);
      CAPTURE(scope);
      CHECK(count(view, std::string("ip6 daddr ") + scope + " ip6 hoplimit 255 icmpv6 type " + type + " accept") == 2);
    }
  }
  CHECK(count(view, "ip6 daddr ff02::/16 ip6 hoplimit 255 icmpv6 type nd-router-solicit accept") == 1);
  CHECK(count(view, "icmpv6 type nd-neighbor-solicit accept") == 6);  // nothing unrestricted
  CHECK(contains(view, "meta skuid 4242 ip daddr 192.0.2.53 udp dport 53 accept"));
  CHECK(contains(view, "meta skuid 4242 ip daddr 192.0.2.53 tcp dport 53 accept"));
  CHECK(contains(view, "meta skuid 4242 ip6 daddr 2001:db8::53 udp dport 53 accept"));
  CHECK(contains(view, "meta skuid 4242 ip6 daddr 2001:db8::53 tcp dport 53 accept"));
  CHECK(count(view, "udp dport 53 drop") == 4);  // output + forward (nested containers) + input (2 upstreams)
  CHECK(count(view, "tcp dport 53 drop") == 4);
  CHECK(count(view, "ip daddr @allow4 accept") == 2);   // output + forward
  CHECK(count(view, "ip6 daddr @allow6 accept") == 2);
  CHECK(count(view, "ip daddr @static4 accept") == 2);
  CHECK(count(view, "ip6 daddr @static6 accept") == 2);
  CHECK(count(view, "limit rate 5/second log prefix \"cagent-reject: \"") == 2);
  CHECK(count(view, "meta l4proto tcp reject with tcp reset") == 2);
  CHECK(count(view, "reject with icmpx admin-prohibited") == 3);  // + Docker's resolver
  CHECK(contains(view, "meta skuid != 4242 udp dport 53 redirect to :5353"));
  CHECK(contains(view, "meta skuid != 4242 tcp dport 53 redirect to :5353"));

  // Order matters for security: DNS drop before the allow sets, reject last.
  const auto pos = [&](const char* s) { return view.find(s); };
  CHECK(pos("udp dport 53 drop") < pos("ip daddr @allow4 accept"));
  CHECK(pos("ip daddr 127.0.0.11 reject") < pos("oif \"lo\" accept"));
  // In forward too: DNS is dropped before any allow set can accept it.
  const std::size_t fwd = pos("chain forward {");
  REQUIRE(fwd != std::string::npos);
  CHECK(view.find("udp dport 53 drop", fwd) < view.find("ip daddr @allow4 accept", fwd));
  CHECK(view.find("tcp dport 53 drop", fwd) < view.find("ip daddr @static4 accept", fwd));
  CHECK(pos("ip6 daddr @static6 accept") < pos("meta l4proto tcp reject with tcp reset"));
  CHECK(pos("meta l4proto tcp reject") < pos("reject with icmpx admin-prohibited comment \"refuse the rest"));

  // The cage's own multicast reports are dropped before the refusal counter.
  CHECK(pos("meta l4proto igmp drop") < pos("counter name \"refused\""));
  CHECK(pos("icmpv6 type mld2-listener-report drop") < pos("counter name \"refused\""));

  // The JSON view (2 upstreams, 1 on-link prefix): output 33 + 3 per upstream
  // + 3 per on-link prefix = 42, forward 14, input 9 + 3 per upstream + 3 per
  // on-link prefix + 1 per published port = 20, dns_redirect 2.
  const std::string json = run("nft -j list table inet cagent");
  CHECK(count(json, "{\"rule\":") == 42 + 14 + 20 + 2);
  CHECK(count(json, "\"chain\": \"output\", \"handle\"") == 42);
  CHECK(count(json, "\"chain\": \"input\", \"handle\"") == 20);
  CHECK(count(json, "\"chain\": \"forward\", \"handle\"") == 14);
  CHECK(count(json, "\"chain\": \"dns_redirect\", \"handle\"") == 2);
}

TEST_CASE("install_ruleset with Docker's embedded resolver as a local upstream") {
  RulesetSpec spec = test_spec();
  spec.upstreams.push_back(Endpoint{addr("127.0.0.11"), 53});
  spec.local_resolvers = {LocalResolver{addr("127.0.0.11"), 0}};
  install_ruleset(spec);
  const std::string view = kernel_view();
  INFO(view);
  // It alone answers owned flows from inside; its own flows are not marked.
  CHECK_FALSE(contains(view, "ct state new meta skuid 0 ct mark set"));
  CHECK(contains(view, "ct direction reply ct mark & 0x20000000 != 0x00000000 meta skuid 0 accept"));
  CHECK(contains(view, "ct direction reply ct mark & 0x20000000 != 0x00000000 meta skuid != 0 drop"));
  // Its address is its own, whatever the port.
  CHECK(contains(view, "meta skuid != 0 ip saddr 127.0.0.11 drop comment \"only the local resolver sends from 127.0.0.11\""));
  // Its forwarded queries leave as they are, before DNS is dropped ...
  const auto pos = [&](const char* s) { return view.find(s); };
  CHECK(pos("meta skuid 0 udp dport 53 accept") < pos("udp dport 53 drop comment \"other DNS (udp) never leaves\""));
  CHECK(pos("meta skuid 0 tcp dport 53 accept") < pos("tcp dport 53 drop comment \"other DNS (tcp) never leaves\""));
  // ... and are not redirected back into dnsguard.
  CHECK(contains(view, "meta skuid != 4242 meta skuid != 0 udp dport 53 redirect to :5353"));
  CHECK(contains(view, "meta skuid != 4242 meta skuid != 0 tcp dport 53 redirect to :5353"));
}

TEST_CASE("install_ruleset: a local resolver on 127.0.0.1 does not claim the address everyone uses") {
  RulesetSpec spec = test_spec();
  spec.upstreams.push_back(Endpoint{addr("127.0.0.1"), 5353});
  spec.local_resolvers = {LocalResolver{addr("127.0.0.1"), 7}};
  install_ruleset(spec);
  const std::string view = kernel_view();
  INFO(view);
  CHECK(contains(view, "ct direction reply ct mark & 0x20000000 != 0x00000000 meta skuid 7 accept"));
  // dnsguard answers its clients from 127.0.0.1, and every local flow
  // comes from it: the rules about the upstream's address name its port.
  CHECK_FALSE(contains(view, "ip saddr 127.0.0.1 drop"));
  CHECK(contains(view, "meta skuid 4242 ip daddr 127.0.0.1 th dport 5353 ct mark & 0x20000000 == 0x00000000 drop"));
  CHECK(contains(view, "ip saddr 127.0.0.1 th sport 5353 ct direction original drop"));
  // The resolver serves that very endpoint: dnsguard's queries are delivered to it.
  CHECK_FALSE(contains(view, "ip daddr 127.0.0.1 udp dport 5353 drop"));
  CHECK(contains(view, "ip daddr 192.0.2.53 udp dport 53 drop"));  // control: other upstreams keep it
}

TEST_CASE("install_ruleset refuses a local resolver that is not a loopback upstream, or is dnsguard") {
  RulesetSpec spec = test_spec();
  spec.local_resolvers = {LocalResolver{addr("127.0.0.11"), 0}};  // not an upstream
  CHECK_THROWS_WITH_AS(install_ruleset(spec), "local resolver 127.0.0.11 is not a loopback upstream",
                       std::invalid_argument);
  spec.local_resolvers = {LocalResolver{addr("192.0.2.53"), 0}};  // an upstream, but not local
  CHECK_THROWS_AS(install_ruleset(spec), std::invalid_argument);
  spec.upstreams.push_back(Endpoint{addr("127.0.0.11"), 53});
  spec.local_resolvers = {LocalResolver{addr("127.0.0.11"), 4242}};
  CHECK_THROWS_WITH_AS(install_ruleset(spec), "local resolver 127.0.0.11 runs as dnsguard's uid 4242",
                       std::invalid_argument);
  spec.local_resolvers = {LocalResolver{addr("127.0.0.11"), 0}};
  CHECK_NOTHROW(install_ruleset(spec));  // control: the same spec with a valid owner installs
}

TEST_CASE("install_ruleset with the connection gate: redirect after the address check, QUIC refused") {
  RulesetSpec spec = test_spec();
  spec.gated_ports = {443, 80};
  spec.gate_port = 999;
  install_ruleset(spec);
  const std::string view = kernel_view();
  INFO(view);
  CHECK(contains(view, "chain gate_redirect {\n\t\ttype nat hook output priority mangle; policy accept;\n"
                       "\t\tip daddr @static4 tcp dport 443 accept"));
  CHECK(contains(view, "meta skuid != 4242 ip daddr @allow4 tcp dport 443 redirect to :999"));
  CHECK(contains(view, "meta skuid != 4242 ip6 daddr @allow6 tcp dport 443 redirect to :999"));
  CHECK(contains(view, "meta skuid != 4242 ip daddr @allow4 tcp dport 80 redirect to :999"));
  CHECK(contains(view, "ip daddr 127.0.0.1 tcp dport 999 accept"));
  CHECK(contains(view, "ip6 daddr ::1 tcp dport 999 accept"));
  CHECK(contains(view, "meta skuid != 4242 udp dport 443 reject with icmpx admin-prohibited"));
  // Static CIDRs are matched before the redirect (address-level by choice).
  CHECK(view.find("ip daddr @static4 tcp dport 443 accept") < view.find("ip daddr @allow4 tcp dport 443 redirect"));
  // Without gated ports: no gate chain, no QUIC rule (address-level only).
  install_ruleset(test_spec());
  const std::string plain = kernel_view();
  CHECK_FALSE(contains(plain, "gate_redirect"));
  CHECK_FALSE(contains(plain, "udp dport 443 reject"));
}

TEST_CASE("install_ruleset with a nested link: DNS from it to dnsguard, only it forwarded, masqueraded") {
  RulesetSpec spec = test_spec();
  spec.nested_link = "cagent-nd0";
  spec.nested_address = addr("100.127.255.253");
  spec.nested_subnet = Cidr{addr("100.127.255.252"), 30};
  install_ruleset(spec);
  const std::string view = kernel_view();
  INFO(view);
  CHECK(contains(view, "chain nested_dns {\n\t\ttype nat hook prerouting priority dstnat; policy accept;\n"
                       "\t\tiifname \"cagent-nd0\" udp dport 53 redirect to :5353"));
  CHECK(contains(view, "iifname \"cagent-nd0\" tcp dport 53 redirect to :5353"));
  CHECK(contains(view, "iifname \"cagent-nd0\" ip daddr 100.127.255.253 udp dport 5353 accept"));
  CHECK(contains(view, "iifname \"cagent-nd0\" ip daddr 100.127.255.253 tcp dport 5353 accept"));
  // Forwarded traffic: replies first, then nothing but the nested link,
  // then the unchanged destination policy (DNS dropped before the sets).
  CHECK(contains(view, "chain forward {\n\t\ttype filter hook forward priority filter; policy drop;\n"
                       "\t\tct state established,related accept comment \"established/related: traffic of allowed connections\"\n"
                       "\t\tiifname != \"cagent-nd0\" drop"));
  CHECK(contains(view, "oifname \"cagent-nd0\" ip daddr 100.127.255.252/30 accept"));
  CHECK(contains(view, "chain nested_masquerade {\n\t\ttype nat hook postrouting priority srcnat; policy accept;\n"
                       "\t\toifname != \"cagent-nd0\" ip saddr 100.127.255.252/30 masquerade"));
  // Before conntrack: from the link only its own subnet's sources (forged
  // packets never match the cage's flows; netns/nft/packets sends them).
  CHECK(contains(view, "chain nested_source {\n\t\ttype filter hook prerouting priority raw; policy accept;\n"
                       "\t\tiifname != \"cagent-nd0\" accept"));
  CHECK(contains(view, "ip saddr 100.127.255.252/30 accept comment \"from the nested link with the link's own source\""));
  // The input rule sits before the final counter (policy drop behind it).
  CHECK(view.find("ip daddr 100.127.255.253 udp dport 5353 accept") < view.find("count refused inbound traffic"));
  const std::size_t fwd = view.find("chain forward {");
  CHECK(view.find("iifname != \"cagent-nd0\" drop", fwd) < view.find("udp dport 53 drop", fwd));

  // A name that does not fit IFNAMSIZ is refused before anything is sent.
  spec.nested_link = "a-name-too-long-x";
  CHECK_THROWS_AS(install_ruleset(spec), std::invalid_argument);
  CHECK(kernel_view() == view);

  // Without a nested link nothing of it is there (the plain ruleset).
  install_ruleset(test_spec());
  const std::string plain = kernel_view();
  CHECK_FALSE(contains(plain, "nested"));
  CHECK_FALSE(contains(plain, "iifname"));
  CHECK_FALSE(contains(plain, "masquerade"));
}

namespace {
// Routes for documentation destinations in this namespace,
// so a connect() reaches the output chain, and loopback up so the reset
// reaches the socket; idempotent. (A veth pair: this
// kernel may lack the dummy driver.)
void documentation_routes() {
  run("ip link set lo up; ip link add cagent-d0 type veth peer name cagent-d1; ip link set cagent-d1 up; ip link set cagent-d0 up; "
      "ip addr add 192.0.2.1/24 dev cagent-d0; "
      "ip -6 addr add 2001:db8:77::1/64 dev cagent-d0 nodad");
}

// One connect() (TCP) or sendto() (UDP) to text:port; the errno it got.
int attempt(const char* text, std::uint16_t port, int type) {
  const Address a = addr(text);
  sockaddr_storage ss{};
  socklen_t len = 0;
  if (a.family == Family::v4) {
    auto* sin = reinterpret_cast<sockaddr_in*>(&ss);
    sin->sin_family = AF_INET;
    sin->sin_port = htons(port);
    std::memcpy(&sin->sin_addr, a.bytes.data(), 4);
    len = sizeof *sin;
  } else {
    auto* sin6 = reinterpret_cast<sockaddr_in6*>(&ss);
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons(port);
    std::memcpy(&sin6->sin6_addr, a.bytes.data(), 16);
    len = sizeof *sin6;
  }
  const int fd = socket(ss.ss_family, type, 0);
  REQUIRE(fd >= 0);
  // A refusal is immediate; a packet that got through would wait for a
  // neighbour that is not there: fail in 2 s instead of hanging.
  const timeval limit{2, 0};
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &limit, sizeof limit);
  int rc = type == SOCK_STREAM ? connect(fd, reinterpret_cast<sockaddr*>(&ss), len)
                               : static_cast<int>(sendto(fd, "x", 1, 0, reinterpret_cast<sockaddr*>(&ss), len));
  const int err = rc < 0 ? errno : 0;
  close(fd);
  return err;
}

std::uint64_t packets_to(const Refusals& r, const char* text, std::uint8_t proto, std::uint16_t port) {
  const Address a = addr(text);
  for (const RefusedFlow& f : r.flows)
    if (f.addr == a && f.l4proto == proto && f.port == port) return f.packets;
  return 0;
}
}  // namespace

TEST_CASE("refused traffic is counted: every packet in a named counter, the first destinations itemized") {
  install_ruleset(test_spec());
  documentation_routes();
  const std::string view = kernel_view();
  INFO(view);
  CHECK(contains(view, "counter refused {"));
  CHECK(contains(view, "set refused4 {\n\t\ttype ipv4_addr . inet_proto . inet_service\n\t\tsize 1024\n\t\tflags dynamic\n"));
  CHECK(contains(view, "set refused6 {\n\t\ttype ipv6_addr . inet_proto . inet_service\n"));
  RefusalReader reader(test_spec());
  const Refusals before = reader.read();
  CHECK(before.flows.empty());
  for (int i = 0; i < 3; ++i) CHECK(attempt("192.0.2.77", 8443, SOCK_STREAM) == ECONNREFUSED);
  for (int i = 0; i < 2; ++i) CHECK(attempt("192.0.2.77", 9999, SOCK_DGRAM) == EPERM);
  CHECK(attempt("2001:db8:77::5", 443, SOCK_STREAM) == ECONNREFUSED);
  // Control, same ruleset: the same datagram to an allowed destination is
  // sent and not counted, so the refusals above are the ruleset's decision
  // about those destinations, not traffic that cannot leave at all.
  SetUpdater up("cagent", "allow4", "allow6");
  const SetElement allowed[] = {{addr("192.0.2.79"), 60s}, {addr("2001:db8:77::6"), 60s}};
  up.add(allowed);
  CHECK(attempt("192.0.2.79", 9999, SOCK_DGRAM) == 0);
  CHECK(attempt("2001:db8:77::6", 9999, SOCK_DGRAM) == 0);
  const Refusals after = reader.read();
  INFO(kernel_view());
  CHECK(packets_to(after, "192.0.2.77", IPPROTO_TCP, 8443) == 3);
  CHECK(packets_to(after, "192.0.2.77", IPPROTO_UDP, 9999) == 2);
  CHECK(packets_to(after, "2001:db8:77::5", IPPROTO_TCP, 443) == 1);
  CHECK(packets_to(after, "192.0.2.79", IPPROTO_UDP, 9999) == 0);
  CHECK(packets_to(after, "2001:db8:77::6", IPPROTO_UDP, 9999) == 0);
  CHECK(after.flows.size() == 3);
  // The namespace's own housekeeping (MLD, …) may be refused too: at least ours.
  CHECK(after.total - before.total >= 6);
}

TEST_CASE("refused traffic: a full set itemizes no more, the counter still counts and the reject still happens") {
  RulesetSpec spec = test_spec();
  spec.refused_size = 2;
  install_ruleset(spec);
  documentation_routes();
  RefusalReader reader(spec);
  const Refusals before = reader.read();
  for (int port = 1001; port <= 1004; ++port) CHECK(attempt("192.0.2.78", static_cast<std::uint16_t>(port), SOCK_STREAM) == ECONNREFUSED);
  const Refusals after = reader.read();
  std::uint64_t itemized = 0;
  for (const RefusedFlow& f : after.flows) itemized += f.packets;
  CHECK(after.flows.size() == 2);
  CHECK(itemized == 2);
  CHECK(after.total - before.total >= 4);
}

TEST_CASE("RefusalReader: a table without the counter is an error, not \"nothing refused\"") {
  install_ruleset(test_spec());
  CHECK_NOTHROW(RefusalReader(test_spec()).read());  // control: with the table it reads
  run("nft delete table inet cagent");
  RefusalReader reader(test_spec());
  CHECK_THROWS_AS(reader.read(), NetlinkError);
}

TEST_CASE("install_ruleset again: same kernel view, no duplicates, elements cleared") {
  install_ruleset(test_spec());
  SetUpdater up("cagent", "allow4", "allow6");
  const SetElement e[] = {{addr("198.51.100.10"), 60s}};
  up.add(e);
  REQUIRE(up.list(Family::v4).size() == 1);
  const std::string before = kernel_view();
  install_ruleset(test_spec());
  install_ruleset(test_spec());
  const std::string after = kernel_view();
  // The element is gone (a fresh table); otherwise identical.
  CHECK(up.list(Family::v4).empty());
  CHECK(contains(before, "elements = { 198.51.100.10"));
  CHECK(run("nft list tables") == "table inet cagent\n");
  // The refusal counter may have moved meanwhile (the namespace's own
  // IPv6 housekeeping): compare without its numbers.
  std::string before_without_elements = without_counts(before);
  const std::size_t at = before_without_elements.find("\t\telements = { 198.51.100.10");
  REQUIRE(at != std::string::npos);
  before_without_elements.erase(at, before_without_elements.find('\n', at) + 1 - at);
  CHECK(without_counts(after) == before_without_elements);
}

TEST_CASE("static CIDRs: overlapping ones merge, empty lists leave empty sets") {
  RulesetSpec spec = test_spec();
  spec.static_cidrs = {Cidr{addr("198.51.100.0"), 25}, Cidr{addr("198.51.100.128"), 25},
                       Cidr{addr("192.0.2.7"), 32}, Cidr{addr("2001:db8::"), 32}, Cidr{addr("2001:db8:5::"), 48}};
  install_ruleset(spec);
  std::string view = kernel_view();
  INFO(view);
  CHECK(contains(view, "elements = { 192.0.2.7, 198.51.100.0/24 }"));
  CHECK(contains(view, "elements = { 2001:db8::/32 }"));
  spec.static_cidrs.clear();
  install_ruleset(spec);
  view = kernel_view();
  CHECK(contains(view, "set static4 {\n\t\ttype ipv4_addr\n\t\tflags constant,interval\n\t}"));
}

TEST_CASE("SetUpdater: elements carry the requested timeouts (v4 and v6 in one call)") {
  install_ruleset(test_spec());
  SetUpdater up("cagent", "allow4", "allow6");
  const SetElement e[] = {{addr("198.51.100.10"), 30s}, {addr("2001:db8::10"), 300s}, {addr("198.51.100.11"), 3600s}};
  up.add(e);
  const auto v4 = up.list(Family::v4);
  const auto v6 = up.list(Family::v6);
  REQUIRE(v4.size() == 2);
  REQUIRE(v6.size() == 1);
  const ListedElement* a = find(v4, addr("198.51.100.10"));
  const ListedElement* b = find(v4, addr("198.51.100.11"));
  REQUIRE(a != nullptr);
  REQUIRE(b != nullptr);
  // The kernel holds each set_grace (2 s) longer than asked: the set
  // outlives every client's copy of the answer.
  CHECK(a->timeout == 30s + set_grace);
  CHECK(b->timeout == 3600s + set_grace);
  CHECK(v6[0].timeout == 300s + set_grace);
  // Remaining time: at most the timeout, and not much less (generous bound:
  // this is a correctness check, not a timing one).
  CHECK(a->expires <= 30s + set_grace);
  CHECK(a->expires > 30s);
  CHECK(v6[0].expires > 300s);
  // The kernel's own tool agrees.
  const std::string view = kernel_view();
  CHECK(contains(view, "198.51.100.10 timeout 32s expires"));
  CHECK(contains(view, "2001:db8::10 timeout 5m2s expires"));
}

TEST_CASE("SetUpdater: refresh extends and never shortens") {
  install_ruleset(test_spec());
  for (const auto mode : {SetUpdater::RefreshMode::automatic, SetUpdater::RefreshMode::expiration,
                          SetUpdater::RefreshMode::delete_add}) {
    CAPTURE(static_cast<int>(mode));
    SetUpdater up("cagent", "allow4", "allow6");
    up.set_refresh_mode(mode);
    const Address a = addr("198.51.100.20");
    const Address b = addr("2001:db8::20");
    const SetElement first[] = {{a, 10s}, {b, 10s}};
    up.add(first);
    const SetElement longer[] = {{a, 100s}, {b, 200s}};
    up.add(longer);
    auto v4 = up.list(Family::v4);
    auto v6 = up.list(Family::v6);
    REQUIRE(find(v4, a) != nullptr);
    REQUIRE(find(v6, b) != nullptr);
    CHECK(find(v4, a)->expires > 90s);
    CHECK(find(v4, a)->timeout == 100s + set_grace);
    CHECK(find(v6, b)->expires > 190s);
    CHECK(v4.size() == 1);  // refreshed in place, not duplicated
    CHECK(v6.size() == 1);

    const SetElement shorter[] = {{a, 20s}, {b, 5s}};
    up.add(shorter);
    v4 = up.list(Family::v4);
    v6 = up.list(Family::v6);
    CHECK(find(v4, a)->expires > 90s);   // not shortened to 20 s
    CHECK(find(v4, a)->timeout == 100s + set_grace);
    CHECK(find(v6, b)->expires > 190s);
    install_ruleset(test_spec());  // clean slate for the next mode
  }
}

TEST_CASE("SetUpdater: floors skip the kernel and report what it holds") {
  install_ruleset(test_spec());
  SetUpdater up("cagent", "allow4", "allow6");
  const Address a = addr("198.51.100.40");
  const Address b = addr("2001:db8::40");
  std::array<std::chrono::milliseconds, 2> held{};
  // First insert: exactly the timeout, whatever the floor.
  const SetElement first[] = {{a, 300s, 150s}, {b, 300s, 150s}};
  up.add(first, held);
  CHECK(held[0] == 300s);
  CHECK(held[1] == 300s);
  auto v4 = up.list(Family::v4);
  REQUIRE(find(v4, a) != nullptr);
  CHECK(find(v4, a)->timeout == 300s + set_grace);
  // Held >= floor: nothing sent (the kernel keeps timeout 300 s although
  // 3000 s is asked for), and held reports the remembered remaining time.
  const SetElement again[] = {{a, 3000s, 200s}, {b, 400s, 400s}};
  up.add(again, held);
  CHECK(held[0] <= 300s);
  CHECK(held[0] > 290s);
  CHECK(find(up.list(Family::v4), a)->timeout == 300s + set_grace);
  // b's floor is above what is held: it is refreshed to exactly 400 s.
  CHECK(held[1] == 400s);
  CHECK(find(up.list(Family::v6), b)->timeout == 400s + set_grace);
  // The kernel's remaining time is never below what add() reported: it is
  // the grace above it.
  CHECK(find(up.list(Family::v4), a)->expires >= held[0] + set_grace - 100ms);
  // No floor (the default): exact extension, as before.
  const SetElement exact[] = {{a, 301s}};
  std::array<std::chrono::milliseconds, 1> one{};
  up.add(exact, one);
  CHECK(one[0] == 301s);
  CHECK(find(up.list(Family::v4), a)->timeout == 301s + set_grace);
  // held must match the elements.
  CHECK_THROWS_AS(up.add(exact, held), std::invalid_argument);
}

TEST_CASE("SetUpdater: the same address twice in one call keeps the longer expiry") {
  install_ruleset(test_spec());
  SetUpdater up("cagent", "allow4", "allow6");
  const Address a = addr("198.51.100.30");
  const SetElement e[] = {{a, 40s}, {a, 400s}, {a, 4s}};
  up.add(e);
  const auto v4 = up.list(Family::v4);
  REQUIRE(v4.size() == 1);
  CHECK(v4[0].timeout == 400s + set_grace);
}

TEST_CASE("SetUpdater: remembered expiries go stale when elements vanish; a new updater learns the kernel's view") {
  install_ruleset(test_spec());
  SetUpdater up("cagent", "allow4", "allow6");
  const SetElement e[] = {{addr("198.51.100.40"), 60s}};
  up.add(e);
  REQUIRE(up.list(Family::v4).size() == 1);
  install_ruleset(test_spec());  // behind the updater's back
  // A request that is not later than what the updater remembers is skipped
  // although the kernel no longer holds the address: the documented caveat.
  const SetElement shorter[] = {{e[0].addr, 30s}};
  up.add(shorter);
  CHECK(up.list(Family::v4).empty());
  SetUpdater fresh("cagent", "allow4", "allow6");  // learns the (empty) sets at construction
  fresh.add(shorter);
  CHECK(fresh.list(Family::v4).size() == 1);
}

// The refresh path of kernels before 6.12 (Debian 12, Ubuntu 22.04 and
// 24.04: most users) is delete + add; these run it on purpose here.
TEST_CASE("SetUpdater, pre-6.12 path: a restarted updater refreshes what the kernel still holds") {
  install_ruleset(test_spec());
  const Address a = addr("198.51.100.70");
  {
    SetUpdater first("cagent", "allow4", "allow6");
    first.set_refresh_mode(SetUpdater::RefreshMode::delete_add);
    const SetElement e[] = {{a, 5s}};
    first.add(e);
  }
  // A new process (dnsguard restarted): it must learn that the kernel holds
  // the address, or its add would be silently ignored by such a kernel and
  // the old 5 s expiry would stay while it promises 60 s.
  SetUpdater second("cagent", "allow4", "allow6");
  second.set_refresh_mode(SetUpdater::RefreshMode::delete_add);
  const SetElement longer[] = {{a, 60s}};
  std::array<std::chrono::milliseconds, 1> held{};
  second.add(longer, held);
  CHECK(held[0] == 60s);
  const auto v4 = second.list(Family::v4);
  REQUIRE(v4.size() == 1);
  CHECK(v4[0].timeout == 60s + set_grace);
  CHECK(v4[0].expires > 60s);
}

TEST_CASE("SetUpdater, pre-6.12 path: a refresh at the element's kernel expiry lands either way") {
  install_ruleset(test_spec());
  SetUpdater up("cagent", "allow4", "allow6");
  up.set_refresh_mode(SetUpdater::RefreshMode::delete_add);
  const Address a = addr("198.51.100.71");
  const Address b = addr("198.51.100.72");
  // Promised for 1 s, so the kernel holds them 1 s + set_grace.
  const SetElement short_lived[] = {{a, 1s}, {b, 1s}};
  up.add(short_lived);
  // Make one of them vanish from the kernel at once (as an expiry a jiffy
  // early would): the updater still believes in it.
  run("nft delete element inet cagent allow4 '{ 198.51.100.72 }'");
  // Wait until both are within expiry_uncertainty of the kernel expiry
  // (waiting for time to pass is what this test is about; bounded).
  const auto kernel_expiry = std::chrono::steady_clock::now() + 1s + set_grace;
  std::this_thread::sleep_until(kernel_expiry - detail::expiry_uncertainty + 200ms);
  // One present, one absent: neither may fail the transaction (ENOENT) nor be
  // silently ignored.
  const SetElement again[] = {{a, 60s}, {b, 60s}};
  std::array<std::chrono::milliseconds, 2> held{};
  up.add(again, held);
  CHECK(held[0] == 60s);
  CHECK(held[1] == 60s);
  const auto v4 = up.list(Family::v4);
  REQUIRE(find(v4, a) != nullptr);
  REQUIRE(find(v4, b) != nullptr);
  CHECK(find(v4, a)->expires > 60s);
  CHECK(find(v4, b)->expires > 60s);
}

TEST_CASE("SetUpdater: 10 000 elements in one call") {
  RulesetSpec spec = test_spec();
  install_ruleset(spec);
  SetUpdater up("cagent", "allow4", "allow6");
  std::vector<SetElement> many;
  // All of 198.51.100.0/24 and 203.0.113.0/24 for IPv4, the rest IPv6.
  for (const char* base : {"198.51.100.0", "203.0.113.0"}) {
    for (int i = 0; i < 256; ++i) {
      Address a = addr(base);
      a.bytes[3] = static_cast<std::uint8_t>(i);
      many.push_back({a, 600s});
    }
  }
  for (std::uint32_t i = 0; many.size() < 10000; ++i) many.push_back({v6_doc(i), 600s});
  up.add(many);
  const auto v4 = up.list(Family::v4);
  const auto v6 = up.list(Family::v6);
  CHECK(v4.size() == 512);
  CHECK(v6.size() == 10000 - 512);
  std::set<std::array<std::uint8_t, 16>> seen;
  for (const auto& e : v6) seen.insert(e.addr.bytes);
  CHECK(seen.size() == v6.size());
  CHECK(std::all_of(v6.begin(), v6.end(), [](const ListedElement& e) { return e.timeout == 600s + set_grace; }));
  // Again with longer timeouts: 10 000 refreshes in one call.
  for (auto& e : many) e.timeout = 1200s;
  up.add(many);
  const auto again = up.list(Family::v6);
  CHECK(again.size() == 10000 - 512);
  CHECK(std::all_of(again.begin(), again.end(), [](const ListedElement& e) { return e.expires > 1100s; }));
}

TEST_CASE("SetUpdater: a missing set is a clear error that changes nothing") {
  install_ruleset(test_spec());
  const std::string before = kernel_view();
  SetUpdater bad("cagent", "allow4", "no_such_set_here");
  const SetElement e[] = {{addr("198.51.100.50"), 60s}, {addr("2001:db8::50"), 60s}};
  try {
    bad.add(e);
    FAIL("add to a missing set succeeded");
  } catch (const NetlinkError& err) {
    const std::string what = err.what();
    INFO(what);
    CHECK(err.error() == ENOENT);
    CHECK(contains(what, "add elements to inet cagent"));
    CHECK(contains(what, "add elements to set no_such_set_here"));
  }
  // One transaction: the valid IPv4 half did not land either.
  CHECK(kernel_view() == before);
  // And the updater did not remember it: once the set exists, it is sent.
  SetUpdater good("cagent", "allow4", "allow6");
  CHECK(good.list(Family::v4).empty());
  const SetElement v4only[] = {e[0]};
  bad.add(v4only);
  CHECK(good.list(Family::v4).size() == 1);

  CHECK_THROWS_AS(bad.list(Family::v6), NetlinkError);
}

TEST_CASE("SetUpdater: a timeout of 0 is refused before anything is sent") {
  install_ruleset(test_spec());
  SetUpdater up("cagent", "allow4", "allow6");
  const SetElement e[] = {{addr("198.51.100.60"), 60s}, {addr("198.51.100.61"), 0s}};
  CHECK_THROWS_AS(up.add(e), std::invalid_argument);
  CHECK(up.list(Family::v4).empty());
}

TEST_CASE("install_ruleset: a bad name is a clear error and the old ruleset stays") {
  install_ruleset(test_spec());
  const std::string before = kernel_view();
  RulesetSpec spec = test_spec();
  spec.set6 = std::string(300, 'x');  // longer than NFT_NAME_MAXLEN
  try {
    install_ruleset(spec);
    FAIL("install with a 300-character set name succeeded");
  } catch (const NetlinkError& err) {
    const std::string what = err.what();
    INFO(what);
    CHECK(contains(what, "install ruleset inet cagent"));
    CHECK(contains(what, "add set xxxx"));
  }
  CHECK(kernel_view() == before);
}

TEST_CASE("end_connections_to: ends exactly the flows to the given addresses, quickly however many") {
  install_ruleset(test_spec());  // conntrack tracks this namespace from here on
  run("ip link set lo up");
  const int s = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  REQUIRE(s >= 0);
  const auto send_to = [&](const char* host, std::uint16_t port) {
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(port);
    REQUIRE(::inet_pton(AF_INET, host, &to.sin_addr) == 1);
    (void)::sendto(s, "x", 1, 0, reinterpret_cast<const sockaddr*>(&to), sizeof to);  // a refusal is fine
  };
  // A table the agent filled (flows it keeps), and 100 flows to the address taken back.
  for (std::uint16_t p = 1; p <= 60000; ++p) send_to("127.0.0.1", p);
  for (std::uint16_t p = 1; p <= 100; ++p) send_to("127.0.0.9", p);
  ::close(s);
  // Taken back with as many others as a set holds (a wildcard's addresses).
  std::vector<Address> gone;
  for (int i = 0; i < 65535; ++i) {
    Address a;
    a.bytes = {203, 0, static_cast<std::uint8_t>(i / 256), static_cast<std::uint8_t>(i % 256)};
    gone.push_back(a);
  }
  gone.push_back(addr("127.0.0.9"));
  const auto t0 = std::chrono::steady_clock::now();
  CHECK(end_connections_to(gone) == 100);
  const auto took = std::chrono::steady_clock::now() - t0;
  MESSAGE("took " << std::chrono::duration_cast<std::chrono::milliseconds>(took).count() << " ms");
  // dnsguard's one thread waits for it: a linear scan per entry took seconds here.
  CHECK(took < 2s);
  CHECK(end_connections_to(gone) == 0);  // nothing left to end
  CHECK(end_connections_to(std::vector<Address>{addr("127.0.0.1")}) >= 60000);  // the others were kept
}



int main(int argc, char** argv) {
  // Everything below happens in a namespace of our own; without the
  // privilege to make one, these tests cannot run at all.
  if (unshare(CLONE_NEWNET) != 0) {
    std::cout << "skipped: needs root (CAP_NET_ADMIN) to create a network namespace\n";
    return 77;
  }
  doctest::Context ctx(argc, argv);
  return ctx.run();
}
