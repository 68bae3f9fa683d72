// The cage ruleset: one transaction that replaces `inet <table>` with the
// sets, chains and rules of nft/README.md "The ruleset". Every rule carries a
// comment (rule userdata) so `nft list table inet cagent` explains itself.

//
// Optional parts (the connection gate, the nested Docker link) live in
// ruleset_gate.cpp and ruleset_nested.cpp; the builder is
// ruleset_builder.hpp.

#include <cerrno>
#include <initializer_list>
#include <stdexcept>
#include <string>
#include <vector>

#include "nft/ruleset_builder.hpp"

namespace cagent::nft {

namespace {

using namespace build;

using Features = std::vector<std::unique_ptr<RulesetFeature>>;

// Accept new connections to the allowed destinations (shared by output and
// forward): the dnsguard-fed sets and the constant CIDR sets.
void allowed_destinations(RulesetBatch& b, const char* chain, const RulesetSpec& spec) {
  b.add(chain, b.rule(chain, "allowed: resolved by dnsguard (IPv4)").daddr(Family::v4).in_set(spec.set4, set4_id).accept());
  b.add(chain, b.rule(chain, "allowed: resolved by dnsguard (IPv6)").daddr(Family::v6).in_set(spec.set6, set6_id).accept());
  b.add(chain, b.rule(chain, "allowed: static CIDRs (IPv4)").daddr(Family::v4).in_set(spec.static_set4, static4_id).accept());
  b.add(chain, b.rule(chain, "allowed: static CIDRs (IPv6)").daddr(Family::v6).in_set(spec.static_set6, static6_id).accept());
}

// DNS that no earlier rule accepted (output: not redirected to dnsguard;
// forward: any) never leaves, whatever its destination.
void other_dns_never_leaves(RulesetBatch& b, const char* chain) {
  for (std::uint8_t proto : {std::uint8_t{IPPROTO_UDP}, std::uint8_t{IPPROTO_TCP}}) {
    b.add(chain, b.rule(chain, proto == IPPROTO_UDP ? "other DNS (udp) never leaves" : "other DNS (tcp) never leaves")
                     .l4proto(proto)
                     .dport(dns_port)
                     .drop());
  }
}

// The tail of both filter chains: count and log what is refused, then reject
// loudly so tools fail at once instead of waiting for a timeout.
void reject_rest(RulesetBatch& b, const char* chain, const RulesetSpec& spec) {
  // The limit only throttles the log line; a packet over the limit skips
  // the log (the rule has no verdict) and still reaches the reject below.
  b.add(chain, b.rule(chain, "count and log refused traffic")
                   .count_in(spec.refused_counter)
                   .limit_per_second(5, 5)
                   .log("cagent-reject: "));
  // Itemized for the decision record: the same verdict-less shape, so a
  // full set (the rule stops at its dynset) still reaches the reject.
  for (const Family f : {Family::v4, Family::v6}) {
    for (const std::uint8_t proto : {std::uint8_t{IPPROTO_TCP}, std::uint8_t{IPPROTO_UDP}}) {
      const bool v4 = f == Family::v4;
      const std::uint32_t words = v4 ? 1 : 4;  // 32-bit registers the address takes
      Rule r = b.rule(chain, std::string("record refused ") + (v4 ? "IPv4 " : "IPv6 ") +
                                 (proto == IPPROTO_TCP ? "tcp" : "udp") + " destination and port");
      (v4 ? r.ipv4() : r.ipv6()).l4proto(proto);
      r.payload_to(NFT_PAYLOAD_NETWORK_HEADER, v4 ? 16 : 24, v4 ? 4 : 16, NFT_REG32_00)
          .meta_to(NFT_META_L4PROTO, NFT_REG32_00 + words)
          .payload_to(NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2, NFT_REG32_00 + words + 1)
          .add_counted(v4 ? spec.refused_set4 : spec.refused_set6, v4 ? refused4_id : refused6_id, NFT_REG32_00);
      b.add(chain, r);
    }
  }
  b.add(chain, b.rule(chain, "refuse TCP with a reset").l4proto(IPPROTO_TCP).reject(NFT_REJECT_TCP_RST, 0));
  b.add(chain, b.rule(chain, "refuse the rest with ICMP admin-prohibited")
                   .reject(NFT_REJECT_ICMPX_UNREACH, NFT_REJECT_ICMPX_ADMIN_PROHIBITED));
}

// Flows belong to their owner. dnsguard's upstream answers decide what the
// allow sets hold, so a packet in the reply direction of a flow dnsguard
// opened must come from outside the cage (it then never passes the output
// hook) or, when the upstream is Docker's embedded resolver, from that
// resolver's own socket in this namespace — never from another local uid,
// whatever its addresses and ports. Ports would not do: Docker DNATs
// 127.0.0.11:53 to a random port R and un-NATs the reply, so an agent that
// reads R and dnsguard's ports in /proc/net/udp, binds 127.0.0.1:R and sends
// with the source 127.0.0.11 (IP_PKTINFO, no capability needed) matches
// the reply direction of dnsguard's flow exactly; conntrack would call that
// established and the forged answer would reach dnsguard. So:
//  - every new flow of dnsguard gets the owned bit in its conntrack mark
//    (a local resolver's own flows are not marked: their replies come from
//    its forwarders outside, and its uid — root's, in a container — also
//    runs cage-init, whose probe dnsguard must be able to answer);
//  - on an owned flow, a locally sent reply-direction packet passes only
//    from a local resolver's socket (or from none: the kernel's own);
//  - a local resolver's address is its own: no other uid sends from it
//    (that would also let the agent seed a flow that Docker's SNAT turns
//    into "from 127.0.0.11:53" before dnsguard's query exists);
//  - dnsguard's packets to an upstream's address travel only on flows it
//    opened itself: never as the reply of a flow someone else opened (that
//    would skip Docker's DNAT and reach whoever opened it), and never on a
//    flow the agent opened earlier from the port dnsguard's query now uses
//    (the agent's NAT mapping — its queries to 127.0.0.11:53 redirected to
//    dnsguard — would carry dnsguard's query back into dnsguard).
// All of it runs in output before anything accepts established traffic.
constexpr std::uint32_t no_uid = 0xFFFFFFFF;

bool is_shared_loopback(const Address& a) { return a == loopback4 || a == loopback6; }

// A local resolver listens on the upstream's own endpoint (not behind a
// NAT like Docker's): dnsguard's queries are delivered to it in the cage.
bool served_locally(const RulesetSpec& spec, const Endpoint& up) {
  return is_shared_loopback(up.addr) &&
         std::any_of(spec.local_resolvers.begin(), spec.local_resolvers.end(),
                     [&](const LocalResolver& r) { return r.addr == up.addr; });
}

void owned_flows(RulesetBatch& b, const RulesetSpec& spec) {
  const char* out = "output";
  const std::uint32_t bit = owned_flow_mark;
  // The gate's hand-off to the secret relay is answered by the relay's own
  // local socket, which an owned flow would refuse: those flows stay
  // unmarked, and dnsguard's packets on them pass here. Nobody else can
  // answer or open one: the relay's port is below 1024, bound before the
  // agent starts, and refused to every uid but dnsguard's (further down).
  if (spec.relay_port != 0) {
    b.add(out, b.rule(out, "the gate's hand-offs to the secret relay are not owned flows")
                   .skuid_is(spec.dnsguard_uid)
                   .daddr_is(loopback4)
                   .l4proto(IPPROTO_TCP)
                   .dport(spec.relay_port)
                   .accept());
  }
  b.add(out, b.rule(out, "flows dnsguard opens are owned").ct_new().skuid_is(spec.dnsguard_uid).ct_mark_add(bit));
  for (const LocalResolver& r : spec.local_resolvers) {
    b.add(out, b.rule(out, "the local resolver " + to_string(r.addr) + " answers owned flows")
                   .ct_direction(ct_dir_reply)
                   .ct_mark_has(bit)
                   .skuid_is(r.uid)
                   .accept());
  }
  // Any other socket: dropped. A packet without one passes on (the
  // kernel's reset from a reject, an ICMP error, a TIME_WAIT ack: nothing
  // the agent writes, and refusing them would turn every refusal of an
  // owned flow into a hang). (uid_t)-1 is no socket's owner, so with no
  // local resolver the test reads "has a socket at all".
  Rule others = b.rule(out, "no other local socket answers an owned flow");
  others.ct_direction(ct_dir_reply).ct_mark_has(bit);
  if (spec.local_resolvers.empty()) others.skuid_not(no_uid);
  for (std::size_t i = 0; i < spec.local_resolvers.size(); ++i) {
    if (i == 0) others.skuid_not(spec.local_resolvers[i].uid);
    else others.and_not(spec.local_resolvers[i].uid);
  }
  b.add(out, others.drop());
  for (const Endpoint& up : spec.upstreams) {
    // 127.0.0.1 and ::1 are everyone's (dnsguard answers from them): only
    // a local address of the resolver's own, like Docker's 127.0.0.11, is
    // claimed — for its owner, or for nobody when nothing serves it.
    if (!is_loopback(up.addr) || is_shared_loopback(up.addr)) continue;
    const auto owner = std::find_if(spec.local_resolvers.begin(), spec.local_resolvers.end(),
                                    [&](const LocalResolver& r) { return r.addr == up.addr; });
    Rule r = b.rule(out, "only the local resolver sends from " + to_string(up.addr));
    r.skuid_not(owner != spec.local_resolvers.end() ? owner->uid : no_uid);
    b.add(out, r.saddr_is(up.addr).drop());
  }
  // dnsguard opens flows (marked above) and answers on its clients' (reply
  // direction). A packet of its own in the original direction of a flow
  // it did not open rides on a tuple someone else set up — the agent's,
  // whose NAT mapping (its query to 127.0.0.11:53, redirected to dnsguard)
  // would loop dnsguard's upstream query back into dnsguard.
  b.add(out, b.rule(out, "dnsguard sends only on flows it opened, or in reply")
                 .skuid_is(spec.dnsguard_uid)
                 .ct_direction(ct_dir_original)
                 .ct_mark_lacks(bit)
                 .drop());
  for (const Endpoint& up : spec.upstreams) {
    // On 127.0.0.1 / ::1 dnsguard also answers its own clients (reply
    // direction, to that address): there the upstream's port tells them
    // apart — no NAT moves it on those addresses.
    const bool shared = is_shared_loopback(up.addr);
    Rule r = b.rule(out, "dnsguard reaches upstream " + to_string(up.addr) +
                             (shared ? " port " + std::to_string(up.port) : std::string()) + " only on flows it opened");
    r.skuid_is(spec.dnsguard_uid).daddr_is(up.addr);
    if (shared) r.payload(NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2).eq_port(up.port);
    b.add(out, r.ct_mark_lacks(bit).drop());
  }
}

// The cage's own multicast listener reports (IGMP, MLD) are link
// housekeeping the kernel sends by itself, not a connection anyone tried:
// dropped without counting, so the refusal record and the exit summary name
// only what a program in the cage attempted. Dropped, not admitted: the
// agent may join any group, and each report would carry a group address of
// its choice to the local link.
void multicast_reports_stay_in(RulesetBatch& b, const char* chain) {
  b.add(chain, b.rule(chain, "IGMP stays in the cage (not counted)").ipv4().l4proto(ipproto_igmp).drop());
  for (const auto& [type, what] : {std::pair{icmpv6_mld_report, "MLD listener report"},
                                   std::pair{icmpv6_mld_done, "MLD listener done"},
                                   std::pair{icmpv6_mld2_report, "MLDv2 listener report"}}) {
    b.add(chain, b.rule(chain, std::string(what) + " stays in the cage (not counted)")
                     .daddr_in(link_multicast6)
                     .l4proto(IPPROTO_ICMPV6)
                     .payload(NFT_PAYLOAD_TRANSPORT_HEADER, 0, 1)
                     .eq_u8(type)
                     .drop());
  }
}

void neighbour_discovery(RulesetBatch& b, const char* chain, const RulesetSpec& spec,
                         std::initializer_list<std::pair<std::uint8_t, const char*>> types) {
  // Only with hop limit 255 (a router never forwards it) and only to
  // link-local, link-scope multicast or on-link destinations: housekeeping
  // of the local link, never a way to reach anything routed.
  std::vector<std::pair<Cidr, std::string>> scopes = {{link_local6, "link-local"},
                                                      {link_multicast6, "link multicast"}};
  for (const Cidr& c : spec.onlink6) scopes.emplace_back(c, "on-link " + to_string(c.base) + "/" + std::to_string(c.prefix_len));
  for (const auto& [type, what] : types) {
    for (const auto& [prefix, scope] : scopes) {
      b.add(chain, b.rule(chain, std::string("IPv6 ") + what + " to " + scope)
                       .daddr_in(prefix)
                       .hop_limit(nd_hop_limit)
                       .l4proto(IPPROTO_ICMPV6)
                       .payload(NFT_PAYLOAD_TRANSPORT_HEADER, 0, 1)
                       .eq_u8(type)
                       .accept());
    }
  }
}

// Inbound: nothing reaches a listener in the cage from outside. A server
// the agent starts would otherwise be a channel to any host that can reach
// the container (other containers on the network, a published port), with
// the replies leaving as established traffic past the allowlist.
void input_chain(RulesetBatch& b, const RulesetSpec& spec, const Features& features) {
  const char* in = "input";
  for (const Endpoint& up : spec.upstreams) {
    for (std::uint8_t proto : {std::uint8_t{IPPROTO_UDP}, std::uint8_t{IPPROTO_TCP}}) {
      const std::string what = to_string(up.addr) + " port " + std::to_string(up.port) +
                               (proto == IPPROTO_UDP ? " udp" : " tcp");
      // A query to the upstream is never for a local socket, unless a
      // local resolver serves that very endpoint. Docker's embedded
      // resolver is reached through its DNAT (127.0.0.11:53 →
      // 127.0.0.11:<random>), so what arrives here untranslated was meant
      // for whoever bound the upstream's endpoint in the cage.
      if (served_locally(spec, up)) continue;
      b.add(in, b.rule(in, "upstream queries are never delivered in the cage: " + what)
                    .daddr_is(up.addr)
                    .l4proto(proto)
                    .dport(up.port)
                    .drop());
    }
    // Replies from the upstream arrive in conntrack's reply direction; a
    // packet from its address that *starts* a flow (any port: Docker's
    // NAT moves them) is forged. On 127.0.0.1 / ::1, which every local
    // flow comes from, only the upstream's own port can say so.
    Rule r = b.rule(in, "nothing from upstream " + to_string(up.addr) +
                            (is_shared_loopback(up.addr) ? " port " + std::to_string(up.port) : std::string()) +
                            " opens a flow");
    r.saddr_is(up.addr);
    if (is_shared_loopback(up.addr)) r.payload(NFT_PAYLOAD_TRANSPORT_HEADER, 0, 2).eq_port(up.port);
    b.add(in, r.ct_direction(ct_dir_original).drop());
  }
  b.add(in, b.rule(in, "established/related: replies to the cage's own connections").ct_established_or_related().accept());
  b.add(in, b.rule(in, "loopback").meta(NFT_META_IIF).eq_u32(loopback_ifindex).accept());
  for (const auto& f : features) f->input_local(b);
  for (const InboundPort& p : spec.inbound) {
    const char* proto = p.l4proto == IPPROTO_UDP ? "udp" : p.l4proto == IPPROTO_SCTP ? "sctp" : "tcp";
    b.add(in, b.rule(in, "published port " + std::to_string(p.first) +
                             (p.last != p.first ? "-" + std::to_string(p.last) : std::string()) + "/" + proto)
                  .l4proto(p.l4proto)
                  .dport_in(p.first, p.last)
                  .accept());
  }
  neighbour_discovery(b, in, spec, {{icmpv6_neighbor_solicit, "neighbour solicitation"},
                              {icmpv6_neighbor_advert, "neighbour advertisement"},
                              {icmpv6_router_advert, "router advertisement"}});
  b.add(in, b.rule(in, "count refused inbound traffic").counter());
}

// A local resolver is one of the upstreams, on a local address, and not
// dnsguard itself (its uid is what tells their flows apart).
void check_local_resolvers(const RulesetSpec& spec) {
  for (const LocalResolver& r : spec.local_resolvers) {
    const bool upstream = std::any_of(spec.upstreams.begin(), spec.upstreams.end(),
                                      [&](const Endpoint& up) { return up.addr == r.addr; });
    if (!upstream || !is_loopback(r.addr)) {
      throw std::invalid_argument("local resolver " + to_string(r.addr) + " is not a loopback upstream");
    }
    if (r.uid == spec.dnsguard_uid) {
      throw std::invalid_argument("local resolver " + to_string(r.addr) + " runs as dnsguard's uid " +
                                  std::to_string(r.uid));
    }
  }
}

// The sets: fed by dnsguard, the static CIDRs, and what the firewall refused.
void declare_sets(RulesetBatch& b, const RulesetSpec& spec) {
  // Dynamic sets fed by dnsguard; each element expires with its DNS TTL.
  b.set(spec.set4, set4_id, Family::v4, NFT_SET_TIMEOUT);
  b.set(spec.set6, set6_id, Family::v6, NFT_SET_TIMEOUT);
  // Static CIDRs: constant (the kernel refuses any later change to them,
  // so nothing at runtime can widen them) interval sets.
  b.set(spec.static_set4, static4_id, Family::v4, NFT_SET_INTERVAL | NFT_SET_CONSTANT);
  b.set(spec.static_set6, static6_id, Family::v6, NFT_SET_INTERVAL | NFT_SET_CONSTANT);
  b.static_elements(spec.static_set4, static4_id, Family::v4);
  b.static_elements(spec.static_set6, static6_id, Family::v6);
  // What the firewall refused (reject_rest): a named counter of every
  // refused packet and bounded sets of the refused destinations.
  b.counter_object(spec.refused_counter);
  b.keyed_set(spec.refused_set4, refused4_id, refused_key_type(Family::v4), refused_key_len(Family::v4),
              spec.refused_size);
  b.keyed_set(spec.refused_set6, refused6_id, refused_key_type(Family::v6), refused_key_len(Family::v6),
              spec.refused_size);
}

void declare_chains(RulesetBatch& b, const Features& features) {
  // Default drop: anything no rule below accepts never leaves the cage.
  b.chain("output", "filter", NF_INET_LOCAL_OUT, 0, NF_DROP);
  b.chain("forward", "filter", NF_INET_FORWARD, 0, NF_DROP);
  b.chain("input", "filter", NF_INET_LOCAL_IN, 0, NF_DROP);
  // NAT output runs before filter output (< 0), so filter sees the
  // redirected destination (loopback). -150, not the usual -100: Docker's
  // embedded resolver installs its own DNAT of 127.0.0.11:53 at -100 in the
  // container's namespace, and the first NAT chain to bind a connection wins,
  // so ours must come first or the agent's queries to 127.0.0.11:53 would
  // bypass dnsguard. (NAT chains must stay above conntrack's -200.)
  b.chain("dns_redirect", "nat", NF_INET_LOCAL_OUT, dns_redirect_priority, NF_ACCEPT);
  for (const auto& f : features) f->chains(b);
}

void output_chain(RulesetBatch& b, const RulesetSpec& spec, const Features& features) {
  const char* out = "output";
  // Before anything accepts established traffic: who may answer dnsguard's
  // flows, and who may send from a local resolver's address.
  owned_flows(b, spec);
  // Replies and ICMP errors of connections that were allowed when they started.
  b.add(out, b.rule(out, "established/related: traffic of allowed connections").ct_established_or_related().accept());
  // Docker's embedded resolver listens on 127.0.0.11 at a random port (its
  // DNAT maps :53 there). Loopback is open to everyone below, so without this
  // rule the agent could query it directly and resolve any name: DNS
  // tunnelling past the allowlist. Only dnsguard may use it (as its upstream).
  b.add(out, b.rule(out, "Docker's embedded resolver: dnsguard only")
                 .meta(NFT_META_SKUID)
                 .cmp(NFT_CMP_NEQ, &spec.dnsguard_uid, 4)
                 .daddr_is(docker_embedded_resolver)
                 .reject(NFT_REJECT_ICMPX_UNREACH, NFT_REJECT_ICMPX_ADMIN_PROHIBITED));
  // The secret relay's port: the gate hands it decrypted-to-be connections
  // with the destination to use, so nobody else may hand it one.
  if (spec.relay_port != 0) {
    for (const Address* lo : {&loopback4, &loopback6}) {
      b.add(out, b.rule(out, "the secret relay on " + to_string(*lo) + ": dnsguard only")
                     .skuid_not(spec.dnsguard_uid)
                     .daddr_is(*lo)
                     .l4proto(IPPROTO_TCP)
                     .dport(spec.relay_port)
                     .reject(NFT_REJECT_ICMPX_UNREACH, NFT_REJECT_ICMPX_ADMIN_PROHIBITED));
    }
  }
  // Loopback stays inside the namespace; it also carries DNS redirected to dnsguard.
  b.add(out, b.rule(out, "loopback").meta(NFT_META_OIF).eq_u32(loopback_ifindex).accept());
  // DNS redirected to dnsguard (chain dns_redirect): after the redirect its
  // destination is 127.0.0.1 / ::1, but `oif` still names the device of the
  // original route (all output hooks share one hook state), so the
  // loopback rule above does not see it. Accept exactly the redirect target.
  for (std::uint8_t proto : {std::uint8_t{IPPROTO_UDP}, std::uint8_t{IPPROTO_TCP}}) {
    const char* name = proto == IPPROTO_UDP ? "udp" : "tcp";
    b.add(out, b.rule(out, std::string("DNS (") + name + ") redirected to dnsguard on 127.0.0.1")
                   .daddr_is(loopback4)
                   .l4proto(proto)
                   .dport(spec.listen_port)
                   .accept());
    b.add(out, b.rule(out, std::string("DNS (") + name + ") redirected to dnsguard on ::1")
                   .daddr_is(loopback6)
                   .l4proto(proto)
                   .dport(spec.listen_port)
                   .accept());
  }
  // Whatever an optional part redirected to loopback (the gate's port).
  for (const auto& f : features) f->output_redirected(b);
  // IPv6 cannot resolve on-link neighbours (or find a router) without these;
  // they carry no payload and reach only the local link.
  neighbour_discovery(b, out, spec, {{icmpv6_neighbor_solicit, "neighbour solicitation"},
                               {icmpv6_neighbor_advert, "neighbour advertisement"},
                               {icmpv6_router_solicit, "router solicitation"}});
  for (const auto& f : features) f->output_local(b);
  // Only dnsguard's uid may reach the upstream resolvers: everyone else's
  // DNS goes through dnsguard's allowlist (redirect chain below), so a
  // denied name never leaves the cage.
  for (const Endpoint& up : spec.upstreams) {
    for (std::uint8_t proto : {std::uint8_t{IPPROTO_UDP}, std::uint8_t{IPPROTO_TCP}}) {
      const std::string comment = "dnsguard to upstream " + to_string(up.addr) + " port " + std::to_string(up.port) +
                                  (proto == IPPROTO_UDP ? " udp" : " tcp");
      b.add(out, b.rule(out, comment)
                     .meta(NFT_META_SKUID)
                     .eq_u32(spec.dnsguard_uid)
                     .daddr_is(up.addr)
                     .l4proto(proto)
                     .dport(up.port)
                     .accept());
    }
  }
  // Docker's embedded resolver forwards the names it does not own from
  // inside this namespace, as its own uid, to the forwarders dockerd gave
  // it (the host's resolvers or `docker run --dns`), which the cage cannot
  // know. Its queries carry only what dnsguard asked it (nothing else can
  // reach it: see "Docker's embedded resolver: dnsguard only"), so they
  // leave as they are: redirected to dnsguard they would loop back into it.
  for (const LocalResolver& r : spec.local_resolvers) {
    for (std::uint8_t proto : {std::uint8_t{IPPROTO_UDP}, std::uint8_t{IPPROTO_TCP}}) {
      b.add(out, b.rule(out, "the local resolver " + to_string(r.addr) + " forwards to its own upstreams" +
                                 (proto == IPPROTO_UDP ? " (udp)" : " (tcp)"))
                     .skuid_is(r.uid)
                     .l4proto(proto)
                     .dport(dns_port)
                     .accept());
    }
  }
  // Fail closed: DNS that got here was not redirected (dnsguard's own uid
  // to a non-upstream, or a packet without a socket). Never let it out,
  // even to an address that happens to be in an allow set.
  other_dns_never_leaves(b, out);
  allowed_destinations(b, out, spec);
  multicast_reports_stay_in(b, out);
  reject_rest(b, out, spec);

}

// Nested containers (forwarded traffic) get the same destination policy,
// DNS included: a nested container's query to a resolver that happens to
// be allowed (a static CIDR, or an allowed name's address) would otherwise
// resolve any name past dnsguard's allowlist.
void forward_chain(RulesetBatch& b, const RulesetSpec& spec, const Features& features) {
  const char* fwd = "forward";
  b.add(fwd, b.rule(fwd, "established/related: traffic of allowed connections").ct_established_or_related().accept());
  for (const auto& f : features) f->forward_first(b);
  other_dns_never_leaves(b, fwd);
  allowed_destinations(b, fwd, spec);
  reject_rest(b, fwd, spec);
}

// Every other uid's DNS, to whatever address, lands on dnsguard — but
// not dnsguard's own, nor a local resolver's forwarded queries (those
// would loop back into dnsguard). Packets without a socket have no skuid:
// the rule does not match them and the filter chain drops them.
void dns_redirect_chain(RulesetBatch& b, const RulesetSpec& spec) {
  const char* nat = "dns_redirect";
  for (std::uint8_t proto : {std::uint8_t{IPPROTO_UDP}, std::uint8_t{IPPROTO_TCP}}) {
    Rule r = b.rule(nat, proto == IPPROTO_UDP ? "DNS (udp) of other uids to dnsguard"
                                              : "DNS (tcp) of other uids to dnsguard");
    r.skuid_not(spec.dnsguard_uid);
    for (const LocalResolver& lr : spec.local_resolvers) r.and_not(lr.uid);
    b.add(nat, r.l4proto(proto).dport(dns_port).redirect_to_port(spec.listen_port));
  }
}

}  // namespace

void install_ruleset(const RulesetSpec& spec) {
  const std::string operation = "install ruleset inet " + spec.table;
  Features features;
  if (auto gate = gate_feature(spec)) features.push_back(std::move(gate));
  if (auto nested = nested_feature(spec)) features.push_back(std::move(nested));
  for (const auto& f : features) f->check();
  check_local_resolvers(spec);

  Socket sock;
  RulesetBatch b(spec, sock);
  b.table_replace();
  declare_sets(b, spec);
  declare_chains(b, features);
  output_chain(b, spec, features);
  forward_chain(b, spec, features);
  input_chain(b, spec, features);
  dns_redirect_chain(b, spec);
  for (const auto& f : features) f->own_rules(b);
  b.batch().end();
  sock.commit(b.batch(), operation);
}

}  // namespace cagent::nft
