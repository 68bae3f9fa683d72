#pragma once
// `cagent check [--name NAME] [options]`: proves the enforcement of this workspace's
// effective configuration in a throwaway cage, and says what failed.
//
//   effective config ─prepare_session()─▶ PreparedSession ─plan_check()─▶ CheckPlan
//   CheckPlan ─check_command()─▶ the cage's command (a bash script run as the agent,
//                                printing one row per check, exit status = rows not passed)
//   the session's decision record ─record_row()─▶ the host's row (the name not
//                                allowed was answered by dnsguard, never forwarded)
//
// The checks run as the agent itself, under cage-init, so they see exactly
// what an agent sees: its capability sets and no_new_privs, its resolver,
// the firewall, the connection gate, the workspace's placeholders. A row
// is `pass`, `fail`, `off` (the mechanism is turned off in the config: not
// a pass) or `skip` (cannot be checked here, and why). Any fail or off
// makes the exit status 1.

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "dnsguard/contracts.hpp"
#include "launcher/host/process.hpp"
#include "launcher/host/session.hpp"

namespace cagent::launcher::host {

struct CheckPlan {
  std::string allowed;  // an exact allowed name: resolves, connects
  std::string denied;   // a name no pattern allows: never resolves, never forwarded
  std::string other;    // a name never resolved: the gate's SNI/Host check on `allowed`'s address
  bool gate = true;
  // Ignored paths, relative to the workspace (at most kMaxPlaceholders).
  std::vector<std::string> placeholders;
};

inline constexpr std::size_t kMaxPlaceholders = 8;
// An address no lookup in the cage returns (TEST-NET-3, RFC 5737): the
// firewall must refuse a connection to it at once.
inline constexpr const char* kUnresolvedAddress = "203.0.113.1";
// A resolver the agent might try instead of dnsguard (also TEST-NET-3):
// its DNS must be answered by dnsguard all the same.
inline constexpr const char* kOtherResolver = "203.0.113.53";
// Where the script listens while the host tries to connect from outside.
inline constexpr std::uint16_t kInboundPort = 47921;

// `name` (--name) or the config's first exact allowed name; the other two
// names are made unique with `nonce` (the session id). Throws UsageError
// when there is no name to check with, or `name` is not allowed.
CheckPlan plan_check(const Config& config, const MountPlan& plan, const std::optional<std::string>& name,
                     const std::string& nonce);

// The cage's command: bash -c SCRIPT with the plan as arguments.
std::vector<std::string> check_command(const CheckPlan& plan);

// The host's row from the session's decision record ("" record: none).
struct CheckRow {
  std::string status;  // pass, fail, off, skip
  std::string what;
  std::string detail;
};
CheckRow record_row(const CheckPlan& plan, const std::optional<dnsguard::Decisions>& record);
std::string render_row(const CheckRow& row);

// What the host saw trying to connect into the cage from outside.
struct InboundResult {
  std::string address;  // the cage's, from docker inspect ("" not found)
  int attempts = 0, connected = 0;
  std::string last_error;
};
CheckRow inbound_row(const InboundResult& result);

// The whole command: prints the rows on io.out, returns 0 when every check
// passed (or was skipped), 1 otherwise.
// `cli`: the ordinary options of the session (no command).
int run_check(const CliOptions& cli, const std::optional<std::string>& name, const HostContext& host,
              ProcessRunner& runner, SessionIo io);

}  // namespace cagent::launcher::host
