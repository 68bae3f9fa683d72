#pragma once
// Rendering of docker command lines as argv vectors (never shell strings).
// Pure functions: the same spec always gives the same argv, which the unit
// tests compare against golden files.

#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "launcher/host/mount_plan.hpp"

namespace cagent::launcher::host {

inline constexpr const char* kHomeVolume = "cagent-home";
inline constexpr const char* kSessionLabel = "cagent.session";
inline constexpr const char* kHashLabel = "cagent.context-hash";
inline constexpr const char* kContainerPolicy = "/etc/cagent/policy.toml";
inline constexpr const char* kContainerCaBundle = "/etc/cagent/extra-ca.pem";
inline constexpr const char* kContainerLogDir = "/var/log/cagent";

struct RunSpec {
  std::string image;
  std::string container_name;
  std::string session_id;
  bool tty = false;     // stdin and stdout are terminals
  bool sysbox = false;  // sysbox-runc available: nested Docker works
  MountPlan mounts;
  std::filesystem::path policy_file;
  std::filesystem::path log_dir;
  std::optional<std::filesystem::path> ca_bundle;
  std::vector<std::string> extra_args;
  std::vector<std::string> command;  // empty: login shell
};

std::vector<std::string> render_run_argv(const RunSpec& spec);

struct BuildSpec {
  std::string image;
  std::filesystem::path context;  // directory holding image/Dockerfile
  std::string context_hash;
  std::vector<std::pair<std::string, std::string>> build_args;
};

std::vector<std::string> render_build_argv(const BuildSpec& spec);

// One bind mount as docker arguments: "-v SRC:DST[:ro]" when neither path
// contains ':' (which -v cannot express), else "--mount" with CSV quoting.
std::vector<std::string> render_bind(const std::filesystem::path& source,
                                     const std::string& target, bool readonly);

}  // namespace cagent::launcher::host
