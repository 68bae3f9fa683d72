#pragma once
// Workspace scan: walks the workspace once (never following symlinks) and
// classifies paths by the `ignore` and `readonly` patterns.
//
//   workspace dir + patterns ──scan_workspace()──▶ ScanResult ──plan_mounts()──▶ MountPlan
//
// Rules (see pattern.hpp for the pattern syntax):
// - ignore wins over readonly; an ignored directory is not descended into
//   (everything below is hidden with it);
// - a readonly directory is descended into, so an ignore inside it still
//   hides its target;
// - patterns are not applied inside a `.git` directory (it is one unit);
// - a symlink is never mounted over or through (docker would resolve it on
//   the host or in the container). A matching symlink whose target lies in
//   the workspace gets that target hidden / made read-only instead; targets
//   outside the workspace do not exist in the cage anyway;
// - `.git` as a file (worktree, submodule): the git directory it points to
//   (and its commondir) is mounted read-only at the path the cage resolves,
//   when that lies outside /workspace and looks like a git directory.

#include <cstddef>
#include <filesystem>
#include <string>
#include <vector>

#include "launcher/host/pattern.hpp"

namespace cagent::launcher::host {

inline constexpr const char* kContainerWorkspace = "/workspace";

struct ScannedPath {
  std::string relative;  // "a/b", relative to the workspace
  bool directory = false;
  bool operator==(const ScannedPath&) const = default;
};

struct ExtraMount {
  std::filesystem::path host;  // canonical host path
  std::string container;       // absolute path inside the cage
  bool operator==(const ExtraMount&) const = default;
};

struct ScanResult {
  std::vector<ScannedPath> ignored;
  std::vector<ScannedPath> readonly;
  std::vector<ExtraMount> git_dirs;   // always read-only
  std::vector<std::string> warnings;  // things skipped, for the user
  std::size_t entries_seen = 0;
};

// `root` must be an absolute, canonical directory. Throws std::runtime_error
// if it cannot be read.
ScanResult scan_workspace(const std::filesystem::path& root, const std::vector<Pattern>& ignore,
                          const std::vector<Pattern>& readonly);

// Lexical normalization of an absolute container path ("/a/./b/../c" → "/a/c").
std::string normalize_container_path(const std::string& path);

}  // namespace cagent::launcher::host
