// The cage ruleset: one transaction that replaces `inet <table>` with the
// sets, chains and rules of nft/README.md "The ruleset". Every rule carries a
// comment (rule userdata) so `nft list table inet cagent` explains itself.

#include <arpa/inet.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <netinet/in.h>

#include <algorithm>
#include <cerrno>
#include <array>
#include <cstring>
#include <initializer_list>
#include <string>
#include <tuple>
#include <vector>

#include "nft/handles.hpp"
#include "nft/logic.hpp"
#include "nft/netlink.hpp"
#include "nft/nft.hpp"

namespace cagent::nft {

namespace {

using namespace detail;

// nft's datatype ids, so `nft list` prints the sets' key types by name.
constexpr std::uint32_t nft_type_ipv4_addr = 7;
constexpr std::uint32_t nft_type_ipv6_addr = 8;

// ct state bits as the kernel encodes them (NF_CT_STATE_BIT).
constexpr std::uint32_t ct_state_established = 1u << 1;
constexpr std::uint32_t ct_state_related = 1u << 2;
constexpr std::uint32_t ct_state_new = 1u << 3;

// The loopback device is ifindex 1 in every network namespace
// (LOOPBACK_IFINDEX), so `oif` needs no name lookup at install time.
constexpr std::uint32_t loopback_ifindex = 1;

constexpr std::uint16_t dns_port = 53;

// IFNAMSIZ: an interface name and its terminating zero.
constexpr std::uint32_t ifname_size = 16;

// Where `redirect` sends a packet in the output hook.
const Address loopback4 = *parse_address("127.0.0.1");
const Address loopback6 = *parse_address("::1");
// Where Docker's embedded DNS server answers inside a container on a
// user-defined network (a fixed address; the port behind it is random).
const Address docker_embedded_resolver = *parse_address("127.0.0.11");
constexpr std::int32_t dns_redirect_priority = -150;

// ICMPv6 types of neighbour discovery (RFC 4861).
constexpr std::uint8_t icmpv6_router_solicit = 133;
constexpr std::uint8_t icmpv6_router_advert = 134;
constexpr std::uint8_t icmpv6_neighbor_solicit = 135;
constexpr std::uint8_t icmpv6_neighbor_advert = 136;
// Neighbour discovery is only valid with hop limit 255 (RFC 4861 7.1.1): a
// packet that crossed a router cannot carry it, so nothing off-link matches.
constexpr std::uint8_t nd_hop_limit = 255;
// Where neighbour discovery may go: link-local unicast, link-scope multicast
// (solicited-node, all-nodes, all-routers) and the prefixes on the cage's own
// links (unicast probes of a neighbour's global address) — never routed.
const Cidr link_local6{*parse_address("fe80::"), 10};
const Cidr link_multicast6{*parse_address("ff02::"), 16};

std::array<std::uint8_t, 16> prefix_mask(std::uint8_t prefix_len) {
  std::array<std::uint8_t, 16> mask{};
  for (std::size_t bit = 0; bit < prefix_len && bit < 128; ++bit)
    mask[bit / 8] = static_cast<std::uint8_t>(mask[bit / 8] | (0x80u >> (bit % 8)));
  return mask;
}

// conntrack directions (enum ip_conntrack_dir).
constexpr std::uint8_t ct_dir_original = 0;
constexpr std::uint8_t ct_dir_reply = 1;

// IGMP (IPv4) and the MLD messages (ICMPv6) a host sends about the
// multicast groups it listens to (RFC 2710, RFC 3810).
constexpr std::uint8_t ipproto_igmp = 2;
constexpr std::uint8_t icmpv6_mld_report = 131;
constexpr std::uint8_t icmpv6_mld_done = 132;
constexpr std::uint8_t icmpv6_mld2_report = 143;

// Room for one rule message: a dozen expressions of < 100 bytes each, the
// 128-byte comment, plus the table and chain names added per call.
constexpr std::size_t rule_room = 4096;

// Builds one rule expression by expression. Each step appends to the
// rule in evaluation order; the rule owns its expressions.
class Rule {
 public:
  Rule(const std::string& table, const char* chain, std::string comment)
      : rule_(checked<RulePtr>(nftnl_rule_alloc())), comment_(std::move(comment)) {
    nftnl_rule_set_str(rule_.get(), NFTNL_RULE_TABLE, table.c_str());
    nftnl_rule_set_str(rule_.get(), NFTNL_RULE_CHAIN, chain);
    nftnl_rule_set_u32(rule_.get(), NFTNL_RULE_FAMILY, NFPROTO_INET);
    // nft truncates nothing; the kernel stores userdata verbatim. Keep
    // comments within nft's own limit so `nft list` shows them.
    if (comment_.size() >= NFTNL_UDATA_COMMENT_MAXLEN) comment_.resize(NFTNL_UDATA_COMMENT_MAXLEN - 1);
    UdataBufPtr ud = checked<UdataBufPtr>(nftnl_udata_buf_alloc(NFTNL_UDATA_COMMENT_MAXLEN + 16));
    nftnl_udata_put_strz(ud.get(), NFTNL_UDATA_RULE_COMMENT, comment_.c_str());
    nftnl_rule_set_data(rule_.get(), NFTNL_RULE_USERDATA, nftnl_udata_buf_data(ud.get()),
                        nftnl_udata_buf_len(ud.get()));
  }

  Rule& meta(std::uint32_t key) {
    ExprPtr e = expr("meta");
    nftnl_expr_set_u32(e.get(), NFTNL_EXPR_META_KEY, key);
    nftnl_expr_set_u32(e.get(), NFTNL_EXPR_META_DREG, NFT_REG_1);
    return push(std::move(e));
  }
  Rule& cmp(std::uint32_t op, const void* data, std::uint32_t len) {
    ExprPtr e = expr("cmp");
    nftnl_expr_set_u32(e.get(), NFTNL_EXPR_CMP_SREG, NFT_REG_1);
    nftnl_expr_set_u32(e.get(), NFTNL_EXPR_CMP_OP, op);
    nftnl_expr_set(e.get(), NFTNL_EXPR_CMP_DATA, data, len);
    return push(std::move(e));
  }
  Rule& eq_u8(std::uint8_t v) { return cmp(NFT_CMP_EQ, &v, 1); }
  Rule& eq_u32(std::uint32_t v) { return cmp(NFT_CMP_EQ, &v, 4); }
  Rule& eq_port(std::uint16_t port) {
    const std::uint16_t be = htons(port);
    return cmp(NFT_CMP_EQ, &be, 2);
  }
  Rule& payload(std::uint32_t base, std::uint32_t offset, std::uint32_t len) {
    ExprPtr e = expr("payload");
    nftnl_expr_set_u32(e.get(), NFTNL_EXPR_PAYLOAD_BASE, base);
    nftnl_expr_set_u32(e.get(), NFTNL_EXPR_PAYLOAD_OFFSET, offset);
    nftnl_expr_set_u32(e.get(), NFTNL_EXPR_PAYLOAD_LEN, len);
    nftnl_expr_set_u32(e.get(), NFTNL_EXPR_PAYLOAD_DREG, NFT_REG_1);
    return push(std::move(e));
  }

  // Family guards: in an inet table a payload offset means different
  // fields for IPv4 and IPv6, so every address match checks nfproto first.
  Rule& ipv4() { return meta(NFT_META_NFPROTO).eq_u8(NFPROTO_IPV4); }
  Rule& ipv6() { return meta(NFT_META_NFPROTO).eq_u8(NFPROTO_IPV6); }
  Rule& l4proto(std::uint8_t proto) { return meta(NFT_META_L4PROTO).eq_u8(proto); }
  Rule& dport(std::uint16_t port) { return payload(NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2).eq_port(port); }
  // The source or destination address of family f into register 1.
  Rule& addr(Family f, bool source) {
    if (f == Family::v4) return ipv4().payload(NFT_PAYLOAD_NETWORK_HEADER, source ? 12 : 16, 4);
    return ipv6().payload(NFT_PAYLOAD_NETWORK_HEADER, source ? 8 : 24, 16);
  }
  Rule& addr_is(const Address& a, bool source) {
    addr(a.family, source);
    return cmp(NFT_CMP_EQ, a.bytes.data(), static_cast<std::uint32_t>(address_length(a.family)));
  }
  Rule& daddr(Family f) { return addr(f, false); }
  Rule& daddr_is(const Address& a) { return addr_is(a, false); }
  Rule& saddr_is(const Address& a) { return addr_is(a, true); }
  Rule& sport(std::uint16_t port) { return payload(NFT_PAYLOAD_TRANSPORT_HEADER, 0, 2).eq_port(port); }
  // first <= destination port <= last (ports compare bytewise in network order).
  Rule& dport_in(std::uint16_t first, std::uint16_t last) {
    payload(NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2);
    const std::uint16_t lo = htons(first);
    const std::uint16_t hi = htons(last);
    cmp(NFT_CMP_GTE, &lo, 2);
    return cmp(NFT_CMP_LTE, &hi, 2);
  }
  // The destination lies in the CIDR: the address masked to the prefix
  // equals the (host-bits-cleared) base.
  Rule& daddr_in(const Cidr& c) { return addr_in(c, false); }
  Rule& saddr_in(const Cidr& c) { return addr_in(c, true); }
  Rule& addr_in(const Cidr& c, bool source) {
    addr(c.base.family, source);
    const auto len = static_cast<std::uint32_t>(address_length(c.base.family));
    const std::array<std::uint8_t, 16> mask = prefix_mask(c.prefix_len);
    std::array<std::uint8_t, 16> base{};
    for (std::size_t i = 0; i < len; ++i) base[i] = static_cast<std::uint8_t>(c.base.bytes[i] & mask[i]);
    return masked(mask.data(), len).cmp(NFT_CMP_EQ, base.data(), len);
  }
  // Register 1 &= mask (len bytes).
  Rule& masked(const void* mask, std::uint32_t len) {
    const std::array<std::uint8_t, 16> zero{};
    ExprPtr bw = expr("bitwise");
    nftnl_expr_set_u32(bw.get(), NFTNL_EXPR_BITWISE_SREG, NFT_REG_1);
    nftnl_expr_set_u32(bw.get(), NFTNL_EXPR_BITWISE_DREG, NFT_REG_1);
    nftnl_expr_set_u32(bw.get(), NFTNL_EXPR_BITWISE_LEN, len);
    nftnl_expr_set(bw.get(), NFTNL_EXPR_BITWISE_MASK, mask, len);
    nftnl_expr_set(bw.get(), NFTNL_EXPR_BITWISE_XOR, zero.data(), len);
    return push(std::move(bw));
  }
  Rule& hop_limit(std::uint8_t v) { return ipv6().payload(NFT_PAYLOAD_NETWORK_HEADER, 7, 1).eq_u8(v); }

  Rule& ct_load(std::uint32_t key) {
    ExprPtr ct = expr("ct");
    nftnl_expr_set_u32(ct.get(), NFTNL_EXPR_CT_KEY, key);
    nftnl_expr_set_u32(ct.get(), NFTNL_EXPR_CT_DREG, NFT_REG_1);
    return push(std::move(ct));
  }
  Rule& ct_direction(std::uint8_t dir) { return ct_load(NFT_CT_DIRECTION).eq_u8(dir); }
  // Any of `bits` set in the 32-bit conntrack field `key` (state, mark).
  Rule& ct_bits_any(std::uint32_t key, std::uint32_t bits) {
    ct_load(key);
    const std::uint32_t zero = 0;
    return masked(&bits, 4).cmp(NFT_CMP_NEQ, &zero, 4);
  }

  Rule& ct_established_or_related() { return ct_bits_any(NFT_CT_STATE, ct_state_established | ct_state_related); }
  Rule& ct_new() { return ct_bits_any(NFT_CT_STATE, ct_state_new); }
  // The flow's conntrack mark has `bit` set.
  Rule& ct_mark_has(std::uint32_t bit) { return ct_bits_any(NFT_CT_MARK, bit); }
  // ct mark |= bit (the rest of the mark is kept): load, (x & ~bit) ^ bit, store.
  Rule& ct_mark_add(std::uint32_t bit) {
    ct_load(NFT_CT_MARK);
    const std::uint32_t keep = ~bit;
    ExprPtr bw = expr("bitwise");
    nftnl_expr_set_u32(bw.get(), NFTNL_EXPR_BITWISE_SREG, NFT_REG_1);
    nftnl_expr_set_u32(bw.get(), NFTNL_EXPR_BITWISE_DREG, NFT_REG_1);
    nftnl_expr_set_u32(bw.get(), NFTNL_EXPR_BITWISE_LEN, 4);
    nftnl_expr_set(bw.get(), NFTNL_EXPR_BITWISE_MASK, &keep, 4);
    nftnl_expr_set(bw.get(), NFTNL_EXPR_BITWISE_XOR, &bit, 4);
    push(std::move(bw));
    ExprPtr set = expr("ct");
    nftnl_expr_set_u32(set.get(), NFTNL_EXPR_CT_KEY, NFT_CT_MARK);
    nftnl_expr_set_u32(set.get(), NFTNL_EXPR_CT_SREG, NFT_REG_1);
    return push(std::move(set));
  }

  // The owner of the packet's socket. A packet without a (full) socket —
  // the kernel's own resets and ICMP errors, a TIME_WAIT ack — matches
  // neither form: the rule stops there.
  Rule& skuid_is(std::uint32_t uid) { return meta(NFT_META_SKUID).eq_u32(uid); }
  Rule& skuid_not(std::uint32_t uid) {
    meta(NFT_META_SKUID);
    return cmp(NFT_CMP_NEQ, &uid, 4);
  }
  // Further `!= uid` tests on the uid skuid_not() loaded (register 1 still holds it).
  Rule& and_not(std::uint32_t uid) { return cmp(NFT_CMP_NEQ, &uid, 4); }

  Rule& in_set(const std::string& set, std::uint32_t set_id) {
    ExprPtr e = expr("lookup");
    nftnl_expr_set_u32(e.get(), NFTNL_EXPR_LOOKUP_SREG, NFT_REG_1);
    nftnl_expr_set_str(e.get(), NFTNL_EXPR_LOOKUP_SET, set.c_str());
    // The set is created in the same transaction: the id lets the kernel
    // resolve it before commit.
    nftnl_expr_set_u32(e.get(), NFTNL_EXPR_LOOKUP_SET_ID, set_id);
    return push(std::move(e));
  }

  // meta iifname / oifname: the kernel compares IFNAMSIZ bytes, the name
  // zero-padded (names are checked to fit before anything is built).
  Rule& ifname(std::uint32_t key, std::uint32_t op, const std::string& name) {
    std::array<char, ifname_size> padded{};
    std::memcpy(padded.data(), name.data(), std::min(name.size(), padded.size() - 1));
    return meta(key).cmp(op, padded.data(), ifname_size);
  }
  Rule& masquerade() { return push(expr("masq")); }

  Rule& counter() { return push(expr("counter")); }
  // Counts in the table's named counter `name` (readable by name).
  Rule& count_in(const std::string& name) {
    ExprPtr e = expr("objref");
    nftnl_expr_set_u32(e.get(), NFTNL_EXPR_OBJREF_IMM_TYPE, NFT_OBJECT_COUNTER);
    nftnl_expr_set_str(e.get(), NFTNL_EXPR_OBJREF_IMM_NAME, name.c_str());
    return push(std::move(e));
  }
  // Loads into a 32-bit register (NFT_REG32_xx) instead of register 1: the
  // parts of a concatenated set key sit in consecutive ones, each part
  // zero-padded by the kernel to a multiple of 4 bytes.
  Rule& payload_to(std::uint32_t base, std::uint32_t offset, std::uint32_t len, std::uint32_t reg) {
    ExprPtr e = expr("payload");
    nftnl_expr_set_u32(e.get(), NFTNL_EXPR_PAYLOAD_BASE, base);
    nftnl_expr_set_u32(e.get(), NFTNL_EXPR_PAYLOAD_OFFSET, offset);
    nftnl_expr_set_u32(e.get(), NFTNL_EXPR_PAYLOAD_LEN, len);
    nftnl_expr_set_u32(e.get(), NFTNL_EXPR_PAYLOAD_DREG, reg);
    return push(std::move(e));
  }
  Rule& meta_to(std::uint32_t key, std::uint32_t reg) {
    ExprPtr e = expr("meta");
    nftnl_expr_set_u32(e.get(), NFTNL_EXPR_META_KEY, key);
    nftnl_expr_set_u32(e.get(), NFTNL_EXPR_META_DREG, reg);
    return push(std::move(e));
  }
  // add @set { <key from sreg> counter }: creates the element on first
  // match (nothing when the set is full: the rule stops there, so keep a
  // verdict out of it) and counts every match in the element's counter.
  Rule& add_counted(const std::string& set, std::uint32_t set_id, std::uint32_t sreg) {
    ExprPtr e = expr("dynset");
    nftnl_expr_set_u32(e.get(), NFTNL_EXPR_DYNSET_OP, NFT_DYNSET_OP_ADD);
    nftnl_expr_set_u32(e.get(), NFTNL_EXPR_DYNSET_SREG_KEY, sreg);
    nftnl_expr_set_str(e.get(), NFTNL_EXPR_DYNSET_SET_NAME, set.c_str());
    nftnl_expr_set_u32(e.get(), NFTNL_EXPR_DYNSET_SET_ID, set_id);
    ExprPtr ctr = expr("counter");
    nftnl_expr_set(e.get(), NFTNL_EXPR_DYNSET_EXPR, ctr.release(), 0);  // the dynset owns it now
    return push(std::move(e));
  }
  Rule& limit_per_second(std::uint64_t rate, std::uint32_t burst) {
    ExprPtr e = expr("limit");
    nftnl_expr_set_u64(e.get(), NFTNL_EXPR_LIMIT_RATE, rate);
    nftnl_expr_set_u64(e.get(), NFTNL_EXPR_LIMIT_UNIT, 1);
    nftnl_expr_set_u32(e.get(), NFTNL_EXPR_LIMIT_BURST, burst);
    nftnl_expr_set_u32(e.get(), NFTNL_EXPR_LIMIT_TYPE, NFT_LIMIT_PKTS);
    nftnl_expr_set_u32(e.get(), NFTNL_EXPR_LIMIT_FLAGS, 0);
    return push(std::move(e));
  }
  Rule& log(const char* prefix) {
    ExprPtr e = expr("log");
    nftnl_expr_set_str(e.get(), NFTNL_EXPR_LOG_PREFIX, prefix);
    return push(std::move(e));
  }
  Rule& reject(std::uint32_t type, std::uint8_t code) {
    ExprPtr e = expr("reject");
    nftnl_expr_set_u32(e.get(), NFTNL_EXPR_REJECT_TYPE, type);
    nftnl_expr_set_u8(e.get(), NFTNL_EXPR_REJECT_CODE, code);
    return push(std::move(e));
  }
  Rule& redirect_to_port(std::uint16_t port) {
    ExprPtr imm = expr("immediate");
    const std::uint16_t be = htons(port);
    nftnl_expr_set_u32(imm.get(), NFTNL_EXPR_IMM_DREG, NFT_REG_1);
    nftnl_expr_set(imm.get(), NFTNL_EXPR_IMM_DATA, &be, 2);
    push(std::move(imm));
    ExprPtr redir = expr("redir");
    nftnl_expr_set_u32(redir.get(), NFTNL_EXPR_REDIR_REG_PROTO_MIN, NFT_REG_1);
    return push(std::move(redir));
  }
  Rule& verdict(std::uint32_t v) {
    ExprPtr e = expr("immediate");
    nftnl_expr_set_u32(e.get(), NFTNL_EXPR_IMM_DREG, NFT_REG_VERDICT);
    nftnl_expr_set_u32(e.get(), NFTNL_EXPR_IMM_VERDICT, v);
    return push(std::move(e));
  }
  Rule& accept() { return verdict(NF_ACCEPT); }
  Rule& drop() { return verdict(NF_DROP); }

  nftnl_rule* get() const noexcept { return rule_.get(); }
  const std::string& comment() const noexcept { return comment_; }

 private:
  static ExprPtr expr(const char* name) { return checked<ExprPtr>(nftnl_expr_alloc(name)); }
  Rule& push(ExprPtr e) {
    nftnl_rule_add_expr(rule_.get(), e.release());  // the rule owns it now
    return *this;
  }

  RulePtr rule_;
  std::string comment_;
};

// Everything one install_ruleset() transaction holds, in kernel order.
class RulesetBatch {
 public:
  RulesetBatch(const RulesetSpec& spec, Socket& sock) : spec_(spec) {
    names_room_ = spec.table.size() + spec.set4.size() + spec.set6.size() + spec.static_set4.size() +
                  spec.static_set6.size() + 64;
    batch_.begin(sock.next_seq());
  }

  void table_replace() {
    TablePtr t = checked<TablePtr>(nftnl_table_alloc());
    nftnl_table_set_str(t.get(), NFTNL_TABLE_NAME, spec_.table.c_str());
    nftnl_table_set_u32(t.get(), NFTNL_TABLE_FAMILY, NFPROTO_INET);
    auto build = [&](nlmsghdr* nlh) { nftnl_table_nlmsg_build_payload(nlh, t.get()); };
    // add (no-op if present) + delete + add: replaces any earlier table,
    // with everything in it, atomically — there is no moment without rules.
    batch_.add(NFT_MSG_NEWTABLE, NLM_F_CREATE, names_room_, "add table", spec_.table, build);
    batch_.add(NFT_MSG_DELTABLE, 0, names_room_, "delete table", spec_.table, build);
    batch_.add(NFT_MSG_NEWTABLE, NLM_F_CREATE, names_room_, "add table", spec_.table, build);
  }

  void set(const std::string& name, std::uint32_t id, Family f, std::uint32_t flags) {
    SetPtr s = checked<SetPtr>(nftnl_set_alloc());
    nftnl_set_set_str(s.get(), NFTNL_SET_TABLE, spec_.table.c_str());
    nftnl_set_set_str(s.get(), NFTNL_SET_NAME, name.c_str());
    nftnl_set_set_u32(s.get(), NFTNL_SET_FAMILY, NFPROTO_INET);
    nftnl_set_set_u32(s.get(), NFTNL_SET_KEY_TYPE, f == Family::v4 ? nft_type_ipv4_addr : nft_type_ipv6_addr);
    nftnl_set_set_u32(s.get(), NFTNL_SET_KEY_LEN, static_cast<std::uint32_t>(address_length(f)));
    nftnl_set_set_u32(s.get(), NFTNL_SET_FLAGS, flags);
    nftnl_set_set_u32(s.get(), NFTNL_SET_ID, id);
    if ((flags & NFT_SET_TIMEOUT) != 0) {
      // Bound the dynamic sets: a flood of distinct allowed addresses fails
      // the insert (ENFILE → dnsguard answers SERVFAIL) instead of growing
      // kernel memory without limit.
      nftnl_set_set_u32(s.get(), NFTNL_SET_DESC_SIZE, spec_.set_size);
    }
    batch_.add(NFT_MSG_NEWSET, NLM_F_CREATE, names_room_ + 256, "add set", name,
               [&](nlmsghdr* nlh) { nftnl_set_nlmsg_build_payload(nlh, s.get()); });
  }

  // A dynamic set of concatenated keys (`key_len` bytes), bounded by `size`.
  void keyed_set(const std::string& name, std::uint32_t id, std::uint32_t key_type, std::uint32_t key_len,
                 std::uint32_t size) {
    SetPtr s = checked<SetPtr>(nftnl_set_alloc());
    nftnl_set_set_str(s.get(), NFTNL_SET_TABLE, spec_.table.c_str());
    nftnl_set_set_str(s.get(), NFTNL_SET_NAME, name.c_str());
    nftnl_set_set_u32(s.get(), NFTNL_SET_FAMILY, NFPROTO_INET);
    nftnl_set_set_u32(s.get(), NFTNL_SET_KEY_TYPE, key_type);
    nftnl_set_set_u32(s.get(), NFTNL_SET_KEY_LEN, key_len);
    nftnl_set_set_u32(s.get(), NFTNL_SET_FLAGS, NFT_SET_EVAL);  // filled from the packet path
    nftnl_set_set_u32(s.get(), NFTNL_SET_ID, id);
    nftnl_set_set_u32(s.get(), NFTNL_SET_DESC_SIZE, size);
    batch_.add(NFT_MSG_NEWSET, NLM_F_CREATE, names_room_ + 256, "add set", name,
               [&](nlmsghdr* nlh) { nftnl_set_nlmsg_build_payload(nlh, s.get()); });
  }

  void counter_object(const std::string& name) {
    ObjPtr o = checked<ObjPtr>(nftnl_obj_alloc());
    nftnl_obj_set_str(o.get(), NFTNL_OBJ_TABLE, spec_.table.c_str());
    nftnl_obj_set_str(o.get(), NFTNL_OBJ_NAME, name.c_str());
    nftnl_obj_set_u32(o.get(), NFTNL_OBJ_FAMILY, NFPROTO_INET);
    nftnl_obj_set_u32(o.get(), NFTNL_OBJ_TYPE, NFT_OBJECT_COUNTER);
    batch_.add(NFT_MSG_NEWOBJ, NLM_F_CREATE, names_room_ + 128, "add counter", name,
               [&](nlmsghdr* nlh) { nftnl_obj_nlmsg_build_payload(nlh, o.get()); });
  }

  void static_elements(const std::string& name, std::uint32_t id, Family f) {
    const std::vector<Interval> intervals = cidr_intervals(spec_.static_cidrs, f);
    const std::size_t len = address_length(f);
    // Two elements per interval (start, end); chunk to keep messages small.
    std::size_t done = 0;
    for (std::size_t count : split_counts(intervals.size(), max_elements_per_message / 2)) {
      SetPtr s = checked<SetPtr>(nftnl_set_alloc());
      nftnl_set_set_str(s.get(), NFTNL_SET_TABLE, spec_.table.c_str());
      nftnl_set_set_str(s.get(), NFTNL_SET_NAME, name.c_str());
      nftnl_set_set_u32(s.get(), NFTNL_SET_ID, id);
      for (std::size_t i = done; i < done + count; ++i) {
        SetElemPtr start = checked<SetElemPtr>(nftnl_set_elem_alloc());
        nftnl_set_elem_set(start.get(), NFTNL_SET_ELEM_KEY, intervals[i].start.data(), static_cast<std::uint32_t>(len));
        nftnl_set_elem_add(s.get(), start.release());  // the set owns it now
        if (intervals[i].end) {
          SetElemPtr end = checked<SetElemPtr>(nftnl_set_elem_alloc());
          nftnl_set_elem_set(end.get(), NFTNL_SET_ELEM_KEY, intervals[i].end->data(), static_cast<std::uint32_t>(len));
          nftnl_set_elem_set_u32(end.get(), NFTNL_SET_ELEM_FLAGS, NFT_SET_ELEM_INTERVAL_END);
          nftnl_set_elem_add(s.get(), end.release());
        }
      }
      batch_.add(NFT_MSG_NEWSETELEM, NLM_F_CREATE, names_room_ + 2 * count * max_element_bytes,
                 "add elements to set", name,
                 [&](nlmsghdr* nlh) { nftnl_set_elems_nlmsg_build_payload(nlh, s.get()); });
      done += count;
    }
  }

  void chain(const char* name, const char* type, std::uint32_t hook, std::int32_t priority, std::uint32_t policy) {
    ChainPtr c = checked<ChainPtr>(nftnl_chain_alloc());
    nftnl_chain_set_str(c.get(), NFTNL_CHAIN_TABLE, spec_.table.c_str());
    nftnl_chain_set_str(c.get(), NFTNL_CHAIN_NAME, name);
    nftnl_chain_set_u32(c.get(), NFTNL_CHAIN_FAMILY, NFPROTO_INET);
    nftnl_chain_set_str(c.get(), NFTNL_CHAIN_TYPE, type);
    nftnl_chain_set_u32(c.get(), NFTNL_CHAIN_HOOKNUM, hook);
    nftnl_chain_set_s32(c.get(), NFTNL_CHAIN_PRIO, priority);
    nftnl_chain_set_u32(c.get(), NFTNL_CHAIN_POLICY, policy);
    batch_.add(NFT_MSG_NEWCHAIN, NLM_F_CREATE, names_room_ + 256, "add chain", name,
               [&](nlmsghdr* nlh) { nftnl_chain_nlmsg_build_payload(nlh, c.get()); });
  }

  void add(const char* chain, const Rule& r) {
    batch_.add(NFT_MSG_NEWRULE, NLM_F_CREATE | NLM_F_APPEND, rule_room + names_room_, "add rule to chain", chain,
               [&](nlmsghdr* nlh) { nftnl_rule_nlmsg_build_payload(nlh, r.get()); }, r.comment());
  }

  Rule rule(const char* chain, std::string comment) const { return Rule(spec_.table, chain, std::move(comment)); }

  Batch& batch() { return batch_; }

 private:
  const RulesetSpec& spec_;
  std::size_t names_room_ = 0;
  Batch batch_;
};

constexpr std::uint32_t set4_id = 1;
constexpr std::uint32_t set6_id = 2;
constexpr std::uint32_t static4_id = 3;
constexpr std::uint32_t static6_id = 4;
constexpr std::uint32_t refused4_id = 5;
constexpr std::uint32_t refused6_id = 6;

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
//  - dnsguard's packets to an upstream's address travel only in the
//    original direction of a flow (never as the reply of one someone else
//    opened, which would skip Docker's DNAT and reach whoever opened it).
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
  for (const Endpoint& up : spec.upstreams) {
    // On 127.0.0.1 / ::1 dnsguard also answers its own clients (reply
    // direction, to that address): there the upstream's port tells them
    // apart — no NAT moves it on those addresses.
    const bool shared = is_shared_loopback(up.addr);
    Rule r = b.rule(out, "dnsguard reaches upstream " + to_string(up.addr) +
                             (shared ? " port " + std::to_string(up.port) : std::string()) + " only on flows it opened");
    r.skuid_is(spec.dnsguard_uid).daddr_is(up.addr);
    if (shared) r.payload(NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2).eq_port(up.port);
    b.add(out, r.ct_direction(ct_dir_reply).drop());
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

// Nested Docker (issue 15). The engine runs in a sandbox network namespace
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

// Inbound: nothing reaches a listener in the cage from outside. A server
// the agent starts would otherwise be a channel to any host that can reach
// the container (other containers on the network, a published port), with
// the replies leaving as established traffic past the allowlist.
void input_chain(RulesetBatch& b, const RulesetSpec& spec) {
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
  if (!spec.nested_link.empty()) nested_input(b, spec);
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

// New TCP connections of every uid but dnsguard's to a gated port of an
// address the sets admit go to the gate instead (issue 12). Only addresses
// in the sets: anything else is refused by the filter as before, so the
// gate never sees a connection the address check would not have let out.
// NAT chains see only a connection's first packet. Static CIDRs are
// address-level by the user's choice: they are not redirected.
void gate_redirect(RulesetBatch& b, const RulesetSpec& spec) {
  const char* nat = "gate_redirect";
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

}  // namespace

void install_ruleset(const RulesetSpec& spec) {
  const std::string operation = "install ruleset inet " + spec.table;
  if (!spec.nested_link.empty()) check_nested(spec);
  check_local_resolvers(spec);
  Socket sock;
  RulesetBatch b(spec, sock);
  b.table_replace();

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
  if (!spec.gated_ports.empty()) b.chain("gate_redirect", "nat", NF_INET_LOCAL_OUT, dns_redirect_priority, NF_ACCEPT);
  const bool nested = !spec.nested_link.empty();
  if (nested) nested_chains(b);

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
  // Connections redirected to the gate (chain gate_redirect): accepted for
  // the same reason as the DNS redirect above. The gate itself refuses a
  // connection that was not redirected (no original destination).
  if (!spec.gated_ports.empty()) {
    for (const Address* lo : {&loopback4, &loopback6}) {
      b.add(out, b.rule(out, std::string("TCP redirected to the connection gate on ") + to_string(*lo))
                     .daddr_is(*lo)
                     .l4proto(IPPROTO_TCP)
                     .dport(spec.gate_port)
                     .accept());
    }
    // QUIC would carry TLS past the gate: refused at once, so clients fall
    // back to TCP (HTTP/3 is always optional).
    b.add(out, b.rule(out, "QUIC (udp 443) refused: TLS goes through the gate")
                   .meta(NFT_META_SKUID)
                   .cmp(NFT_CMP_NEQ, &spec.dnsguard_uid, 4)
                   .l4proto(IPPROTO_UDP)
                   .dport(443)
                   .reject(NFT_REJECT_ICMPX_UNREACH, NFT_REJECT_ICMPX_ADMIN_PROHIBITED));
  }
  // IPv6 cannot resolve on-link neighbours (or find a router) without these;
  // they carry no payload and reach only the local link.
  neighbour_discovery(b, out, spec, {{icmpv6_neighbor_solicit, "neighbour solicitation"},
                               {icmpv6_neighbor_advert, "neighbour advertisement"},
                               {icmpv6_router_solicit, "router solicitation"}});
  if (nested) nested_output(b, spec);
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

  // Nested containers (forwarded traffic) get the same destination policy,
  // DNS included: a nested container's query to a resolver that happens to
  // be allowed (a static CIDR, or an allowed name's address) would otherwise
  // resolve any name past dnsguard's allowlist.
  const char* fwd = "forward";
  b.add(fwd, b.rule(fwd, "established/related: traffic of allowed connections").ct_established_or_related().accept());
  if (nested) nested_forward(b, spec);
  other_dns_never_leaves(b, fwd);
  allowed_destinations(b, fwd, spec);
  reject_rest(b, fwd, spec);

  input_chain(b, spec);

  // Every other uid's DNS, to whatever address, lands on dnsguard — but
  // not dnsguard's own, nor a local resolver's forwarded queries (those
  // would loop back into dnsguard). Packets without a socket have no skuid:
  // the rule does not match them and the filter chain drops them.
  const char* nat = "dns_redirect";
  for (std::uint8_t proto : {std::uint8_t{IPPROTO_UDP}, std::uint8_t{IPPROTO_TCP}}) {
    Rule r = b.rule(nat, proto == IPPROTO_UDP ? "DNS (udp) of other uids to dnsguard"
                                              : "DNS (tcp) of other uids to dnsguard");
    r.skuid_not(spec.dnsguard_uid);
    for (const LocalResolver& lr : spec.local_resolvers) r.and_not(lr.uid);
    b.add(nat, r.l4proto(proto).dport(dns_port).redirect_to_port(spec.listen_port));
  }

  if (!spec.gated_ports.empty()) gate_redirect(b, spec);
  if (nested) {
    nested_source_check(b, spec);
    nested_dns_redirect(b, spec);
    nested_masquerade(b, spec);
  }

  b.batch().end();
  sock.commit(b.batch(), operation);
}

void delete_table(std::string_view table) {
  const std::string name(table);
  Socket sock;
  Batch batch;
  batch.begin(sock.next_seq());
  TablePtr t = checked<TablePtr>(nftnl_table_alloc());
  nftnl_table_set_str(t.get(), NFTNL_TABLE_NAME, name.c_str());
  nftnl_table_set_u32(t.get(), NFTNL_TABLE_FAMILY, NFPROTO_INET);
  batch.add(NFT_MSG_DELTABLE, 0, name.size() + 64, "delete table", name,
            [&](nlmsghdr* nlh) { nftnl_table_nlmsg_build_payload(nlh, t.get()); });
  batch.end();
  try {
    sock.commit(batch, "delete table inet " + name);
  } catch (const NetlinkError& e) {
    // Deleting what is not there leaves the state the caller wants.
    if (e.error() != ENOENT) throw;
  }
}

}  // namespace cagent::nft
