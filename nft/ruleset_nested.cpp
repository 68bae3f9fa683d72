// The nested Docker engine's part of the cage ruleset (sysbox only; see
// RulesetSpec::nested_link). Exists only when the spec names the link.

#include <stdexcept>

#include "nft/ruleset_builder.hpp"

namespace cagent::nft::build {
namespace {

// Nested Docker. The engine runs in a sandbox network namespace
// joined to the cage by a veth pair (spec.nested_link is the cage's end,
// spec.nested_address its address). What nested containers send leaves the
// sandbox as *forwarded* traffic: it passes the forward chain, so it meets
// the cage's own destination policy, and is masqueraded out of the uplink.
// Their DNS never gets that far: every port-53 packet arriving on the link
// is redirected to dnsguard (listening on nested_address), so nested
// containers resolve through the same allowlist and their answers land in
// the same sets before they are released. IPv4 only: the sandbox has no
// IPv6 (the forward chain refuses any IPv6 it might try anyway).
// Everything here exists only when spec.nested_link is set.

constexpr std::int32_t nested_dstnat_priority = -100;  // NF_IP_PRI_NAT_DST
constexpr std::int32_t nested_srcnat_priority = 100;   // NF_IP_PRI_NAT_SRC

constexpr std::int32_t nested_raw_priority = -300;     // NF_IP_PRI_RAW: before conntrack

void nested_chains(RulesetBatch& b) {
  b.chain("nested_source", "filter", NF_INET_PRE_ROUTING, nested_raw_priority, NF_ACCEPT);
  b.chain("nested_dns", "nat", NF_INET_PRE_ROUTING, nested_dstnat_priority, NF_ACCEPT);
  b.chain("nested_masquerade", "nat", NF_INET_POST_ROUTING, nested_srcnat_priority, NF_ACCEPT);
}

// Prerouting, before conntrack: what arrives on the link comes from the
// link's subnet, IPv4, or is dropped. The sandbox's root has raw sockets in
// its own namespace and the cage's reverse-path filter is off (a
// container's default): a packet forged with another source — say, the
// upstream resolver's, to dnsguard's connected socket, whose port the
// agent reads in /proc/net/udp — would match the reply direction of the
// cage's own flow, pass as established and be delivered (a forged answer
// puts any address in the allow sets), or be forwarded out unmasqueraded.
void nested_source_check(RulesetBatch& b, const RulesetSpec& spec) {
  const char* raw = "nested_source";
  b.add(raw, b.rule(raw, "not from the nested link: not this chain's business")
                 .ifname(NFT_META_IIFNAME, NFT_CMP_NEQ, spec.nested_link)
                 .accept());
  b.add(raw, b.rule(raw, "from the nested link with the link's own source")
                 .saddr_in(spec.nested_subnet)
                 .accept());
  b.add(raw, b.rule(raw, "from the nested link with any other source (forged), or not IPv4").drop());
}

// Prerouting: whatever resolver a nested container names (the engine's
// --dns, one of its own, a public one), its query lands on dnsguard. A
// redirect in prerouting targets the primary address of the incoming
// interface: nested_address.
void nested_dns_redirect(RulesetBatch& b, const RulesetSpec& spec) {
  const char* nat = "nested_dns";
  for (std::uint8_t proto : {std::uint8_t{IPPROTO_UDP}, std::uint8_t{IPPROTO_TCP}}) {
    b.add(nat, b.rule(nat, std::string("nested DNS (") + (proto == IPPROTO_UDP ? "udp" : "tcp") + ") to dnsguard")
                   .ifname(NFT_META_IIFNAME, NFT_CMP_EQ, spec.nested_link)
                   .l4proto(proto)
                   .dport(dns_port)
                   .redirect_to_port(spec.listen_port));
  }
}

// Input: from the link, exactly dnsguard's endpoint on it (the redirected
// DNS above). Nothing else of the cage — the gate, Docker's resolver,
// anything the agent listens on — is reachable from the sandbox.
void nested_input(RulesetBatch& b, const RulesetSpec& spec) {
  const char* in = "input";
  for (std::uint8_t proto : {std::uint8_t{IPPROTO_UDP}, std::uint8_t{IPPROTO_TCP}}) {
    b.add(in, b.rule(in, std::string("nested DNS (") + (proto == IPPROTO_UDP ? "udp" : "tcp") + ") redirected to dnsguard")
                  .ifname(NFT_META_IIFNAME, NFT_CMP_EQ, spec.nested_link)
                  .daddr_is(spec.nested_address)
                  .l4proto(proto)
                  .dport(spec.listen_port)
                  .accept());
  }
}

// Forward: only the nested link is routed. Without this rule, with
// forwarding on, a neighbour on the uplink could use the cage as a router
// to the allowed destinations (its replies still pass as established).
void nested_forward(RulesetBatch& b, const RulesetSpec& spec) {
  const char* fwd = "forward";
  b.add(fwd, b.rule(fwd, "forwarded traffic comes only from the nested link")
                 .ifname(NFT_META_IIFNAME, NFT_CMP_NEQ, spec.nested_link)
                 .drop());
}

// Output: the agent may reach the sandbox's end of the link (ports its
// nested containers publish there). The sandbox's own egress is policed by
// the forward chain, so this opens no way out.
void nested_output(RulesetBatch& b, const RulesetSpec& spec) {
  const char* out = "output";
  b.add(out, b.rule(out, "the nested sandbox's end of its link")
                 .ifname(NFT_META_OIFNAME, NFT_CMP_EQ, spec.nested_link)
                 .daddr_in(spec.nested_subnet)
                 .accept());
}

// Postrouting: the sandbox's subnet leaves as the cage's own address (the
// uplink network knows no route back to it).
void nested_masquerade(RulesetBatch& b, const RulesetSpec& spec) {
  const char* nat = "nested_masquerade";
  b.add(nat, b.rule(nat, "nested sandbox masqueraded out of the cage")
                 .ifname(NFT_META_OIFNAME, NFT_CMP_NEQ, spec.nested_link)
                 .saddr_in(spec.nested_subnet)
                 .masquerade());
}

void check_nested(const RulesetSpec& spec) {
  if (spec.nested_link.size() >= ifname_size) {
    throw std::invalid_argument("nested link name \"" + spec.nested_link + "\" is longer than " +
                                std::to_string(ifname_size - 1) + " characters");
  }
  if (spec.nested_address.family != Family::v4 || spec.nested_subnet.base.family != Family::v4) {
    throw std::invalid_argument("the nested link is IPv4 only");
  }
}


class NestedFeature final : public RulesetFeature {
 public:
  explicit NestedFeature(const RulesetSpec& spec) : spec_(spec) {}
  void check() const override { check_nested(spec_); }
  void chains(RulesetBatch& b) const override { nested_chains(b); }
  void output_local(RulesetBatch& b) const override { nested_output(b, spec_); }
  void forward_first(RulesetBatch& b) const override { nested_forward(b, spec_); }
  void input_local(RulesetBatch& b) const override { nested_input(b, spec_); }
  void own_rules(RulesetBatch& b) const override {
    nested_source_check(b, spec_);
    nested_dns_redirect(b, spec_);
    nested_masquerade(b, spec_);
  }

 private:
  const RulesetSpec& spec_;
};

}  // namespace

std::unique_ptr<RulesetFeature> nested_feature(const RulesetSpec& spec) {
  if (spec.nested_link.empty()) return nullptr;
  return std::make_unique<NestedFeature>(spec);
}

}  // namespace cagent::nft::build
