#pragma once
// Git repositories a session created in the workspace.
//
// A git repository runs code of its own choosing on the host: its hooks and
// its config (core.fsmonitor, core.hooksPath, core.pager, aliases …) take
// effect for any git command run inside it — including the `git status`
// that a shell prompt runs on every `cd`. The `.git` readonly pattern only
// covers repositories that existed when the session started; the agent can
// `git init vendor/lib` and set core.fsmonitor there, or plant a `.git` file
// or symlink pointing git at a directory of its making, or make a directory
// git takes for a repository itself (HEAD, and objects/ and refs/, or a
// commondir file naming where they are). cagent
// cannot stop that without breaking `git init`, so at the end of a session,
// once the container is gone, it names each of them.
//
//   start: scan_workspace() records the markers it passes (scan.hpp)
//   end:   find_git_markers() walks again ─▶ new_git_markers() (pure diff)
//          ─▶ describe_new_git_markers() ─▶ one warning, bounded
//
// A marker is an entry named `.git` (directory, file or symlink) outside
// any .git directory, or a directory git takes for a git directory (see
// GitDirNames). The
// walk at the end never follows a symlink, never enters a .git directory,
// and skips what the session could not write: directories the start scan
// hid whole (ignored, or unscannable) or mounted read-only — each only while
// it is still the very directory the start saw (SkipDirs). By path alone the
// agent could move the read-only directory's parent aside, make a new
// directory of the same name in its place, and `git init` there unnamed.

#include <cstddef>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace cagent::launcher::host {

struct GitMarker {
  // bare_repository: HEAD, objects/ and refs/; linked_git_dir: HEAD and a
  // commondir file (a worktree's private git directory; git reads config
  // and hooks from the common directory it names).
  enum class Kind { git_dir, git_file, git_symlink, bare_repository, linked_git_dir };
  std::string relative;  // the .git entry, or the bare repository's directory ("" = the workspace)
  Kind kind = Kind::git_dir;
  std::string identity;  // file_identity(), "" when the filesystem gives none
  bool operator==(const GitMarker&) const = default;
};

// Whether a directory's entry names make git take it for a git directory,
// by git's own test (setup.c, is_git_directory) on the names alone: HEAD,
// and either a commondir file (objects and refs are then the common
// directory's) or objects and refs. Names only: no stat per entry.
class GitDirNames {
 public:
  void see(std::string_view name);
  // bare_repository, linked_git_dir, or none.
  std::optional<GitMarker::Kind> kind() const;

 private:
  bool head_ = false, objects_ = false, refs_ = false, commondir_ = false;
};

// The marker for an entry named `.git` of this type (from lstat), or none
// for a type git would not use (FIFO, socket, device).
std::optional<GitMarker::Kind> git_entry_kind(std::filesystem::file_type type);

struct GitMarkerWalk {
  std::vector<GitMarker> markers;       // sorted by relative
  std::vector<std::string> unchecked;   // directories that could not be listed (relative)
};

// Directories the session could not write into: relative path -> the
// identity the directory had at the start (dir_identity()).
using SkipDirs = std::map<std::string, std::string>;

// What tells a directory from another one later at its path: its
// file_identity(), or where the filesystem has none, "ino:DEV:INO" — enough
// here, because a directory mounted into the cage stays pinned (its inode
// cannot be freed and reused) for as long as the session lasts.
std::optional<std::string> dir_identity(const std::filesystem::path& path);

// The end-of-session walk of `root`, on up to kMaxScanThreads threads
// (parallel_walk.hpp; the result is sorted, so the order the threads went
// in does not show). `skip`: directories not to enter while they are still
// the ones recorded (hidden or read-only in the session).
//
// `cache`: the listings the start scan used (settled: listing_cache.hpp). A
// directory still as it was then is not listed again: it holds what
// the start saw, and its listing is reused: the result is the same.
class ListingCache;
GitMarkerWalk find_git_markers(const std::filesystem::path& root, const SkipDirs& skip,
                               const ListingCache* cache = nullptr);

// The markers of `after` that `before` lacks: a new path, or one whose kind
// or identity changed (replaced during the session).
std::vector<GitMarker> new_git_markers(const std::vector<GitMarker>& before, const std::vector<GitMarker>& after);

// The warning for the user, line by line (paths escaped): a line saying why,
// then at most `limit` markers, "… and N more", and the unchecked
// directories (at most `limit`). Empty when there is nothing to say.
std::vector<std::string> describe_new_git_markers(const std::vector<GitMarker>& markers,
                                                  const std::vector<std::string>& unchecked, std::size_t limit);

}  // namespace cagent::launcher::host
