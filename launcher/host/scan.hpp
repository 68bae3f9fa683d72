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
// - readonly patterns are not applied inside a `.git` directory (it is one
//   unit); ignore patterns are, or a directory holding a hidden file could
//   be moved into one ("mv app .git") and shown by the next session;
// - a symlink is never mounted over or through (docker would resolve it on
//   the host or in the container). A matching symlink whose target lies in
//   the workspace gets that target hidden / made read-only instead; targets
//   outside the workspace do not exist in the cage anyway. (That lasts only
//   while the link does: the agent can delete a link.)
//
// Fail closed. The workspace was last written by the agent, which can make a
// directory unreadable to the host user (chmod 000), nest directories until
// paths exceed PATH_MAX, or otherwise make the walk fail below some
// directory. A directory that cannot be scanned completely — it cannot be
// opened or listed, its entries cannot be lstat'ed (it can be listed but not
// searched), or its path is longer than kMaxScanPath — is hidden wholesale
// like an ignored directory (with a warning): what was not looked at is
// never exposed. Only an error at the workspace root itself stops the scan
// (std::runtime_error).
//
// Cost. The scan runs before every session over the whole workspace,
// node_modules and build trees included, so it must cost about what reading
// the directory entries costs (`find -name`), not a system call per entry:
// - an entry's type comes with its name from the listing (d_type,
//   dir_listing.hpp). An lstat per entry would tell nothing more that the
//   rules use: they look at names and types only. Two lstats remain: of an
//   entry the filesystem gives no type for, and of the first entry of every
//   directory, because lstat needs the search permission that listing does
//   not, and a directory that can be listed but not searched must still be
//   hidden whole, with the warning it always had. (What this gives up: a
//   readable, searchable directory is no longer hidden because the lstat of
//   one of its entries alone failed — a file removed between the listing and
//   its lstat. Nothing below such an entry goes unseen: a subdirectory is
//   still opened and listed, or hidden.)
// - every directory is still opened and listed, whatever the patterns say:
//   failing closed needs to know that each one can be read, and git
//   directories are found by their names at any depth (a basename pattern
//   such as `.env` needs every directory's names too). What the patterns
//   prune is the matching: an anchored pattern is tried only in the
//   directories where it can still match (Pattern::could_match_below()), and
//   only the entries that matter are visited (directories, symlinks, `.git`,
//   what a pattern matches) — the rest is only counted.
// - ... unless it is provably unchanged since an earlier walk listed it: a
//   session's scan reuses the listings of the scan before it for every
//   directory whose device, inode and ctime are still the same — an lstat
//   instead of open, getdents and close (listing_cache.hpp says why that
//   cannot be fooled, and where it is not done). A directory that failed is
//   never kept: it is tried, and hidden if need be, every time.
// - directories are listed on up to kMaxScanThreads threads, once the walk
//   has seen more than a few (a small workspace is done before a thread would
//   have started). Each directory's visit writes what it decides, in order,
//   into a record of its own, and one thread then replays the records depth
//   first in name order: the ScanResult is the one a walk on one thread
//   gives, list order included, whichever thread listed what. The records
//   cost memory while the scan runs: 88 bytes a directory, more only for
//   one that holds something to report (measured: 26 MiB at most instead
//   of 17 for a million files in 206 000 directories).
//
// Anchored patterns protect a path, not content. An ignored file matched by
// a pattern that names its ancestors ("/secrets/key.pem", "config/*.key")
// would be exposed in the next session if the agent renamed an ancestor
// ("mv secrets s2"). Those ancestors are therefore `pinned`: each is
// bind-mounted onto itself, which makes it a mount point the agent cannot
// rename or remove (EBUSY). Basename patterns (".env", "*.key") need no pin:
// the file itself is a mount point and keeps its name wherever it is.
//
// Git directories. Whatever git takes for a repository runs code on the
// host: its config (core.fsmonitor, core.pager, aliases) and hooks act for
// every git command there. So when the readonly patterns make `.git`
// read-only (protects_git_dirs(): one of them matches a directory `.git` at
// the workspace root; the default `.git` does), every git directory the scan
// finds in the workspace is read-only too, whatever its name: every `.git`
// entry; every directory git takes for a git directory (GitDirNames:
// HEAD, and objects/ and refs/ — a bare repository such as `.bare` — or a
// commondir file), and the common directory its `commondir` names, when that
// lies in the workspace;
// the git directory a `.git` file or symlink names, when it lies in the
// workspace and git would take it for one (HEAD, and commondir or objects/
// and refs/), and the common directory its `commondir` names, when that lies
// in the workspace. A workspace that is itself a git directory is mounted
// read-only whole. A user who removed `.git` from readonly keeps a writable
// history, in every layout.
//
// `.git` files. A `.git` file ("gitdir: PATH", as git writes for worktrees
// and submodules) is workspace content, so it is as hostile as the agent.
// When its git directory lies inside /workspace nothing is mounted. When it
// lies outside /workspace as the cage sees it, but in the workspace on the
// host (an absolute path, as `git worktree add` and `git init
// --separate-git-dir` write), a repository's own git directory is mounted
// read-only at that path, so git works in the cage: the cage sees it anyway.
// Otherwise it is mounted read-only only if it provably belongs to this
// workspace's checkout, judged by files outside the workspace that git
// itself wrote (the agent cannot forge them):
//   worktree:  the gitdir is <common>/worktrees/<name>, <common> (from its
//              `commondir` file) is a real git directory, and the gitdir's
//              `gitdir` file (git's back-pointer) names this very .git file;
//              then <common> is mounted (it contains the gitdir);
//   submodule: the gitdir lies under <git dir>/modules/ of a real git
//              directory and its config's core.worktree resolves to the
//              directory holding this .git file; then the gitdir is mounted.
// Anything else ("gitdir: ../../other-repo/.git", "~/.password-store/.git",
// a fake gitdir whose commondir points outside) is refused with a warning.
// A mount source inside the workspace must neither contain nor lie within an
// ignored path (it would show that path's content under another name), and
// no mount may cover a system path of the cage.
//
// Warnings quote workspace-derived text through printable() (text.hpp).

#include <cstddef>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include "launcher/host/git_markers.hpp"
#include "launcher/host/pattern.hpp"

namespace cagent::launcher::host {

inline constexpr const char* kContainerWorkspace = "/workspace";

// Directories whose host path is longer than this are hidden, not opened:
// well below PATH_MAX, so every mount target the plan produces stays valid.
inline constexpr std::size_t kMaxScanPath = 3072;

// The most threads one scan lists directories on (never more than the CPUs
// this process may run on).
inline constexpr unsigned kMaxScanThreads = 4;

struct ScannedPath {
  std::string relative;  // "a/b", relative to the workspace ("" = the workspace itself)
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
  std::vector<ExtraMount> git_dirs;  // always read-only
  // Directories bind-mounted onto themselves so they cannot be renamed
  // (ancestors of paths hidden by an ancestor-naming ignore pattern).
  std::vector<std::string> pinned;
  std::vector<std::string> warnings;  // things skipped, for the user
  // The git repositories present at the start (git_markers.hpp), so the
  // end of the session can name the ones it created.
  std::vector<GitMarker> git_markers;
  std::size_t entries_seen = 0;
};

// The directories the session could not write into: hidden whole or
// mounted read-only (what find_git_markers() need not enter at the end),
// with their identities now — call it before the session starts.
SkipDirs unwritable_directories(const std::filesystem::path& root, const ScanResult& scan);

// Whether these readonly patterns make history read-only — one of them
// matches a directory `.git` at the workspace root — and with it every git
// directory of the workspace, whatever its name (see above).
bool protects_git_dirs(const std::vector<Pattern>& readonly);

class ListingCache;

// `root` must be an absolute, canonical directory. Throws std::runtime_error
// if it cannot be read. With a `cache`, a directory still as it was when an
// earlier walk listed it is not listed again (listing_cache.hpp), and what
// this scan lists is recorded in it: the result is the same.
ScanResult scan_workspace(const std::filesystem::path& root, const std::vector<Pattern>& ignore,
                          const std::vector<Pattern>& readonly, ListingCache* cache = nullptr);

// Lexical normalization of an absolute container path ("/a/./b/../c" → "/a/c").
std::string normalize_container_path(const std::string& path);

}  // namespace cagent::launcher::host
