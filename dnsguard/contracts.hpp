#pragma once
// What dnsguard and the host exchange besides the session policy
// (policy.hpp), each written by one function and read by one:
//
//   dnsguard  DecisionRecord::snapshot() ─write_decisions()─▶ decisions.json
//   cagent    (exit summary, ps, log)   ◀─parse_decisions()─ decisions.json
//
//   cagent allow/deny ─docker exec -u 0─▶ dnsguard --control SOCKET allow|deny|list …
//     ─write_control_request()─▶ control socket ─parse_control_request()─▶ dnsguard
//     ◀─parse_control_reply()── (printed by dnsguard --control) ◀─write_control_reply()─
//
// Both are JSON documents of one line (Boost.JSON writes and reads them:
// one strict RFC 8259 parser for every reader, exact 64-bit counts, and a
// format any tool can read — the tests read the record with Python). Each
// starts with "version", the major version of its schema:
//   - a key added later is optional for readers of the same version (absent:
//     the member's default) and ignored by readers that do not know it;
//   - a change that an existing reader would misread (a key removed,
//     renamed, or given another meaning) takes the next version, and a
//     reader refuses a version it does not know with one line saying so.
// The host and the image are built from the same sources, so in practice
// both sides speak the same version; the check makes a mismatch say so
// instead of reading wrong numbers.
//
// Part of `cagent_policy`, the leaf every side links (no Asio, ldns, nft).

#include <cstdint>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace cagent::dnsguard {

// A document the reader cannot take: not JSON, an unknown version, a key
// of the wrong type. One line: "<source>: <key path>: <what>", e.g.
// "decisions.json: denied[2].count: must be an unsigned integer".
class FormatError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// ---- the decision record: decisions.json ----------------------------------
// dnsguard's exact account of what it refused (see decisions.hpp for how it
// is counted). Entries come sorted by count, most first.

inline constexpr int kDecisionsVersion = 1;

// One (name, query type) whose lookups were denied.
struct DeniedLookup {
  std::string name;  // lowercase, no trailing dot ("<bad label bytes>" for names not printable)
  std::uint16_t type = 0;
  std::uint64_t count = 0;
  std::int64_t first = 0, last = 0;  // unix seconds
  friend bool operator==(const DeniedLookup&, const DeniedLookup&) = default;
};

// A name resolved only because the session was in learn mode (policy
// `learn`): the allowlist did not allow it. Per name, all query types.
struct LearnedName {
  std::string name;  // lowercase, no trailing dot
  std::uint64_t count = 0;
  std::int64_t first = 0, last = 0;  // unix seconds
  friend bool operator==(const LearnedName&, const LearnedName&) = default;
};

// Connections the connection gate refused: by name (dst empty) or, for a
// client that named none, by destination.
struct GateRefusal {
  std::string name, dst, reason;
  std::uint64_t count = 0;
  std::int64_t first = 0, last = 0;
  friend bool operator==(const GateRefusal&, const GateRefusal&) = default;
};

// Packets the firewall itself refused, per destination ("198.51.100.19:80",
// "[2001:db8::1]:443") and protocol ("tcp", "udp").
struct FirewallRefusal {
  std::string dst, proto;
  std::uint64_t count = 0;
  std::int64_t first = 0, last = 0;
  friend bool operator==(const FirewallRefusal&, const FirewallRefusal&) = default;
};

enum class ChangeOp : std::uint8_t { allow, deny };

// A run-time allowlist change (`cagent allow` / `cagent deny`).
struct AllowChange {
  ChangeOp op = ChangeOp::allow;
  std::string name;  // the normalized pattern
  std::int64_t time = 0;
  friend bool operator==(const AllowChange&, const AllowChange&) = default;
};

// What of the session's account dnsguard could not write to its log
// directory (a full disk, a quota, an I/O error): from `since` on, this
// record lagged behind, the human log lost lines, or gate bindings were not
// journalled. Absent (null) in a record that lost nothing. dnsguard keeps
// counting in memory whatever fails, and writes this the moment it can.
struct Incomplete {
  std::int64_t since = 0;  // unix seconds of the first failed write
  std::string reason;      // that failure, one line: "decisions.json: No space left on device"
  std::uint64_t record_writes_failed = 0;  // rewrites of this file that failed
  std::uint64_t log_lines_lost = 0;        // lines dnsguard.log did not get
  std::uint64_t bindings_lost = 0;         // gate bindings not journalled (a restart would not restore them)
  // A restarted dnsguard took up a record that had lagged behind: the
  // totals miss what its predecessor counted and could not write.
  bool totals_short = false;
  friend bool operator==(const Incomplete&, const Incomplete&) = default;
};

// dnsguard rewrites its record at least this often while it runs (and
// more often while it changes), so a reader can tell a record that stopped
// being written from one that has nothing new to say.
inline constexpr std::uint32_t kDecisionsRewrittenEvery = 10;

struct Decisions {
  std::int64_t updated = 0;  // unix seconds of this snapshot
  // Totals are exact; the lists are bounded, and `*_unlisted` is what the
  // totals count beyond them.
  std::uint64_t denied_total = 0, denied_unlisted = 0;
  std::vector<DeniedLookup> denied;
  std::uint64_t gate_refused_total = 0, gate_refused_unlisted = 0;
  std::vector<GateRefusal> gate_refused;
  // Added after the first records (absent there: zero and empty).
  std::uint64_t firewall_refused_total = 0, firewall_refused_unlisted = 0;
  std::vector<FirewallRefusal> firewall_refused;
  std::uint64_t changes_dropped = 0;  // changes older than the ones kept
  std::vector<AllowChange> changes;   // oldest first
  // Added with the record's freshness (absent in older records: 0, false,
  // null — a reader can then tell nothing about freshness):
  // the writer's promise to rewrite the file at least every so many
  // seconds while it runs (kDecisionsRewrittenEvery); 0: no promise.
  std::uint32_t rewritten_every = 0;
  // Written by dnsguard as it stopped: nothing was decided after it.
  bool final = false;
  std::optional<Incomplete> incomplete;
  // Added with learn mode (absent in older records and outside learn mode:
  // zero and empty). Bounded like `denied`.
  std::uint64_t learned_total = 0, learned_unlisted = 0;
  std::vector<LearnedName> learned;
  friend bool operator==(const Decisions&, const Decisions&) = default;
};

// One line of JSON, newline-terminated. Strings that are not UTF-8 are
// written with U+FFFD for the bytes that are not, so the file always parses.
std::string write_decisions(const Decisions& decisions);
// Throws FormatError; `source` names the file in the message.
Decisions parse_decisions(std::string_view text, std::string_view source = "decisions.json");

// ---- the control protocol ---------------------------------------------------
// One request line in, one reply line out, per connection. dnsguard
// --control prints the reply line as it came, so the host reads the same
// document through docker exec.
//
// Except `watch` (ask mode, `cagent watch`): its reply line is followed by
// one WatchEvent line per denied or held lookup for as long as the watcher
// keeps the connection open; while one is open and the policy says `ask`,
// a denied lookup is held (see WatchEvent). `refuse` answers the held
// lookups of its names as denied now (the approver's "keep denied"); an
// `allow` from any connection answers those it now allows.

inline constexpr int kControlVersion = 1;

enum class ControlOp : std::uint8_t { allow, deny, list, watch, refuse };
// "allow", "deny", "list", "watch", "refuse"; nullopt for anything else.
std::optional<ControlOp> parse_control_op(std::string_view word);

struct ControlRequest {
  ControlOp op = ControlOp::list;
  std::vector<std::string> patterns;  // allow, deny: as given (dnsguard validates them)
  friend bool operator==(const ControlRequest&, const ControlRequest&) = default;
};

struct ControlReply {
  bool ok = false;
  std::string error;               // !ok: why nothing changed, one line
  ControlOp op = ControlOp::list;  // the request's (list when it was unreadable)
  // allow, deny: the request's patterns, normalized; list: the run-time
  // additions in force.
  std::vector<std::string> names;
  // allow: those of `names` that were not allowed before.
  std::vector<std::string> added;
  // deny: how many addresses left the firewall's sets at once; nullopt:
  // the eviction failed and they leave at their timeout.
  std::optional<std::uint64_t> evicted;
  friend bool operator==(const ControlReply&, const ControlReply&) = default;
};

// What a watcher is told, one line each.
enum class WatchWhat : std::uint8_t {
  held,       // a denied lookup waits (at most `wait_ms`) for an approver's decision
  denied,     // a lookup was denied at once (no ask, or no room to hold it)
  allowed,    // the name's held lookups were answered: it is allowed now
  refused,    // … answered denied: an approver kept it denied, or the last one left
  timed_out,  // … answered denied: nobody decided within ask_timeout
};
struct WatchEvent {
  WatchWhat event = WatchWhat::denied;
  std::string name;         // as the client spelled it, lower-cased
  std::uint16_t type = 0;   // the query type (held, denied; 0 otherwise)
  std::uint64_t wait_ms = 0;  // held: how long it waits at most
  // Events this watcher did not get since its previous one: `denied`
  // events beyond dnsguard's rate (a flood of names) or a full queue (a
  // watcher that lags). Added later: absent means 0.
  std::uint64_t dropped = 0;
  friend bool operator==(const WatchEvent&, const WatchEvent&) = default;
};

// Each one line, newline-terminated; the parsers throw FormatError.
std::string write_watch_event(const WatchEvent& event);
WatchEvent parse_watch_event(std::string_view line);
std::string write_control_request(const ControlRequest& request);
ControlRequest parse_control_request(std::string_view line);
std::string write_control_reply(const ControlReply& reply);
ControlReply parse_control_reply(std::string_view line);

// The reply for people, without a status word: "allowed a.example b.example",
// "denied a.example; 2 addresses left the sets", the list, or the error.
std::string describe(const ControlReply& reply);

// ---- where they are -----------------------------------------------------------
// Both live in the session's log directory: the directory of the policy's
// log.file, which the host bind-mounts from ~/.cagent/logs/session-ID.

// ---- the secret relay (launcher/relay) ------------------------------------
//
//   cagent ─unix socket, once, cage-init's connection (the relay's stdin)─▶
//     write_secrets() ──▶ parse_secrets() in cagent-relay
//   dnsguard's gate ─TCP 127.0.0.1:relay.port─▶ write_relay_handoff() (a
//     2-byte big-endian length, then the document), then the client's TLS
//     bytes as they came ──▶ parse_relay_handoff() in cagent-relay

inline constexpr int kSecretsVersion = 1;
inline constexpr int kRelayHandoffVersion = 1;
// A hand-off document is at most this long (a name is at most 253 bytes).
inline constexpr std::size_t kMaxRelayHandoff = 1024;

// One secret as the relay needs it. The value travels only on the socket
// between cagent and the relay; it is never written anywhere.
struct SecretEntry {
  std::string name;
  std::string placeholder;
  std::string value;
  std::vector<std::string> hosts;
  friend bool operator==(const SecretEntry&, const SecretEntry&) = default;
};

struct SecretsDocument {
  std::vector<SecretEntry> secrets;
  friend bool operator==(const SecretsDocument&, const SecretsDocument&) = default;
};

std::string write_secrets(const SecretsDocument& doc);
SecretsDocument parse_secrets(std::string_view line);

// Which connection the gate hands over: the server name it admitted and
// the destination the client asked for.
struct RelayHandoff {
  std::string name;
  std::string addr;  // "198.51.100.7", "2001:db8::7"
  std::uint16_t port = 0;
  friend bool operator==(const RelayHandoff&, const RelayHandoff&) = default;
};

// One request the relay refused, one JSON line each in its record
// (relay.jsonl in the session's log directory), read by the host's summary.
inline constexpr int kRelayRefusalVersion = 1;
struct RelayRefusal {
  std::string host;     // the connection's server name
  std::string reason;   // one line
  std::string secret;   // a secret sent where it does not belong: its name
  std::string sent_to;  // …and the host it was sent to
  std::int64_t time = 0;  // unix seconds
  friend bool operator==(const RelayRefusal&, const RelayRefusal&) = default;
};
std::string write_relay_refusal(const RelayRefusal& refusal);
RelayRefusal parse_relay_refusal(std::string_view line);
std::filesystem::path relay_record_path(const std::filesystem::path& log_dir);

// With its 2-byte length in front (the relay reads exactly that much, so
// not one byte of the TLS stream behind it is taken).
std::string write_relay_handoff(const RelayHandoff& handoff);
// The document alone (without the length).
RelayHandoff parse_relay_handoff(std::string_view document);


// The log directory of a log file ("" when there is none: dnsguard logs to
// stderr and keeps neither record nor socket).
std::filesystem::path session_log_dir(std::string_view log_file);
// <log dir>/decisions.json
std::filesystem::path decisions_path(const std::filesystem::path& log_dir);
// <log dir>/control/dnsguard.sock (the directory is dnsguard's, mode 0700).
std::filesystem::path control_socket_path(const std::filesystem::path& log_dir);

}  // namespace cagent::dnsguard
