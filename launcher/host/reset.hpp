#pragma once
// --reset / --reset-all: remove what cagent created on this host. Workspace
// files are never touched.
//   c: containers labelled cagent.session   i: the image
//   v: the cagent-home volume               d: ~/.cagent (config, logs, trust list)

#include <filesystem>
#include <string>
#include <vector>

#include "launcher/host/process.hpp"

namespace cagent::launcher::host {

struct ResetPlan {
  bool containers = false;
  bool image = false;
  bool volume = false;
  bool home = false;
};

ResetPlan parse_reset(const std::string& letters);

// Human-readable list of what will be removed, one item per line.
std::string describe_reset(const ResetPlan& plan, const std::string& image,
                           const std::filesystem::path& cagent_home);

// The docker commands of the plan (the container ids are filled in at run
// time); exposed for --dry-run style tests.
std::vector<std::vector<std::string>> reset_docker_commands(const ResetPlan& plan,
                                                            const std::string& image,
                                                            const std::vector<std::string>& ids);

// Runs the plan; returns 0 or 125 (a docker step failed; the others still run).
int run_reset(ProcessRunner& runner, const ResetPlan& plan, const std::string& image,
              const std::filesystem::path& cagent_home);

}  // namespace cagent::launcher::host
