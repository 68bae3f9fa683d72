#pragma once
// --reset / --reset-all: remove what cagent created on this host. Workspace
// files are never touched.
//   c: containers labelled cagent.session   i: the image
//   v: the agent's home volumes: every volume labelled cagent.home=<prefix>
//      (one per workspace directory, also those named after a path by earlier
//      versions) and the shared <prefix> volume of older ones
//   d: ~/.cagent (config, logs, trust list, approved workspace configs, kept directory listings)

#include <filesystem>
#include <iosfwd>
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
                           const std::filesystem::path& cagent_home, const std::string& home_volume_prefix);

// The docker commands of the plan (the container ids are filled in at run
// time); exposed for --dry-run style tests.
// `volumes`: the home volumes found by their label.
std::vector<std::vector<std::string>> reset_docker_commands(const ResetPlan& plan,
                                                            const std::string& image,
                                                            const std::vector<std::string>& ids,
                                                            const std::string& home_volume_prefix,
                                                            const std::vector<std::string>& volumes);

// Runs the plan; returns 0 or 125 (a docker step failed; the others still
// run). Each failure is reported on `err`.
int run_reset(ProcessRunner& runner, const ResetPlan& plan, const std::string& image,
              const std::filesystem::path& cagent_home, const std::string& home_volume_prefix,
              std::ostream& err);

}  // namespace cagent::launcher::host
