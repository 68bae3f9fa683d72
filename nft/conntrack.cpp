// end_connections_to(): a name taken back at run time (cagent deny) must not
// keep the connections already open to its addresses. The ruleset accepts
// "established" traffic before it looks at the sets, so removing an address
// from its set only stops *new* connections. Deleting the conntrack entries
// whose original destination is such an address makes their next packet
// "new" again: judged against the sets, it is refused (TCP reset), and a
// connection the gate relays loses both halves (the agent's, redirected to
// the gate, and dnsguard's own to the destination).
//
// ctnetlink through the nft layer's Socket: one dump of the table, then one
// delete per entry, each naming the entry by its original tuple copied from
// the dump.

#include <arpa/inet.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <unordered_set>
#include <vector>

#include "nft/handles.hpp"
#include "nft/logic.hpp"
#include "nft/netlink.hpp"
#include "nft/nft.hpp"

namespace cagent::nft {

namespace {

struct Tracked {
  std::uint8_t family = 0;
  std::vector<std::uint8_t> orig;  // payload of CTA_TUPLE_ORIG, as the kernel sent it
  bool has_zone = false;
  std::uint16_t zone = 0;          // network order
};

nlmsghdr* ct_header(char* buf, std::uint8_t type, std::uint16_t flags, std::uint8_t family) {
  nlmsghdr* nlh = mnl_nlmsg_put_header(buf);
  nlh->nlmsg_type = static_cast<std::uint16_t>((NFNL_SUBSYS_CTNETLINK << 8) | type);
  nlh->nlmsg_flags = static_cast<std::uint16_t>(NLM_F_REQUEST | flags);
  auto* nfg = static_cast<nfgenmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(nfgenmsg)));
  nfg->nfgen_family = family;
  nfg->version = NFNETLINK_V0;
  nfg->res_id = 0;
  return nlh;
}

// Calls f(attr) for each attribute in [begin, end) (libmnl's iteration
// macros do not compile as C++).
template <typename F>
void for_each_attr(const void* begin, const void* end, F f) {
  const auto* a = static_cast<const nlattr*>(begin);
  const char* stop = static_cast<const char*>(end);
  while (mnl_attr_ok(a, static_cast<int>(stop - reinterpret_cast<const char*>(a)))) {
    f(a);
    a = mnl_attr_next(a);
  }
}
template <typename F>
void for_each_nested(const nlattr* nest, F f) {
  for_each_attr(mnl_attr_get_payload(nest),
                static_cast<const char*>(mnl_attr_get_payload(nest)) + mnl_attr_get_payload_len(nest), f);
}

// The original destination in a CTA_TUPLE_ORIG payload, if it names one.
bool orig_destination(const nlattr* orig, Address& out) {
  bool found = false;
  for_each_nested(orig, [&](const nlattr* a) {
    if (mnl_attr_get_type(a) != CTA_TUPLE_IP) return;
    for_each_nested(a, [&](const nlattr* ip) {
      const auto type = mnl_attr_get_type(ip);
      const std::size_t len = type == CTA_IP_V4_DST ? 4 : type == CTA_IP_V6_DST ? 16 : 0;
      if (len == 0 || mnl_attr_get_payload_len(ip) != len) return;
      out.family = len == 4 ? Family::v4 : Family::v6;
      std::memcpy(out.bytes.data(), mnl_attr_get_payload(ip), len);
      found = true;
    });
  });
  return found;
}

struct DumpContext {
  // Hashed: the dump runs on dnsguard's one thread, and both sides can be
  // large — every entry of a table the agent can fill (nf_conntrack_max)
  // against every address a deny evicts (up to a set's 65536). A linear
  // scan per entry took 16 s for 197k entries and 65536 addresses.
  std::unordered_set<Address, detail::AddressHash> wanted;
  std::vector<Tracked>* found;
};

void on_entry(const nlmsghdr* nlh, DumpContext& ctx) {
  const auto* nfg = static_cast<const nfgenmsg*>(mnl_nlmsg_get_payload(nlh));
  Tracked t;
  t.family = nfg->nfgen_family;
  bool match = false;
  for_each_attr(mnl_nlmsg_get_payload_offset(nlh, sizeof(nfgenmsg)), mnl_nlmsg_get_payload_tail(nlh),
                [&](const nlattr* a) {
                  const auto type = mnl_attr_get_type(a);
                  if (type == CTA_TUPLE_ORIG) {
                    Address dst;
                    if (!orig_destination(a, dst)) return;
                    match = ctx.wanted.contains(dst);
                    const auto* p = static_cast<const std::uint8_t*>(mnl_attr_get_payload(a));
                    t.orig.assign(p, p + mnl_attr_get_payload_len(a));
                  } else if (type == CTA_ZONE && mnl_attr_get_payload_len(a) == 2) {
                    t.has_zone = true;
                    std::memcpy(&t.zone, mnl_attr_get_payload(a), 2);
                  }
                });
  if (match) ctx.found->push_back(std::move(t));
}

}  // namespace

std::size_t end_connections_to(std::span<const Address> addresses) {
  if (addresses.empty()) return 0;
  // The same socket class as the ruleset's (NETLINK_NETFILTER carries
  // ctnetlink too): extended ACKs, big buffers, a deadline on every reply.
  detail::Socket sock;
  std::vector<char> buf(static_cast<std::size_t>(MNL_SOCKET_BUFFER_SIZE));
  std::vector<Tracked> found;
  DumpContext ctx{{addresses.begin(), addresses.end()}, &found};
  sock.request(ct_header(buf.data(), IPCTNL_MSG_CT_GET, NLM_F_DUMP, AF_UNSPEC), "list tracked connections",
               [&](const nlmsghdr* nlh) { on_entry(nlh, ctx); });

  std::size_t ended = 0;
  for (const Tracked& t : found) {
    nlmsghdr* del = ct_header(buf.data(), IPCTNL_MSG_CT_DELETE, NLM_F_ACK, t.family);
    mnl_attr_put(del, CTA_TUPLE_ORIG | NLA_F_NESTED, t.orig.size(), t.orig.data());
    if (t.has_zone) mnl_attr_put(del, CTA_ZONE, sizeof t.zone, &t.zone);
    try {
      sock.request(del, "delete a tracked connection", [](const nlmsghdr*) {});
      ++ended;
    } catch (const NetlinkError& e) {
      if (e.error() != ENOENT) throw;  // ENOENT: it ended by itself
    }
  }
  return ended;
}

}  // namespace cagent::nft
