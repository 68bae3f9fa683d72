// cage-init — the cage's entrypoint (root, inside the container or a test's
// network namespace). Parses argv, then: gather facts -> plan -> run the plan
// (launcher/cage/). Exit status: the command's; 125 when cage-init itself
// failed before running it; 2 for a usage error.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <string_view>

#include "launcher/cage/executor.hpp"
#include "launcher/cage/plan.hpp"
#include "launcher/cage/system.hpp"

namespace {

constexpr int kSetupFailed = 125;

constexpr char kUsage[] =
    "usage: cage-init [--policy FILE] [--user NAME] [--dnsguard-user NAME] [--dnsguard PATH]\n"
    "                 [--ca-bundle FILE] [--workspace DIR] [--runtime-dir DIR] [--ready-timeout MS]\n"
    "                 [-- CMD [ARGS...]]      (no CMD: the user's login shell)\n";

int usage_error(const std::string& message) {
  std::fprintf(stderr, "cage-init: %s\n%s", message.c_str(), kUsage);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  cagent::cage::Options options;
  int i = 1;
  for (; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--") {
      ++i;
      break;
    }
    if (arg == "-h" || arg == "--help") {
      std::fputs(kUsage, stdout);
      return 0;
    }
    if (i + 1 >= argc) return usage_error(arg.starts_with("--") ? "missing value for " + std::string(arg)
                                                                 : "unexpected argument " + std::string(arg));
    const std::string value = argv[++i];
    if (arg == "--policy") options.policy = value;
    else if (arg == "--user") options.agent_user = value;
    else if (arg == "--dnsguard-user") options.dnsguard_user = value;
    else if (arg == "--dnsguard") options.dnsguard = value;
    else if (arg == "--ca-bundle") options.ca_bundle = value;
    else if (arg == "--workspace") options.workspace = value;
    else if (arg == "--runtime-dir") options.runtime_dir = value;
    else if (arg == "--ready-timeout") {
      char* end = nullptr;
      const long ms = std::strtol(value.c_str(), &end, 10);
      if (end == value.c_str() || *end != '\0' || ms <= 0) return usage_error("bad --ready-timeout " + value);
      options.dnsguard_ready_timeout = std::chrono::milliseconds(ms);
    } else {
      return usage_error("unknown option " + std::string(arg));
    }
  }
  for (; i < argc; ++i) options.command.emplace_back(argv[i]);

  try {
    if (::geteuid() != 0) throw cagent::cage::StepError("preflight", "cage-init must run as root");
    const cagent::cage::Facts facts = cagent::cage::gather_facts(options);
    cagent::cage::Plan plan;
    try {
      plan = cagent::cage::plan_cage_init(options, facts);
    } catch (const std::exception& error) {
      throw cagent::cage::StepError("plan", error.what());
    }
    return cagent::cage::run_plan(plan);
  } catch (const std::exception& error) {
    std::fprintf(stderr, "cage-init: %s; the command was not run\n", error.what());
    return kSetupFailed;
  }
}
