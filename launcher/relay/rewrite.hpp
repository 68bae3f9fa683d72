#pragma once
// What the secret relay does to one request head: check it belongs on this
// connection, and put each secret's real value where the agent wrote its
// placeholder — only for a host the secret belongs to.
//
//   head + the connection's server name (the SNI the gate admitted)
//     ─check_and_rewrite()─▶ forward (the head with values in place)
//                          ▶ refuse (why; which secret went where, for the record)
//
// Refused: a Host that is not the connection's server name (the relay
// would otherwise carry a request for another site down a secret host's
// connection), a request without a Host, CONNECT and protocol upgrades (the
// relay would lose track of the requests that follow), and a placeholder
// of a secret that does not belong to this host. Placeholders are replaced
// in header values only — also inside `Basic` credentials, decoded and
// encoded again — never in the target or the body: a placeholder there
// reaches the server as it is, worthless.
//
// Pure: no I/O. The values live only in the relay's memory.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "launcher/relay/http_request.hpp"

namespace cagent::relay {

struct Secret {
  std::string name;         // shown in logs and decisions, never the value
  std::string placeholder;  // what the agent holds
  std::string value;        // the real value
  std::vector<std::string> hosts;  // lower-case names it may be sent to
};

struct Verdict {
  bool forward = false;
  std::string head;      // forward: the head to send (serialized)
  std::string reason;    // refuse: one line, for the agent's error and the log
  std::string secret;    // refuse because of a secret: its name
  std::string host;      // …and where it was sent
  std::vector<std::string> used;  // forward: the secrets put in, by name
};

// `server_name`: the connection's SNI, lower case, no trailing dot.
Verdict check_and_rewrite(const RequestHead& head, std::string_view server_name, const std::vector<Secret>& secrets);

// The host part of a Host header or an absolute-form target's authority,
// lower case, without the port; nullopt if malformed. A port other than 443
// counts as another site.
std::optional<std::string> host_of_authority(std::string_view authority);

// Base64 (RFC 4648, padded) through OpenSSL's EVP encoder.
std::string base64_encode(std::string_view bytes);
std::optional<std::string> base64_decode(std::string_view text);

}  // namespace cagent::relay
