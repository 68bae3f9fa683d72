#include "launcher/cage/cli.hpp"

#include <cstdlib>
#include <string_view>

namespace cagent::cage {
namespace {

CommandLine usage_error(std::string message) {
  CommandLine c;
  c.action = CommandLine::Action::usage_error;
  c.error = std::move(message);
  return c;
}

}  // namespace

const char* cage_init_usage() noexcept {
  return "usage: cage-init [--mode cage|guard|dnsguard|probe|agent]\n"
         "                 [--policy FILE] [--user NAME] [--dnsguard-user NAME] [--dnsguard PATH]\n"
         "                 [--ca-bundle FILE] [--owner SOCKET] [--secrets SOCKET] [--relay PATH]\n"
         "                 [--workspace DIR] [--runtime-dir DIR]\n"
         "                 [--ready-timeout MS]\n"
         "                 [--nested-docker DOCKERD [--nested-socket-dir DIR] [--nested-data-root DIR]]\n"
         "                 [-- CMD [ARGS...]]      (no CMD: the user's login shell)\n";
}

CommandLine parse_cage_init_args(std::span<const std::string> args) {
  CommandLine out;
  Options& options = out.options;
  std::size_t i = 0;
  for (; i < args.size(); ++i) {
    const std::string_view arg = args[i];
    if (arg == "--") {
      ++i;
      break;
    }
    if (arg == "-h" || arg == "--help") {
      out.action = CommandLine::Action::help;
      return out;
    }
    if (i + 1 >= args.size()) {
      return usage_error(arg.starts_with("--") ? "missing value for " + std::string(arg)
                                               : "unexpected argument " + std::string(arg));
    }
    const std::string& value = args[++i];
    if (arg == "--mode") {
      if (value == "cage") options.mode = Mode::cage;
      else if (value == "guard") options.mode = Mode::guard;
      else if (value == "dnsguard") options.mode = Mode::dnsguard;
      else if (value == "probe") options.mode = Mode::probe;
      else if (value == "agent") options.mode = Mode::agent;
      else return usage_error("bad --mode " + value + " (cage, guard, dnsguard, probe or agent)");
    } else if (arg == "--policy") options.policy = value;
    else if (arg == "--user") options.agent_user = value;
    else if (arg == "--dnsguard-user") options.dnsguard_user = value;
    else if (arg == "--dnsguard") options.dnsguard = value;
    else if (arg == "--ca-bundle") options.ca_bundle = value;
    else if (arg == "--owner") options.owner_socket = value;
    else if (arg == "--secrets") options.secrets_socket = value;
    else if (arg == "--relay") options.relay = value;
    else if (arg == "--workspace") options.workspace = value;
    else if (arg == "--runtime-dir") options.runtime_dir = value;
    else if (arg == "--nested-docker") options.nested_dockerd = value;
    else if (arg == "--nested-socket-dir") options.nested_socket_dir = value;
    else if (arg == "--nested-data-root") options.nested_data_root = value;
    else if (arg == "--ready-timeout") {
      char* end = nullptr;
      const long ms = std::strtol(value.c_str(), &end, 10);
      if (end == value.c_str() || *end != '\0' || ms <= 0) return usage_error("bad --ready-timeout " + value);
      options.dnsguard_ready_timeout = std::chrono::milliseconds(ms);
    } else {
      return usage_error("unknown option " + std::string(arg));
    }
  }
  options.command.assign(args.begin() + static_cast<std::ptrdiff_t>(i), args.end());
  return out;
}

}  // namespace cagent::cage
