#include "dnsguard/contracts.hpp"

#include <boost/json.hpp>

#include <algorithm>
#include <concepts>
#include <limits>
#include <span>
#include <type_traits>
#include <utility>

namespace cagent::dnsguard {
namespace {

namespace json = boost::json;

// A value the schema refuses. `path` grows as it travels up to the
// document ("count" ─▶ "[2].count" ─▶ "denied[2].count").
struct Invalid {
  std::string path;
  std::string what;
};

std::string joined_path(std::string_view key, const std::string& rest) {
  if (rest.empty()) return std::string(key);
  return std::string(key) + (rest.front() == '[' ? "" : ".") + rest;
}

template <typename T, typename U>
concept Is = std::same_as<std::remove_const_t<T>, U>;

// Whether a reader of this version may find a key absent: keys added after
// the first writer of a version are optional (absent: the default).
enum class Presence : std::uint8_t { required, optional };
constexpr Presence kAddedLater = Presence::optional;

// ---- the schemas --------------------------------------------------------------
// Every key of every document, in the order written, with its member. The
// writer and the reader both walk these; a key is added here and nowhere
// else.

// How often and when, the end of every kind of entry.
template <typename T, typename Visit>
void count_fields(T& e, Visit&& visit) {
  visit("count", e.count);
  visit("first", e.first);
  visit("last", e.last);
}

template <Is<DeniedLookup> T, typename Visit>
void fields(T& e, Visit&& visit) {
  visit("name", e.name);
  visit("type", e.type);
  count_fields(e, visit);
}

template <Is<LearnedName> T, typename Visit>
void fields(T& e, Visit&& visit) {
  visit("name", e.name);
  count_fields(e, visit);
}

template <Is<GateRefusal> T, typename Visit>
void fields(T& e, Visit&& visit) {
  visit("name", e.name);
  visit("dst", e.dst);
  visit("reason", e.reason);
  count_fields(e, visit);
}

template <Is<FirewallRefusal> T, typename Visit>
void fields(T& e, Visit&& visit) {
  visit("dst", e.dst);
  visit("proto", e.proto);
  count_fields(e, visit);
}

template <Is<AllowChange> T, typename Visit>
void fields(T& c, Visit&& visit) {
  visit("op", c.op);
  visit("name", c.name);
  visit("time", c.time);
}

template <Is<Incomplete> T, typename Visit>
void fields(T& i, Visit&& visit) {
  visit("since", i.since);
  visit("reason", i.reason);
  visit("record_writes_failed", i.record_writes_failed);
  visit("log_lines_lost", i.log_lines_lost);
  visit("bindings_lost", i.bindings_lost);
  visit("totals_short", i.totals_short);
}

template <Is<Decisions> T, typename Visit>
void fields(T& d, Visit&& visit) {
  visit("updated", d.updated);
  visit("denied_total", d.denied_total);
  visit("denied_unlisted", d.denied_unlisted);
  visit("denied", d.denied);
  visit("gate_refused_total", d.gate_refused_total);
  visit("gate_refused_unlisted", d.gate_refused_unlisted);
  visit("gate_refused", d.gate_refused);
  visit("firewall_refused_total", d.firewall_refused_total, kAddedLater);
  visit("firewall_refused_unlisted", d.firewall_refused_unlisted, kAddedLater);
  visit("firewall_refused", d.firewall_refused, kAddedLater);
  visit("changes_dropped", d.changes_dropped, kAddedLater);
  visit("changes", d.changes, kAddedLater);
  visit("rewritten_every", d.rewritten_every, kAddedLater);
  visit("final", d.final, kAddedLater);
  visit("incomplete", d.incomplete, kAddedLater);
  visit("learned_total", d.learned_total, kAddedLater);
  visit("learned_unlisted", d.learned_unlisted, kAddedLater);
  visit("learned", d.learned, kAddedLater);
}

template <Is<ControlRequest> T, typename Visit>
void fields(T& r, Visit&& visit) {
  visit("op", r.op);
  visit("patterns", r.patterns);
}

template <Is<ControlReply> T, typename Visit>
void fields(T& r, Visit&& visit) {
  visit("ok", r.ok);
  visit("error", r.error);
  visit("op", r.op);
  visit("names", r.names);
  visit("added", r.added);
  visit("evicted", r.evicted);
}

template <Is<WatchEvent> T, typename Visit>
void fields(T& e, Visit&& visit) {
  visit("event", e.event);
  visit("name", e.name);
  visit("type", e.type);
  visit("wait_ms", e.wait_ms);
  visit("dropped", e.dropped, kAddedLater);
}

template <Is<SecretEntry> T, typename Visit>
void fields(T& e, Visit&& visit) {
  visit("name", e.name);
  visit("placeholder", e.placeholder);
  visit("value", e.value);
  visit("hosts", e.hosts);
}

template <Is<SecretsDocument> T, typename Visit>
void fields(T& d, Visit&& visit) {
  visit("secrets", d.secrets);
}

template <Is<RelayHandoff> T, typename Visit>
void fields(T& h, Visit&& visit) {
  visit("name", h.name);
  visit("addr", h.addr);
  visit("port", h.port);
}

template <Is<RelayRefusal> T, typename Visit>
void fields(T& r, Visit&& visit) {
  visit("host", r.host);
  visit("reason", r.reason);
  visit("secret", r.secret);
  visit("sent_to", r.sent_to);
  visit("time", r.time);
}

// The words of the enumerations.
constexpr std::pair<std::string_view, ChangeOp> kChangeOps[] = {{"allow", ChangeOp::allow}, {"deny", ChangeOp::deny}};
constexpr std::pair<std::string_view, ControlOp> kControlOps[] = {
    {"allow", ControlOp::allow}, {"deny", ControlOp::deny},   {"list", ControlOp::list},
    {"watch", ControlOp::watch}, {"refuse", ControlOp::refuse}};
constexpr std::pair<std::string_view, WatchWhat> kWatchWhats[] = {{"held", WatchWhat::held},
                                                                  {"denied", WatchWhat::denied},
                                                                  {"allowed", WatchWhat::allowed},
                                                                  {"refused", WatchWhat::refused},
                                                                  {"timed_out", WatchWhat::timed_out}};
constexpr std::span<const std::pair<std::string_view, ChangeOp>> words_of(ChangeOp) { return kChangeOps; }
constexpr std::span<const std::pair<std::string_view, ControlOp>> words_of(ControlOp) { return kControlOps; }
constexpr std::span<const std::pair<std::string_view, WatchWhat>> words_of(WatchWhat) { return kWatchWhats; }

template <typename T>
struct IsVector : std::false_type {};
template <typename T>
struct IsVector<std::vector<T>> : std::true_type {};
template <typename T>
struct IsOptional : std::false_type {};
template <typename T>
struct IsOptional<std::optional<T>> : std::true_type {};

// ---- strings: always UTF-8 on the way out -------------------------------------

// The length of the valid UTF-8 sequence at s[i], 0 when there is none
// (overlong forms, surrogates and code points past U+10FFFF are not).
std::size_t utf8_sequence(std::string_view s, std::size_t i) {
  const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned lead = byte(i);
  if (lead < 0x80) return 1;
  std::size_t n = 0;
  std::uint32_t cp = 0;
  if (lead >= 0xC2 && lead <= 0xDF) {
    n = 2;
    cp = lead & 0x1Fu;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    n = 3;
    cp = lead & 0x0Fu;
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    n = 4;
    cp = lead & 0x07u;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  for (std::size_t k = 1; k < n; ++k) {
    if ((byte(i + k) & 0xC0u) != 0x80u) return 0;
    cp = (cp << 6) | (byte(i + k) & 0x3Fu);
  }
  if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return n;
}

// A JSON string must be Unicode and the reader checks it: a byte that is
// not part of valid UTF-8 becomes U+FFFD, so one odd name can never make
// the whole document unreadable.
json::string utf8_string(std::string_view s) {
  json::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size();) {
    const std::size_t n = utf8_sequence(s, i);
    if (n == 0) {
      out.append("\xEF\xBF\xBD");
      ++i;
    } else {
      out.append(s.substr(i, n));
      i += n;
    }
  }
  return out;
}

// ---- writing ------------------------------------------------------------------

template <typename T>
json::value to_json(const T& v);

template <typename T>
void append_fields(json::object& out, const T& doc) {
  fields(doc, [&](std::string_view key, const auto& member, Presence = Presence::required) {
    out.emplace(key, to_json(member));
  });
}

template <typename T>
json::value to_json(const T& v) {
  if constexpr (std::is_same_v<T, bool>) {
    return json::value(v);
  } else if constexpr (std::is_enum_v<T>) {
    for (const auto& [word, value] : words_of(T{}))
      if (value == v) return json::string(word);
    return json::string("?");  // not reached: every value has a word
  } else if constexpr (std::is_integral_v<T> && std::is_unsigned_v<T>) {
    return json::value(static_cast<std::uint64_t>(v));
  } else if constexpr (std::is_integral_v<T>) {
    return json::value(static_cast<std::int64_t>(v));
  } else if constexpr (std::is_same_v<T, std::string>) {
    return utf8_string(v);
  } else if constexpr (IsVector<T>::value) {
    json::array out;
    out.reserve(v.size());
    for (const auto& item : v) out.push_back(to_json(item));
    return out;
  } else if constexpr (IsOptional<T>::value) {
    return v ? to_json(*v) : json::value(nullptr);
  } else {
    json::object out;
    append_fields(out, v);
    return out;
  }
}

template <typename T>
std::string write_document(const T& doc, int version) {
  json::object root;
  root.emplace("version", version);  // first, so a reader finds it before anything else
  append_fields(root, doc);
  return json::serialize(root) + "\n";
}

// ---- reading ------------------------------------------------------------------

std::uint64_t read_unsigned(const json::value& v) {
  if (v.is_uint64()) return v.get_uint64();
  if (v.is_int64() && v.get_int64() >= 0) return static_cast<std::uint64_t>(v.get_int64());
  throw Invalid{{}, "must be an unsigned integer"};
}

std::int64_t read_signed(const json::value& v) {
  if (v.is_int64()) return v.get_int64();
  if (v.is_uint64() && v.get_uint64() <= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
    return static_cast<std::int64_t>(v.get_uint64());
  throw Invalid{{}, "must be an integer"};
}

template <typename T>
void from_json(const json::value& v, T& out);

template <typename T>
void read_fields(const json::value& v, T& out) {
  const json::object* object = v.if_object();
  if (object == nullptr) throw Invalid{{}, "must be an object"};
  fields(out, [&](std::string_view key, auto& member, Presence presence = Presence::required) {
    const json::value* value = object->if_contains(key);
    if (value == nullptr) {
      if (presence == Presence::required) throw Invalid{std::string(key), "missing"};
      return;
    }
    try {
      from_json(*value, member);
    } catch (Invalid& bad) {
      bad.path = joined_path(key, bad.path);
      throw;
    }
  });
  // Keys this build does not know are left alone: a later writer of the
  // same version may add some (see contracts.hpp).
}

template <typename T>
void from_json(const json::value& v, T& out) {
  if constexpr (std::is_same_v<T, bool>) {
    if (!v.is_bool()) throw Invalid{{}, "must be true or false"};
    out = v.get_bool();
  } else if constexpr (std::is_enum_v<T>) {
    std::string expected;
    for (const auto& [word, value] : words_of(T{})) {
      if (v.is_string() && v.get_string() == word) {
        out = value;
        return;
      }
      expected += (expected.empty() ? "" : ", ") + std::string(word);
    }
    throw Invalid{{}, "must be one of " + expected};
  } else if constexpr (std::is_integral_v<T> && std::is_unsigned_v<T>) {
    const std::uint64_t n = read_unsigned(v);
    if (n > std::numeric_limits<T>::max())
      throw Invalid{{}, "must be at most " + std::to_string(std::numeric_limits<T>::max())};
    out = static_cast<T>(n);
  } else if constexpr (std::is_integral_v<T>) {
    static_assert(std::is_same_v<T, std::int64_t>, "narrower signed members need a range check");
    out = read_signed(v);
  } else if constexpr (std::is_same_v<T, std::string>) {
    if (!v.is_string()) throw Invalid{{}, "must be a string"};
    out.assign(v.get_string().data(), v.get_string().size());
  } else if constexpr (IsVector<T>::value) {
    const json::array* array = v.if_array();
    if (array == nullptr) throw Invalid{{}, "must be an array"};
    T items(array->size());
    for (std::size_t i = 0; i < array->size(); ++i) {
      try {
        from_json((*array)[i], items[i]);
      } catch (Invalid& bad) {
        bad.path = joined_path("[" + std::to_string(i) + "]", bad.path);
        throw;
      }
    }
    out = std::move(items);
  } else if constexpr (IsOptional<T>::value) {
    if (v.is_null()) {
      out.reset();
    } else {
      typename T::value_type value{};
      from_json(v, value);
      out = std::move(value);
    }
  } else {
    read_fields(v, out);
  }
}

template <typename T>
T read_document(std::string_view text, std::string_view source, int version) {
  const std::string where(source);
  json::parser parser;  // strict RFC 8259: no comments, no trailing commas, UTF-8 checked
  boost::system::error_code ec;
  const std::size_t at = parser.write(text.data(), text.size(), ec);
  if (ec) throw FormatError(where + ": not JSON (" + ec.message() + " at byte " + std::to_string(at) + ")");
  const json::value root = parser.release();
  const json::object* object = root.if_object();
  if (object == nullptr) throw FormatError(where + ": not a JSON object");
  const json::value* v = object->if_contains("version");
  if (v == nullptr) throw FormatError(where + ": version: missing");
  if (!v->is_int64() && !v->is_uint64()) throw FormatError(where + ": version: must be an integer");
  if (!v->is_int64() || v->get_int64() != version) {
    throw FormatError(where + ": version " + json::serialize(*v) + " not understood (this build reads version " +
                      std::to_string(version) + ")");
  }
  T out;
  try {
    read_fields(root, out);
  } catch (const Invalid& bad) {
    throw FormatError(where + ": " + bad.path + ": " + bad.what);
  }
  return out;
}

std::string joined(const std::vector<std::string>& words) {
  std::string out;
  for (const std::string& w : words) out += (out.empty() ? "" : " ") + w;
  return out;
}

}  // namespace

std::string write_decisions(const Decisions& decisions) { return write_document(decisions, kDecisionsVersion); }

Decisions parse_decisions(std::string_view text, std::string_view source) {
  return read_document<Decisions>(text, source, kDecisionsVersion);
}

std::optional<ControlOp> parse_control_op(std::string_view word) {
  for (const auto& [w, op] : kControlOps)
    if (w == word) return op;
  return std::nullopt;
}

std::string write_control_request(const ControlRequest& request) { return write_document(request, kControlVersion); }

ControlRequest parse_control_request(std::string_view line) {
  return read_document<ControlRequest>(line, "control request", kControlVersion);
}

std::string write_control_reply(const ControlReply& reply) { return write_document(reply, kControlVersion); }

ControlReply parse_control_reply(std::string_view line) {
  return read_document<ControlReply>(line, "control reply", kControlVersion);
}

std::string write_watch_event(const WatchEvent& event) { return write_document(event, kControlVersion); }

WatchEvent parse_watch_event(std::string_view line) {
  return read_document<WatchEvent>(line, "watch event", kControlVersion);
}

std::string write_secrets(const SecretsDocument& doc) { return write_document(doc, kSecretsVersion); }

SecretsDocument parse_secrets(std::string_view line) {
  return read_document<SecretsDocument>(line, "secrets", kSecretsVersion);
}

std::string write_relay_refusal(const RelayRefusal& refusal) {
  return write_document(refusal, kRelayRefusalVersion);
}

RelayRefusal parse_relay_refusal(std::string_view line) {
  return read_document<RelayRefusal>(line, "relay.jsonl", kRelayRefusalVersion);
}

std::filesystem::path relay_record_path(const std::filesystem::path& log_dir) { return log_dir / "relay.jsonl"; }

std::string write_relay_handoff(const RelayHandoff& handoff) {
  std::string doc = write_document(handoff, kRelayHandoffVersion);
  if (doc.size() > kMaxRelayHandoff) throw FormatError("relay hand-off: longer than " + std::to_string(kMaxRelayHandoff));
  const auto n = static_cast<std::uint16_t>(doc.size());
  return std::string{static_cast<char>(n >> 8), static_cast<char>(n & 0xff)} + doc;
}

RelayHandoff parse_relay_handoff(std::string_view document) {
  return read_document<RelayHandoff>(document, "relay hand-off", kRelayHandoffVersion);
}

std::string describe(const ControlReply& reply) {
  if (!reply.ok) return reply.error;
  switch (reply.op) {
    case ControlOp::allow:
      return "allowed " + joined(reply.names);
    case ControlOp::deny:
      return "denied " + joined(reply.names) +
             (reply.evicted ? "; " + std::to_string(*reply.evicted) + " addresses left the sets"
                            : "; their addresses leave the sets at their timeout (eviction failed)");
    case ControlOp::list:
      return joined(reply.names);
    case ControlOp::watch:
      return "watching";
    case ControlOp::refuse:
      return "kept denied " + joined(reply.names);
  }
  return {};
}

std::filesystem::path session_log_dir(std::string_view log_file) {
  if (log_file.empty()) return {};
  const std::filesystem::path dir = std::filesystem::path(log_file).parent_path();
  return dir.empty() ? std::filesystem::path(".") : dir;
}

std::filesystem::path decisions_path(const std::filesystem::path& log_dir) { return log_dir / "decisions.json"; }

std::filesystem::path control_socket_path(const std::filesystem::path& log_dir) {
  return log_dir / "control" / "dnsguard.sock";
}

}  // namespace cagent::dnsguard
