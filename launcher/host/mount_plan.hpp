#pragma once
// MountPlan: the ordered list of bind mounts for one session, computed from a
// ScanResult without touching the filesystem (bubblewrap style: plan first,
// execute second). Parents come before children, so an ignore inside a
// readonly directory is mounted over it, never under it. A pinned directory
// (see scan.hpp) is mounted onto itself, writable unless it lies in a
// readonly directory: it only has to be a mount point, so the agent cannot
// rename it and carry a hidden file out from under its pattern. The
// workspace mount itself is read-only when the scan made the workspace read-
// only (relative ""): a workspace that is itself a git directory.

#include <filesystem>
#include <string>
#include <vector>

#include "launcher/host/scan.hpp"

namespace cagent::launcher::host {

struct Mount {
  std::filesystem::path source;  // host path
  std::string target;            // container path
  bool readonly = false;
  bool operator==(const Mount&) const = default;
};

struct MountPlan {
  std::vector<Mount> mounts;  // the workspace itself first
  // Placeholders the session must create before docker runs (in the session
  // dir, removed at exit): one empty file and one empty directory, shared by
  // every ignored path of that kind.
  bool needs_empty_file = false;
  bool needs_empty_dir = false;
};

// Names of the shared placeholders inside the placeholder directory.
inline constexpr const char* kEmptyFileName = "empty-file";
inline constexpr const char* kEmptyDirName = "empty-dir";

MountPlan plan_mounts(const ScanResult& scan, const std::filesystem::path& workspace,
                      const std::filesystem::path& placeholder_dir);

}  // namespace cagent::launcher::host
