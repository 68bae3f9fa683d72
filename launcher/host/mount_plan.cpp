#include "launcher/host/mount_plan.hpp"

#include <algorithm>
#include <cstddef>

namespace cagent::launcher::host {
namespace {

// "" is the workspace itself, which everything else is below.
bool strictly_below(const std::string& path, const std::string& dir) {
  if (dir.empty()) return !path.empty();
  return path.size() > dir.size() && path.compare(0, dir.size(), dir) == 0 &&
         path[dir.size()] == '/';
}

std::size_t depth(const std::string& path) {
  return static_cast<std::size_t>(std::count(path.begin(), path.end(), '/'));
}

}  // namespace

MountPlan plan_mounts(const ScanResult& scan, const std::filesystem::path& workspace,
                      const std::filesystem::path& placeholder_dir) {
  MountPlan plan;
  std::vector<ScannedPath> hidden_dirs;
  for (const ScannedPath& p : scan.ignored) {
    if (p.directory) hidden_dirs.push_back(p);
  }
  // A path below a hidden directory does not exist in the cage: mounting
  // there would make docker create a mount point inside the read-only
  // placeholder and fail. (Symlink targets can land there.)
  const auto under_hidden = [&](const std::string& rel) {
    return std::any_of(hidden_dirs.begin(), hidden_dirs.end(),
                       [&](const ScannedPath& d) { return strictly_below(rel, d.relative); });
  };
  const auto already = [&](const std::string& target) {
    return std::any_of(plan.mounts.begin(), plan.mounts.end(),
                       [&](const Mount& m) { return m.target == target; });
  };
  std::vector<Mount> inner;
  std::vector<std::string> readonly_dirs;
  for (const ScannedPath& p : scan.readonly) {
    if (p.directory) readonly_dirs.push_back(p.relative);
  }
  // Pins first: a readonly or ignore mount of the same target, pushed later,
  // replaces the pin (it is a mount point just the same). A pin below a
  // read-only directory must stay read-only, or it would reopen it.
  for (const std::string& d : scan.pinned) {
    if (under_hidden(d)) continue;
    const bool ro =
        std::any_of(readonly_dirs.begin(), readonly_dirs.end(),
                    [&](const std::string& r) { return d == r || strictly_below(d, r); });
    inner.push_back({workspace / d, std::string(kContainerWorkspace) + "/" + d, ro});
  }
  for (const ScannedPath& p : scan.readonly) {
    if (p.relative.empty()) continue;  // the workspace itself: its own mount, below
    if (under_hidden(p.relative)) continue;
    // Redundant below a read-only parent: one mount already covers it.
    if (std::any_of(readonly_dirs.begin(), readonly_dirs.end(),
                    [&](const std::string& d) { return strictly_below(p.relative, d); })) {
      continue;
    }
    inner.push_back(
        {workspace / p.relative, std::string(kContainerWorkspace) + "/" + p.relative, true});
  }
  for (const ScannedPath& p : scan.ignored) {
    if (under_hidden(p.relative)) continue;
    // Security: the placeholder is read-only so the agent cannot write
    // through it into a file that happens to share the placeholder.
    inner.push_back({placeholder_dir / (p.directory ? kEmptyDirName : kEmptyFileName),
                     std::string(kContainerWorkspace) + "/" + p.relative, true});
    (p.directory ? plan.needs_empty_dir : plan.needs_empty_file) = true;
  }
  // Parents before children; among equals, ignore (pushed later) must win,
  // so sort stably by depth and then by name, dropping exact duplicates
  // except the last (the ignore placeholder).
  std::stable_sort(inner.begin(), inner.end(), [](const Mount& a, const Mount& b) {
    if (depth(a.target) != depth(b.target)) return depth(a.target) < depth(b.target);
    return a.target < b.target;
  });
  // Read-only whole when the workspace itself is (a git directory).
  const bool workspace_readonly = std::find(readonly_dirs.begin(), readonly_dirs.end(), "") != readonly_dirs.end();
  plan.mounts.push_back({workspace, kContainerWorkspace, workspace_readonly});
  for (std::size_t i = 0; i < inner.size(); ++i) {
    if (i + 1 < inner.size() && inner[i + 1].target == inner[i].target) continue;
    if (!already(inner[i].target)) plan.mounts.push_back(inner[i]);
  }
  for (const ExtraMount& g : scan.git_dirs) plan.mounts.push_back({g.host, g.container, true});
  return plan;
}

}  // namespace cagent::launcher::host
