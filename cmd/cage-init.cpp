// cage-init — the cage's entrypoint (root, inside the container or a test's
// network namespace). Parses argv (launcher/cage/cli.hpp), then: gather
// facts -> plan -> run the plan (launcher/cage/). Exit status: the command's; 125 when cage-init itself
// failed before running it; 2 for a usage error.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <vector>

#include "launcher/cage/cli.hpp"
#include "launcher/cage/executor.hpp"
#include "launcher/cage/plan.hpp"
#include "launcher/cage/system.hpp"

namespace {

constexpr int kSetupFailed = 125;
constexpr int kUsageError = 2;

}  // namespace

int main(int argc, char** argv) {
  const std::vector<std::string> args(argv + 1, argv + argc);
  const cagent::cage::CommandLine cli = cagent::cage::parse_cage_init_args(args);
  switch (cli.action) {
    case cagent::cage::CommandLine::Action::help:
      std::fputs(cagent::cage::cage_init_usage(), stdout);
      return 0;
    case cagent::cage::CommandLine::Action::usage_error:
      std::fprintf(stderr, "cage-init: %s\n%s", cli.error.c_str(), cagent::cage::cage_init_usage());
      return kUsageError;
    case cagent::cage::CommandLine::Action::run:
      break;
  }
  const cagent::cage::Options& options = cli.options;

  try {
    if (cagent::cage::mode_needs_root(options.mode) && ::geteuid() != 0) throw cagent::cage::StepError("preflight", "cage-init must run as root");
    const cagent::cage::Facts facts = cagent::cage::gather_facts(options);
    cagent::cage::Plan plan;
    try {
      plan = cagent::cage::plan_cage_init(options, facts);
    } catch (const std::exception& error) {
      throw cagent::cage::StepError("plan", error.what());
    }
    cagent::cage::ExecutorOptions executor;
    const char* trace = std::getenv("CAGENT_TRACE_STEPS");  // the environment is read here only
    executor.trace_steps = trace != nullptr && trace[0] == '1';
    if (const char* fail = std::getenv("CAGENT_TEST_NESTED_FAIL")) executor.nested_fail_at = fail;
    return cagent::cage::run_plan(plan, executor);
  } catch (const std::exception& error) {
    std::fprintf(stderr, "cage-init: %s; the command was not run\n", error.what());
    return kSetupFailed;
  }
}
