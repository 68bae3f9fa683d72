#pragma once
// nft/ — everything cagent says to the kernel's nf_tables, over libmnl +
// libnftnl (no `nft` binary, no libnftables).
//
// Data flow: callers describe *what* they want (a RulesetSpec, a list of
// SetElements); this layer builds one netlink batch per request, sends it
// once with extended ACKs requested, and collects every per-message error
// into a NetlinkError naming the operation and the kernel's message. A
// request either lands whole (one transaction) or not at all.
//
// This header is the contract used by cmd/dnsguard, launcher/cage and the
// tests; implementation details stay in the .cpp files.

#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace cagent::nft {

enum class Family : std::uint8_t { v4, v6 };

// An IP address in network byte order; for v4 only bytes[0..3] are used.
struct Address {
  Family family = Family::v4;
  std::array<std::uint8_t, 16> bytes{};
  friend bool operator==(const Address&, const Address&) = default;
};

// "192.0.2.1" or "2001:db8::1" (no brackets, no port); nullopt if malformed.
std::optional<Address> parse_address(std::string_view text);
std::string to_string(const Address& addr);

struct Cidr {
  Address base;
  std::uint8_t prefix_len = 0;
};

struct Endpoint {
  Address addr;
  std::uint16_t port = 53;
};

// Failure of a netlink request: names the operation (e.g. "add elements to
// inet cagent allow4") and carries the kernel's errno and extended-ACK text.
class NetlinkError : public std::runtime_error {
 public:
  NetlinkError(std::string operation, int error, std::string kernel_message);
  const std::string& operation() const noexcept { return operation_; }
  int error() const noexcept { return error_; }

 private:
  std::string operation_;
  int error_;
};

// A container port (range) published to the host: inbound connections to it
// are admitted (the user asked for it in trusted config).
struct InboundPort {
  std::uint8_t l4proto = 6;  // IPPROTO_TCP, IPPROTO_UDP or IPPROTO_SCTP
  std::uint16_t first = 0;
  std::uint16_t last = 0;    // == first for a single port
  friend bool operator==(const InboundPort&, const InboundPort&) = default;
};

// A resolver that lives in the cage's own network namespace: Docker's
// embedded resolver (127.0.0.11 on every user-defined network; dockerd
// opens its sockets there, as uid 0) when it is one of dnsguard's upstreams.
struct LocalResolver {
  Address addr;
  std::uint32_t uid = 0;  // the owner its sockets show in this namespace
  friend bool operator==(const LocalResolver&, const LocalResolver&) = default;
};

// The conntrack mark bit of flows opened by dnsguard or a local resolver
// ("owned" flows, see the ruleset's owned_flows()). One bit, so the rest of
// the mark stays free for whoever else runs in the namespace.
inline constexpr std::uint32_t owned_flow_mark = 0x20000000;

// The cage ruleset (table `inet <table>`), see nft/README.md "The ruleset".
struct RulesetSpec {
  std::string table = "cagent";
  std::string set4 = "allow4";
  std::string set6 = "allow6";
  std::uint32_t set_size = 65536;        // bound on each dynamic set
  std::uint32_t dnsguard_uid = 0;        // only this uid may talk DNS to upstreams
  std::vector<Endpoint> upstreams;       // dnsguard's upstream resolvers
  // Upstreams served from inside the namespace (their address is local):
  // only their owner may send from that address or answer dnsguard's
  // flows locally, and their own forwarded queries leave as they are.
  std::vector<LocalResolver> local_resolvers;
  std::uint16_t listen_port = 53;        // other DNS is redirected to the local stub here
  std::vector<Cidr> static_cidrs;        // always-allowed destinations (config CIDRs)
  // IPv6 prefixes of the cage's own links: neighbour discovery may reach
  // them (besides link-local and link-scope multicast).
  std::vector<Cidr> onlink6;
  std::vector<InboundPort> inbound;      // published ports; nothing else comes in
  // The connection gate (dnsguard's TCP listener on the loopback addresses
  // at gate_port): new TCP connections of other uids to these ports of an
  // address in allow4/allow6 are redirected there; UDP to 443 (QUIC) is
  // refused so clients fall back to TCP. Empty: no gate (address-level only).
  std::vector<std::uint16_t> gated_ports;
  std::uint16_t gate_port = 0;
  // The secret relay (with the gate only): it listens on 127.0.0.1 at
  // relay_port, where only dnsguard's gate may connect (everyone else is
  // refused there), and its own connections to the secrets' hosts leave
  // without being redirected to the gate (the gate admitted them, and
  // handed them over). 0: no relay.
  std::uint16_t relay_port = 0;
  std::uint32_t relay_uid = 0;
  // Names of the constant interval sets holding static_cidrs (always
  // created, possibly empty, so the rules never change shape).
  std::string static_set4 = "static4";
  std::string static_set6 = "static6";
  // What the firewall refused, for dnsguard's decision record (the user's
  // `cagent log`): every refused packet counts in the named counter
  // `refused_counter`; the first refused_size distinct TCP/UDP
  // (destination, protocol, port) per family also get an element with a
  // counter of their own in refused_set4/6, added by the rule itself (no
  // userspace on that path, nothing the agent can flood but a bounded set).
  std::string refused_set4 = "refused4";
  std::string refused_set6 = "refused6";
  std::string refused_counter = "refused";
  std::uint32_t refused_size = 1024;
  // Nested Docker: the veth link from the cage to the sandbox
  // namespace where cage-init runs the nested engine. Empty nested_link:
  // nothing nested, and the ruleset is exactly what it is without it. IPv4
  // only: the sandbox gets no IPv6 address or route.
  std::string nested_link;               // the cage side's interface name, e.g. "cagent-nd0"
  Address nested_address;                // the cage side's address: the sandbox's DNS goes here
  Cidr nested_subnet;                    // the link's subnet: masqueraded out of the uplink
};

// Installs the ruleset atomically, replacing any earlier table of that name
// in one transaction. Throws NetlinkError; on error the kernel state is
// unchanged.
void install_ruleset(const RulesetSpec& spec);

// How much longer the kernel holds an address than any SetElement timeout
// asks for: a client gets an answer a little after the insert (delivery
// delay) and the kernel's expiry is jiffy-granular, so the set must outlive
// every client's copy — by this grace on the set side, never by telling the
// client a shorter TTL. Timeouts in the kernel's view are `timeout + grace`.
inline constexpr std::chrono::seconds set_grace{2};

struct SetElement {
  Address addr;
  std::chrono::seconds timeout{};        // must be > 0 (0 would mean "never expires");
                                         // the kernel holds it set_grace longer
  // Nothing is sent when the kernel already holds the address at least this
  // long (0, the default: at least `timeout`, i.e. only ever extend to
  // exactly now + timeout). A caller that passes a shorter floor must not
  // rely on more than the time add() reports as held (see add()).
  std::chrono::seconds min_timeout{};
};

struct ListedElement {
  Address addr;
  std::chrono::milliseconds timeout{};   // as configured on the element
  std::chrono::milliseconds expires{};   // remaining time
};

// Deletes the conntrack entries whose original destination is one of
// `addresses`, so their next packet is judged by the ruleset as new (and
// refused once the address left its set): a name taken back at run time
// keeps no connection open. Returns how many entries it deleted; one that
// ended meanwhile is not an error. Throws NetlinkError (e.g. no conntrack
// netlink in this kernel).
std::size_t end_connections_to(std::span<const Address> addresses);

// One refused TCP/UDP destination and how many packets to it the firewall
// refused (exact since the ruleset was installed).
struct RefusedFlow {
  Address addr;
  std::uint8_t l4proto = 0;  // IPPROTO_TCP or IPPROTO_UDP
  std::uint16_t port = 0;
  std::uint64_t packets = 0;
};
struct Refusals {
  std::uint64_t total = 0;         // every refused packet, any protocol
  std::vector<RefusedFlow> flows;  // the itemized ones (bounded per family)
};

// Reads the refusal counters of a ruleset installed with these names (the
// RulesetSpec's refused_* fields). Throws NetlinkError.
class RefusalReader {
 public:
  explicit RefusalReader(RulesetSpec names);
  ~RefusalReader();
  RefusalReader(const RefusalReader&) = delete;
  RefusalReader& operator=(const RefusalReader&) = delete;
  Refusals read();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Keeps the dynamic sets fed. Holds one netlink socket and, per address, the
// expiry it last promised, so that add() only ever moves an expiry upward
// and sends nothing when the kernel already holds the address long enough.
// Not thread-safe: one owner (dnsguard's event loop).
class SetUpdater {
 public:
  // Learns what the sets already hold (a restarted dnsguard), so that an
  // address the kernel still holds is refreshed, never re-added: on kernels
  // before 6.12 a re-add is silently ignored and would leave the old expiry.
  SetUpdater(std::string table, std::string set4, std::string set6);
  ~SetUpdater();
  SetUpdater(const SetUpdater&) = delete;
  SetUpdater& operator=(const SetUpdater&) = delete;

  // Adds or extends every element in one transaction (split into several
  // messages when large) and returns after the kernel acknowledged it.
  // Throws NetlinkError; elements already held long enough cost nothing.
  void add(std::span<const SetElement> elements);

  // The same, and held[i] receives how long from now elements[i] may be
  // relied on (the kernel holds it set_grace longer): exactly its timeout
  // when it was sent, the remembered remaining promise when it was skipped
  // (>= its min_timeout).
  // held.size() must equal elements.size() (std::invalid_argument).
  void add(std::span<const SetElement> elements, std::span<std::chrono::milliseconds> held);

  // Takes addresses out of their sets now (a name taken back at run time):
  // one transaction per address, so one that already expired (ENOENT) does
  // not keep the others in; the memory forgets each once the kernel did.
  // Throws NetlinkError on any other failure (those before it are gone).
  void remove(std::span<const Address> addresses);

  // How an element that the kernel already holds gets a later expiry.
  // automatic: explicit NFTA_SET_ELEM_EXPIRATION on kernels >= 6.12,
  // delete + add in one batch before. The others force one path (tests).
  enum class RefreshMode : std::uint8_t { automatic, expiration, delete_add };
  void set_refresh_mode(RefreshMode mode) noexcept;

  // The kernel's view of one of the two sets.
  std::vector<ListedElement> list(Family family) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace cagent::nft
