#pragma once
// Live policy: the host adds names to a running session's allowlist (and
// takes such additions back) without restarting it. The same socket serves
// ask mode's approver (`watch`, `refuse`: contracts.hpp, server.hpp).
//
//   host: cagent allow NAME
//     └─ docker exec -u 0 CONTAINER dnsguard --control SOCKET allow NAME
//          └─ ControlRequest ─unix socket SOCKET─▶ Server ──LivePolicy::execute()──▶ new AllowList
//                                                    │                              └─▶ QueryEngine::replace_allow_list()
//             ControlReply (printed as it came) ◀────┘
//
// The request and the reply are documents of the control protocol
// (contracts.hpp: one writer and one reader each, versioned), so the host
// reads the reply's fields — ok, the names, how many addresses left the
// sets — rather than words of a sentence.
//
// Why the agent cannot use this path (the threat model says it must not be
// able to change a running session's policy):
//  - the socket lives in a directory that dnsguard creates with mode 0700
//    (control_socket_path(): inside the log directory, which is dnsguard's
//    during the session). The agent's uid is neither dnsguard's nor root and
//    has no capabilities (no CAP_DAC_OVERRIDE), so it cannot even reach the
//    socket's name, let alone connect;
//  - the server also checks the peer's credentials (SO_PEERCRED) and serves
//    only uid 0 — `docker exec -u 0`, which needs the Docker socket the
//    agent does not have. Root processes of the cage (cage-init, docker's
//    init) take no commands from the agent;
//  - no file the agent can write and no signal it can send changes the
//    allowlist: the policy file is mounted read-only and dnsguard reacts to
//    signals only to stop or to log its counters (and only its own uid or
//    root may signal it).
//
// Swapping happens on the io_context's one thread between two packets: no
// query in flight is dropped, the cache is kept (a name that is no longer
// allowed is refused before the cache is consulted), and the set entries of
// names that stay allowed are untouched. Addresses held only by a name
// taken back leave the sets at once (QueryEngine::release_denied(), by the
// name bindings); one another allowed name resolved to stays. The
// connection gate refuses the name at once, and the sink ends the tracked
// connections to the evicted addresses (cmd/nft_sink: nft::end_connections_to).

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "dnsguard/allow_list.hpp"
#include "dnsguard/contracts.hpp"

namespace cagent::dnsguard {

class LivePolicy {
 public:
  // `base`: the session policy's patterns (never taken back at run time).
  explicit LivePolicy(std::vector<std::string> base);

  struct Outcome {
    // What to answer; the caller adds `evicted` to a deny it carried out.
    ControlReply reply;
    std::optional<AllowList> next;  // set when the allowlist changed
  };

  // All or nothing: an invalid pattern (or a deny of a name that is not a
  // run-time addition) changes nothing and is answered with ok = false.
  Outcome execute(const ControlRequest& request);

  const std::vector<std::string>& added() const noexcept { return added_; }

 private:
  AllowList build() const;

  std::vector<std::string> base_;
  std::vector<std::string> added_;  // normalized, in order of addition, no duplicates
};

// The client side (`dnsguard --control SOCKET COMMAND…`): sends the
// request, returns the reply. Throws std::runtime_error when the socket
// cannot be reached or gives no reply, FormatError when the reply is not
// one this build reads.
ControlReply control_request(const std::string& socket_path, const ControlRequest& request);

// `dnsguard --control SOCKET watch`: sends the watch request and copies
// what comes back — the reply line, then one WatchEvent line each — to
// `out_fd` as it comes, until `in_fd` ends (the host's `docker exec -i`
// closed it: the watcher detaches), `out_fd` fails, or dnsguard closes the
// connection. Returns the exit status: 0 detached, 2 refused (the reply
// says why), 1 dnsguard ended it. Throws like control_request.
int control_watch(const std::string& socket_path, int in_fd, int out_fd);

// Defence in depth behind the socket's directory and the uid check: the peer of a control connection must be in dnsguard's own network
// namespace. The host's `docker exec -u 0` is; root in the nested Docker
// engine's sandbox is not (it is the agent's uid out here, refused anyway —
// this check holds even if a change ever mapped it to the cage's root); nor
// is a process of the host reaching the socket through the log directory's
// bind mount.
// The check reads the network namespace of the *accepted* socket: for a
// unix stream connection the kernel creates it in the connecting socket's
// namespace, so no /proc lookup of the peer (which dnsguard's uid could not
// read for a root peer, and whose pid may be reused) is involved.
enum class PeerNamespace : unsigned char { same, other, unknown /* kernel < 5.14: no SO_NETNS_COOKIE */ };
PeerNamespace peer_network_namespace(int accepted_fd);

}  // namespace cagent::dnsguard
