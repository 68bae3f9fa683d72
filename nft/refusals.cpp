// RefusalReader: what the firewall refused, read back from the counters the
// ruleset keeps (RulesetSpec::refused_*; reject_rest() in ruleset.cpp). The
// kernel does the counting on the packet path; dnsguard reads the totals
// about once a second for its decision record, so nothing the agent does
// reaches user space per packet.

#include <arpa/inet.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>

#include <cstring>

#include "nft/handles.hpp"
#include "nft/logic.hpp"
#include "nft/netlink.hpp"
#include "nft/nft.hpp"

namespace cagent::nft {

using namespace detail;

struct RefusalReader::Impl {
  explicit Impl(RulesetSpec n)
      : names(std::move(n)),
        counter_op("read counter " + names.refused_counter + " of inet " + names.table),
        list_op4("list elements of inet " + names.table + " " + names.refused_set4),
        list_op6("list elements of inet " + names.table + " " + names.refused_set6) {}

  std::uint64_t total() {
    std::uint64_t packets = 0;
    bool found = false;
    sock.dump(
        NFT_MSG_GETOBJ, counter_op,
        [&](nlmsghdr* nlh) {
          mnl_attr_put_strz(nlh, NFTA_OBJ_TABLE, names.table.c_str());
          mnl_attr_put_u32(nlh, NFTA_OBJ_TYPE, htonl(NFT_OBJECT_COUNTER));
        },
        [&](const nlmsghdr* nlh) {
          ObjPtr o = checked<ObjPtr>(nftnl_obj_alloc());
          if (nftnl_obj_nlmsg_parse(nlh, o.get()) < 0) throw NetlinkError(counter_op + ": parse reply", errno, "");
          const char* name = nftnl_obj_get_str(o.get(), NFTNL_OBJ_NAME);
          if (name == nullptr || names.refused_counter != name) return;
          packets = nftnl_obj_get_u64(o.get(), NFTNL_OBJ_CTR_PKTS);
          found = true;
        });
    // A ruleset without it (an older cage-init) is a failure to report,
    // not "nothing refused".
    if (!found) throw NetlinkError(counter_op, ENOENT, "no such counter");
    return packets;
  }

  void flows(Family f, std::vector<RefusedFlow>& out) {
    const std::string& set = f == Family::v4 ? names.refused_set4 : names.refused_set6;
    const std::string& op = f == Family::v4 ? list_op4 : list_op6;
    sock.dump_set_elements(names.table, set, op, [&](nftnl_set_elem* e) {
      std::uint32_t len = 0;
      const auto* key = static_cast<const std::uint8_t*>(nftnl_set_elem_get(e, NFTNL_SET_ELEM_KEY, &len));
      if (key == nullptr || len != refused_key_len(f)) return;
      const std::size_t alen = address_length(f);
      RefusedFlow flow;
      flow.addr.family = f;
      std::memcpy(flow.addr.bytes.data(), key, alen);
      flow.l4proto = key[alen];                                                   // first byte of its register
      flow.port = static_cast<std::uint16_t>(key[alen + 4] << 8 | key[alen + 5]);  // network order
      // The element's one expression is the rule's counter.
      nftnl_set_elem_expr_foreach(
          e,
          [](nftnl_expr* x, void* p) -> int {
            const char* name = nftnl_expr_get_str(x, NFTNL_EXPR_NAME);
            if (name != nullptr && std::strcmp(name, "counter") == 0)
              static_cast<RefusedFlow*>(p)->packets = nftnl_expr_get_u64(x, NFTNL_EXPR_CTR_PACKETS);
            return 0;
          },
          &flow);
      out.push_back(flow);
    });
  }

  RulesetSpec names;
  std::string counter_op;
  std::string list_op4;
  std::string list_op6;
  Socket sock;
};

RefusalReader::RefusalReader(RulesetSpec names) : impl_(std::make_unique<Impl>(std::move(names))) {}
RefusalReader::~RefusalReader() = default;

Refusals RefusalReader::read() {
  Refusals r;
  // Elements first, the total last: a packet refused in between counts in
  // the total, never in an element the total does not cover.
  impl_->flows(Family::v4, r.flows);
  impl_->flows(Family::v6, r.flows);
  r.total = impl_->total();
  return r;
}

}  // namespace cagent::nft
