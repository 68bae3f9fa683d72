#pragma once
// cage-init as an ordered list of operations (bubblewrap style).
//
// Data flow: cmd/cage-init parses argv into Options; gather_facts() (system.hpp)
// reads the policy, the original resolv.conf, the two accounts and the owner of
// the workspace into Facts; plan_cage_init() — pure, unit-tested — turns both
// into a Plan; run_plan() (executor.hpp) performs the steps in order and stops
// at the first failure, so the command step can only be reached after the
// firewall is installed and dnsguard answers.

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "launcher/cage/local_sockets.hpp"
#include "launcher/cage/policy.hpp"
#include "nft/nft.hpp"

namespace cagent::cage {

// Which part of the cage this cage-init is. `cage` is the whole of it in one
// container (the Docker form). The Pod form (cagent kube) splits the same
// plan over the containers of one Pod, which share the network namespace:
//   guard     init container (root, NET_ADMIN only): checks the policy and
//             installs the ruleset, then exits 0; any failure exits 125, so
//             the Pod never reaches the agent (fails closed);
//   dnsguard  the sidecar (root, the capabilities dnsguard and the switch to
//             its uid need): starts dnsguard as in `cage`, waits until it
//             answers, then supervises it (restarts with backoff) until
//             SIGTERM;
//   probe     the sidecar's startup probe: one wait for dnsguard's answer;
//   agent     the agent's container (already the agent's uid, no capability
//             at all): waits for dnsguard, verifies it holds no privilege
//             (every capability set empty, no way back to root), sets
//             no_new_privs and runs the command. It cannot drop or switch
//             anything, so it refuses to run when it finds it could.
enum class Mode : unsigned char { cage, guard, dnsguard, probe, agent };

// The modes that start as root (the others run unprivileged).
constexpr bool mode_needs_root(Mode mode) { return mode == Mode::cage || mode == Mode::guard || mode == Mode::dnsguard; }

struct Options {
  Mode mode = Mode::cage;
  std::filesystem::path policy = "/etc/cagent/policy.toml";
  std::string agent_user = "agent";
  std::string dnsguard_user = "dnsguard";
  std::filesystem::path dnsguard = "/usr/local/bin/dnsguard";
  std::optional<std::filesystem::path> ca_bundle;   // extra CAs to trust
  // The socket cagent serves the secrets on (--secrets; cagent passes it
  // when the policy names relay hosts): see StartRelay.
  std::optional<std::filesystem::path> secrets_socket;
  std::filesystem::path relay = "/usr/local/bin/cagent-relay";
  // The owner's socket (--owner; cagent always passes it): see WatchOwner.
  std::optional<std::filesystem::path> owner_socket;
  std::filesystem::path workspace = "/workspace";
  std::filesystem::path runtime_dir = "/run/cagent"; // root-only scratch (policy copy)
  std::filesystem::path resolv_conf = "/etc/resolv.conf";
  std::filesystem::path system_ca_bundle = "/etc/ssl/certs/ca-certificates.crt";
  std::chrono::milliseconds dnsguard_ready_timeout{15000};
  // Nested Docker: the engine binary to start in a sandbox
  // (--nested-docker PATH; cagent passes it only when the host engine has
  // sysbox-runc and the image is the variant that holds an engine). Empty:
  // nothing nested, and the plan holds no step of it.
  std::filesystem::path nested_dockerd;
  std::filesystem::path nested_socket_dir = "/run/cagent-docker";  // the engine's socket, for the agent
  std::filesystem::path nested_data_root = "/var/lib/docker";       // the engine's images and containers
  std::vector<std::string> command;                  // empty: the agent's login shell
};

// The nested engine's link: a veth pair, one end in the cage and one in the
// sandbox, on a /30 of RFC 6598 shared address space (100.64.0.0/10), which
// a cage's own network or an allowed destination is unlikely to use. IPv4
// only. The names fit IFNAMSIZ.
inline constexpr std::string_view kNestedLink = "cagent-nd0";
inline constexpr std::string_view kNestedPeer = "cagent-nd1";
inline constexpr std::string_view kNestedCageAddress = "100.127.255.253";
inline constexpr std::string_view kNestedSandboxAddress = "100.127.255.254";
inline constexpr std::string_view kNestedSubnet = "100.127.255.252";
inline constexpr std::uint8_t kNestedPrefix = 30;

struct Account {
  std::string name;
  uid_t uid = 0;
  gid_t gid = 0;
  std::filesystem::path home;
  std::string shell;
};

struct Owner {
  uid_t uid = 0;
  gid_t gid = 0;
};

struct Facts {
  Policy policy;
  // The container's original resolvers (before write-resolv-conf).
  std::vector<::cagent::dnsguard::IpEndpoint> resolv_conf_upstreams;
  Account agent;
  Account dnsguard;
  std::optional<Owner> workspace_owner;              // nullopt: no workspace
  std::vector<std::string> environment;              // cage-init's own, "KEY=VALUE"
  bool ipv6_loopback = true;                         // ::1 can be bound (Docker's default
                                                     // bridge disables IPv6 entirely)
  std::vector<nft::Cidr> onlink6;                    // IPv6 prefixes of the cage's links
  // Every socket of this namespace at start (before the agent exists): who
  // serves an upstream that lives here (Docker's embedded resolver).
  std::vector<LocalSocket> local_sockets;
  std::filesystem::path ip_binary;                   // iproute2's `ip`; empty: none found
};

// Environment variables the common runtimes read for their trust store.
inline constexpr std::string_view kCaVariables[] = {
    "SSL_CERT_FILE", "NODE_EXTRA_CA_CERTS", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE",
    "GIT_SSL_CAINFO", "PIP_CERT",           "CARGO_HTTP_CAINFO"};

namespace step {
// A cage never outlives the cagent that started it (its owner), however
// that process ends (SIGKILL, a lost terminal, a crash). cagent listens on
// a unix socket it never accepts on and mounts it here; this step connects
// to it and leaves a child blocked reading the connection. When the owner's
// process is gone the kernel closes its listening socket, which resets
// every connection still waiting to be accepted: the read returns, the
// child exits, and cage-init ends the command and itself (so the container
// stops). Nothing polls, and nothing on the host has to survive to do it.
// First in the plan: a cage whose owner is already gone does not start.
struct WatchOwner {
  std::filesystem::path socket;
};
// `dnsguard --config POLICY --check`: cage-init read the policy with the
// same code (dnsguard/policy.hpp), and this asks the dnsguard binary that
// will run it, so an image whose dnsguard disagrees stops here, before
// anything changed.
struct CheckPolicy {
  std::filesystem::path dnsguard;
  std::filesystem::path policy;
};
// dnsguard gets a copy of the policy with some keys replaced: `upstreams`
// when the policy names none (the ones the ruleset admits, instead of letting
// dnsguard read resolv.conf, which this plan rewrites a few steps later), and
// `listen` without IPv6 addresses when the namespace has no IPv6 (binding
// [::1] would fail and take dnsguard down).
struct WritePolicyCopy {
  std::filesystem::path source;
  std::filesystem::path destination;
  ::cagent::dnsguard::Policy policy;      // what dnsguard reads: the source's, adapted
  // With nested Docker: dnsguard also listens on the cage's end of the
  // nested link — added only when create-nested-link succeeded (the address
  // must exist, or dnsguard could not bind it and would take DNS down).
  std::optional<::cagent::dnsguard::IpEndpoint> nested_listen;
};
struct InstallRuleset {
  nft::RulesetSpec spec;
};
// During the session the log directory belongs to dnsguard (the agent may
// read, not write); afterwards it is handed to the workspace owner, who is the
// host user reading the summary.
struct PrepareLogDir {
  std::filesystem::path dir;
  Owner during;
  Owner after;
};
struct StartDnsguard {
  std::filesystem::path binary;
  std::filesystem::path config;
  Account user;
  std::vector<int> ambient_capabilities;   // and nothing else, in any set
  // The connection gate's port (0: no gate): at the end of the session,
  // cage-init lets the gate's connections close before dnsguard writes
  // its final record.
  std::uint16_t gate_port = 0;
};
struct WaitForDnsguard {
  nft::Endpoint probe;
  std::chrono::milliseconds timeout;
};
struct WriteResolvConf {
  std::filesystem::path path;
  std::string content;
};
struct InstallCaBundle {
  std::filesystem::path source;
  std::filesystem::path system_bundle;
};
// The secret relay (launcher/relay), when the policy names its hosts. As
// root: bind 127.0.0.1:port (below 1024: nobody else can take it), connect
// to cagent's secrets socket (cagent serves exactly one connection and
// checks it comes from uid 0, which the agent never is), open the relay's
// record. Then the relay runs as `user` with no capability and
// no_new_privs, holding those three on fds 0, 3 and 4: cage-init never
// reads a secret. The relay reads `trust` (the bundle so far: the image's
// and ca_certificates) before it answers; its stdout is a pipe that brings
// the session CA's certificate, which this step then adds to `trust`, the
// bundle every client in the cage reads. Fails the start (the cage does
// not run) when the relay does not come up.
struct StartRelay {
  std::filesystem::path binary;
  Account user;
  std::uint16_t port = 0;
  std::filesystem::path secrets_socket;
  std::filesystem::path record;
  std::filesystem::path trust;
  std::chrono::milliseconds timeout{10000};
};
// passwd/group: the agent's account takes the workspace owner's uid/gid.
struct RemapAgent {
  std::string user;
  Owner from;
  Owner to;
};
// The agent's home (a volume kept across sessions) belongs to whoever the
// agent is in *this* session, whoever it belonged to before: after a session
// for a workspace of another uid, the home is that uid's, and only moving
// every entry back lets the next session write ~/.npm again. Entries owned by
// one of `keep_uids` (root, dnsguard) are never the agent's and are left
// alone; symlinks are never followed (the walk is openat(O_NOFOLLOW) from
// the home's fd, so a link swapped in mid-walk cannot lead it elsewhere) and
// other filesystems mounted below are not entered.
struct ClaimHome {
  std::filesystem::path home;
  Owner owner;
  std::vector<uid_t> keep_uids;
};
// Nested Docker, part 1 (before dnsguard starts, so it can listen on the
// link): the veth pair, the cage's end addressed and up, IPv4 forwarding on.
// Optional: a failure is a warning, and nothing nested happens afterwards.
struct CreateNestedLink {
  std::filesystem::path ip;               // iproute2's `ip`
  std::string link;                       // the cage's end
  std::string peer;                       // moved into the sandbox by start-nested-docker
  nft::Cidr cage_address;                 // address + the link's prefix
};
// Nested Docker, part 2: the engine in a sandbox of fresh namespaces — its
// own user namespace (its root is the agent's uid outside, the cage's
// root is not mapped), network, PID and mount namespaces
// — so that root in there (which the agent controls through the socket)
// holds no capability over the cage: not its firewall, not its processes,
// not its files. In a mount namespace of the cage's own user namespace the
// sandbox's view is prepared first, then copied into the sandbox's user
// namespace, which locks it (the kernel refuses to unmount or remount
// anything that came with the copy):
//  - `hidden` (the log directory with dnsguard's control socket and the
//    decision record, cage-init's runtime dir) are detached when they are
//    mount points and covered by an empty read-only tmpfs;
//  - every mount is read-only except `writable` (bound onto themselves:
//    the workspace, the agent's home, the socket directory, the engine's
//    data directories) and the cgroup hierarchy (the engine makes cgroups);
//  - fresh /proc (the sandbox's PID namespace only), a fresh /run and
//    /etc/docker (the engine's key), both the sandbox root's.
// Then the peer of the link becomes the sandbox's eth, addressed with a
// default route via the cage's end, and the engine starts with its socket
// in `socket_dir` (group: the agent's gid) and `--dns` the cage's end:
// nested containers resolve through dnsguard, and their traffic is
// forwarded through the cage's forward chain. Optional like part 1.
struct StartNestedDocker {
  std::filesystem::path ip;
  std::filesystem::path dockerd;
  std::filesystem::path socket_dir;
  std::filesystem::path data_root;        // the engine's /var/lib/docker
  Owner agent;                            // the agent's final ids: the sandbox's root outside
  Owner dnsguard;                         // never mapped in the sandbox (it owns the log directory)
  std::string peer;
  nft::Cidr sandbox_address;              // address + the link's prefix
  nft::Address gateway;                   // the cage's end
  std::vector<std::filesystem::path> hidden;
  std::vector<std::filesystem::path> writable;
  std::vector<std::string> dockerd_args;  // after the binary
};
// Drops every capability, sets no_new_privs, switches to `user`, execs.
struct RunCommand {
  Account user;
  // false (mode agent): the process already is `user` and holds nothing;
  // instead of dropping and switching, the child verifies exactly that.
  bool switch_user = true;
  std::string file;                       // resolved through PATH if no '/'
  std::vector<std::string> argv;
  std::vector<std::string> environment;
};
}  // namespace step

using Step = std::variant<step::WatchOwner, step::CheckPolicy, step::WritePolicyCopy, step::InstallRuleset, step::PrepareLogDir,
                          step::StartDnsguard, step::WaitForDnsguard, step::WriteResolvConf,
                          step::InstallCaBundle, step::StartRelay, step::RemapAgent, step::ClaimHome, step::CreateNestedLink,
                          step::StartNestedDocker, step::RunCommand>;

struct Plan {
  std::vector<Step> steps;
  // What cage-init does after the last step: run the command (its last
  // step), exit 0 (guard, probe), or supervise dnsguard until told to stop
  // (the Pod's dnsguard sidecar).
  enum class Ending : unsigned char { command, exit, serve_dnsguard } ending = Ending::command;
  std::vector<std::string> warnings;   // printed, not fatal (e.g. root-owned workspace)
};

// A plan cannot be made from these facts (e.g. no upstream resolver at all).
class PlanError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

Plan plan_cage_init(const Options& options, const Facts& facts);

// Nested Docker's steps added to a core plan (plan_nested.cpp), which
// plan_cage_init calls when Options::nested_dockerd is set: the link after
// the ruleset, the policy copy (`copy`, naming the link's address) after
// the link, the engine's sandbox last before the command, DOCKER_HOST for
// the command. Without an `ip` binary: one warning, nothing added.
void add_nested_docker(Plan& plan, const Options& options, const Facts& facts, Owner agent,
                       step::WritePolicyCopy copy);

// Short, stable names used in error messages: "install-ruleset", …
std::string_view step_name(const Step& step);

}  // namespace cagent::cage
