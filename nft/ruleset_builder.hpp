#pragma once
// Building the cage ruleset (internal to nft/): the expression-by-expression
// Rule builder, the batch one install_ruleset() transaction collects, the
// ids of the sets created in it, and the seam for optional parts.
//
// The core chains (ruleset.cpp) read top to bottom and never test for an
// optional feature; a feature (the connection gate, the nested Docker link)
// is a RulesetFeature that declares its own chains and adds rules at named
// places of the core chains. Order matters inside a chain: each hook is
// called at one fixed position, documented where the core calls it.

#include <arpa/inet.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <netinet/in.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "nft/handles.hpp"
#include "nft/logic.hpp"
#include "nft/netlink.hpp"
#include "nft/nft.hpp"

namespace cagent::nft::build {

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
inline const Address loopback4 = *parse_address("127.0.0.1");
inline const Address loopback6 = *parse_address("::1");
// Where Docker's embedded DNS server answers inside a container on a
// user-defined network (a fixed address; the port behind it is random).
inline const Address docker_embedded_resolver = *parse_address("127.0.0.11");
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
inline const Cidr link_local6{*parse_address("fe80::"), 10};
inline const Cidr link_multicast6{*parse_address("ff02::"), 16};

inline std::array<std::uint8_t, 16> prefix_mask(std::uint8_t prefix_len) {
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
  // The flow's conntrack mark does not have `bit` set.
  Rule& ct_mark_lacks(std::uint32_t bit) {
    ct_load(NFT_CT_MARK);
    const std::uint32_t zero = 0;
    return masked(&bit, 4).cmp(NFT_CMP_EQ, &zero, 4);
  }
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

// An optional part of the ruleset. The core calls each hook once, at the
// place its name says; a hook adds rules to the core chain it names (in
// order) or to the feature's own chains.
class RulesetFeature {
 public:
  virtual ~RulesetFeature() = default;
  // Throws std::invalid_argument for a spec it cannot build from.
  virtual void check() const {}
  // Its own chains, declared after the core's.
  virtual void chains(RulesetBatch&) const {}
  // output: after the accepts of what the NAT chains redirected to loopback.
  virtual void output_redirected(RulesetBatch&) const {}
  // output: after neighbour discovery, before the upstream rules.
  virtual void output_local(RulesetBatch&) const {}
  // forward: right after established/related.
  virtual void forward_first(RulesetBatch&) const {}
  // input: after loopback, before published ports.
  virtual void input_local(RulesetBatch&) const {}
  // The rules of its own chains, last.
  virtual void own_rules(RulesetBatch&) const {}
};

// The features a spec asks for, in the order their hooks run (the gate's
// before the nested link's). Defined next to each feature.
std::unique_ptr<RulesetFeature> gate_feature(const RulesetSpec& spec);    // null: no gated ports
std::unique_ptr<RulesetFeature> nested_feature(const RulesetSpec& spec);  // null: no nested link

}  // namespace cagent::nft::build
