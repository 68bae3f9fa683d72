// The connection gate's part of the cage ruleset: new TCP connections to
// the gated ports of an allowed address are redirected to dnsguard's gate
// listener (chain gate_redirect), the output chain admits exactly those
// redirected connections on loopback, and QUIC is refused so TLS cannot
// go around the gate. Exists only when RulesetSpec::gated_ports is set.

#include <tuple>

#include "nft/ruleset_builder.hpp"

namespace cagent::nft::build {
namespace {

// New TCP connections of every uid but dnsguard's to a gated port of an
// address the sets admit go to the gate instead. Only addresses
// in the sets: anything else is refused by the filter as before, so the
// gate never sees a connection the address check would not have let out.
// NAT chains see only a connection's first packet. Static CIDRs are
// address-level by the user's choice: they are not redirected.
void gate_redirect(RulesetBatch& b, const RulesetSpec& spec) {
  const char* nat = "gate_redirect";
  // The secret relay connects where the gate's hand-off said: not again
  // through the gate (the filter still admits only addresses in the sets).
  if (spec.relay_port != 0) {
    b.add(nat, b.rule(nat, "the secret relay's own connections").skuid_is(spec.relay_uid).accept());
  }
  for (const std::uint16_t port : spec.gated_ports) {
    const std::string p = std::to_string(port);
    b.add(nat, b.rule(nat, "static CIDRs stay address-level (IPv4, port " + p + ")")
                   .daddr(Family::v4).in_set(spec.static_set4, static4_id).l4proto(IPPROTO_TCP).dport(port).accept());
    b.add(nat, b.rule(nat, "static CIDRs stay address-level (IPv6, port " + p + ")")
                   .daddr(Family::v6).in_set(spec.static_set6, static6_id).l4proto(IPPROTO_TCP).dport(port).accept());
    for (const auto& [family, set, id] : {std::tuple{Family::v4, &spec.set4, set4_id}, std::tuple{Family::v6, &spec.set6, set6_id}}) {
      b.add(nat, b.rule(nat, std::string("TCP ") + p + " of other uids to the gate (" +
                                 (family == Family::v4 ? "IPv4" : "IPv6") + ")")
                     .meta(NFT_META_SKUID)
                     .cmp(NFT_CMP_NEQ, &spec.dnsguard_uid, 4)
                     .daddr(family)
                     .in_set(*set, id)
                     .l4proto(IPPROTO_TCP)
                     .dport(port)
                     .redirect_to_port(spec.gate_port));
    }
  }
}


class GateFeature final : public RulesetFeature {
 public:
  explicit GateFeature(const RulesetSpec& spec) : spec_(spec) {}

  // Same priority as dns_redirect: ahead of Docker's own DNAT (see there).
  void chains(RulesetBatch& b) const override {
    b.chain("gate_redirect", "nat", NF_INET_LOCAL_OUT, dns_redirect_priority, NF_ACCEPT);
  }

  // Connections redirected to the gate (chain gate_redirect): accepted for
  // the same reason as the DNS redirect (their `oif` still names the
  // original device). The gate itself refuses a connection that was not
  // redirected (no original destination).
  void output_redirected(RulesetBatch& b) const override {
    const char* out = "output";
    for (const Address* lo : {&loopback4, &loopback6}) {
      b.add(out, b.rule(out, std::string("TCP redirected to the connection gate on ") + to_string(*lo))
                     .daddr_is(*lo)
                     .l4proto(IPPROTO_TCP)
                     .dport(spec_.gate_port)
                     .accept());
    }
    // QUIC would carry TLS past the gate: refused at once, so clients fall
    // back to TCP (HTTP/3 is always optional).
    b.add(out, b.rule(out, "QUIC (udp 443) refused: TLS goes through the gate")
                   .skuid_not(spec_.dnsguard_uid)
                   .l4proto(IPPROTO_UDP)
                   .dport(443)
                   .reject(NFT_REJECT_ICMPX_UNREACH, NFT_REJECT_ICMPX_ADMIN_PROHIBITED));
  }

  void own_rules(RulesetBatch& b) const override { gate_redirect(b, spec_); }

 private:
  const RulesetSpec& spec_;
};

}  // namespace

std::unique_ptr<RulesetFeature> gate_feature(const RulesetSpec& spec) {
  if (spec.gated_ports.empty()) return nullptr;
  return std::make_unique<GateFeature>(spec);
}

}  // namespace cagent::nft::build
