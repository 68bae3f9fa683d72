#pragma once
// Directory listings kept from one walk of the workspace to the next.
//
// Every session walks the whole workspace twice: the scan before it starts
// (scan.hpp) and the walk for new git repositories after it (git_markers.hpp).
// On a big project (node_modules, build trees) that is tens of thousands of
// directories opened and listed each time, when between two walks only a
// handful changed. A listing kept here replaces opening and listing a
// directory with one lstat of it — the idea of git's untracked cache.
//
// When a kept listing may stand in for a fresh one. The kernel changes a
// directory's ctime whenever an entry is added to it, removed or renamed, and
// whenever its mode, owner or ACL changes; and nobody else can set it:
// utimensat(2) sets atime and mtime, and ctime to *now*. So while a
// directory's device, inode and ctime (DirStamp) are those recorded with its
// listing, it holds exactly those entries, of those types, with the same
// permissions — whatever the agent did with mtimes. Three limits, each
// closed here rather than trusted:
// - Timestamps come from a clock with ticks (up to 10 ms): a change in the
//   very tick of the recorded ctime would leave it as it was. So a listing
//   is recorded only for a directory whose ctime is older than
//   `trusted_before` — the walk's start less kRacyMargin — and any later
//   change gives it a later ctime. (git calls the other ones "racily clean".)
//   A directory made again at the same place can get the same inode number,
//   but never that old ctime.
// - Only filesystems that keep ctime so, in the kernel, qualify (ext2/3/4,
//   xfs, btrfs, tmpfs, f2fs): a network or FUSE filesystem's ctime is what a
//   server says, and overlayfs shows the ctime of whichever layer holds the
//   directory. Elsewhere every directory is listed, as without a cache. Nor
//   do encrypted directories (fscrypt), whose listing changes with a key
//   (see directory_stamp()); and the stamp names the mount, so that another
//   filesystem image mounted at the same place never passes for the first.
// - The clock: a host clock stepped back by more than kRacyMarginSeconds
//   could give a later change the very ctime recorded before it. Only root
//   sets the clock; the agent cannot.
// - The file lives in the cagent home (which a workspace may neither hold
//   nor lie in: paths.hpp), is written 0600, and is read only when it is a
//   regular file of this user, not through a symlink: the agent cannot write
//   it. It records the uid and groups that listed (a listing may fail for
//   want of permission) and the workspace it belongs to; a file that differs
//   in any of it, or is not exactly what save() writes, is not used at all.
//
// A listing of a directory that could not be listed completely is never
// recorded: such a directory is tried again every time (and hidden whole
// while it fails, as the scan says).
//
// Threads. A walk calls reuse() and record() from all of its threads.
// settle() (one thread, after the walk) keeps what that walk used: the
// listings it reused and those it recorded. The walk at the end of the
// session then reuses those, read-only, for every directory the session did
// not change.

#include <sys/stat.h>
#include <time.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "launcher/host/dir_listing.hpp"

namespace cagent::launcher::host {

// How much older than the walk's start a directory's ctime must be for its
// listing to be kept (see above): far more than any clock tick.
inline constexpr int kRacyMarginSeconds = 2;

// What tells whether a directory changed since it was listed: its device,
// inode and ctime, and the mount it was seen through (statx's unique mount
// id where the kernel has it, 6.8 on; else its plain mount id): two
// filesystem images mounted in turn on the same loop device share a device
// number, and an image's ctimes are whatever its maker wrote.
struct DirStamp {
  std::uint64_t dev = 0;
  std::uint64_t ino = 0;
  std::int64_t ctime_sec = 0;
  std::int64_t ctime_nsec = 0;
  std::uint64_t mount = 0;
  bool operator==(const DirStamp&) const = default;
};

// The stamp of the directory `path` below `dir_fd` (statx; flags as for
// it: AT_EMPTY_PATH with "" for `dir_fd` itself). nullopt when it is not a
// directory, cannot be read, or is encrypted (fscrypt: what it lists —
// names or their encoded forms — depends on a key that comes and goes
// without its ctime changing): such a directory is always listed afresh.
std::optional<DirStamp> directory_stamp(int dir_fd, const char* path, int flags);

// Whether listings on a filesystem of this statfs f_type may be kept.
bool keeps_ctime(std::int64_t fs_type);

class ListingCache {
 public:
  struct Counts {
    std::size_t reused = 0;     // listings reused in the last walk
    std::size_t recorded = 0;   // fresh listings recorded
    std::size_t too_new = 0;    // fresh listings not recorded: ctime too recent
    std::size_t untrusted = 0;  // not recorded: a filesystem whose ctime is not trusted
  };

  // An empty cache: listings of directories whose ctime is older than
  // `trusted_before` are recorded.
  explicit ListingCache(timespec trusted_before);
  // The walk's start now, less kRacyMarginSeconds.
  static timespec horizon_now();

  ListingCache(const ListingCache&) = delete;
  ListingCache& operator=(const ListingCache&) = delete;

  // Takes the listings of the file save() wrote for `root`, as long as it is
  // exactly that (see above); otherwise takes nothing and returns false.
  // Call it on a fresh cache, before a walk. Never throws for what the file
  // holds.
  bool load(const std::filesystem::path& file, const std::filesystem::path& root);

  // Whether a listing of `rel` is kept at all (no system call).
  bool knows(std::string_view rel) const;

  // The listing of `rel` recorded with `stamp`, into `out`; false (and
  // `out` untouched) when there is none or the stamp differs.
  bool reuse(std::string_view rel, const DirStamp& stamp, std::vector<ListedEntry>& out) const;

  // What a walk calls: the listing of the directory `rel` below the open
  // directory `root_fd` (the workspace, O_PATH will do), if one is kept and
  // the directory is still the one listed — one fstatat, not following a
  // final symlink, and no system call at all when nothing is kept for it.
  bool reuse_at(int root_fd, const std::string& rel, std::vector<ListedEntry>& out) const;

  // A complete, fresh listing of `rel`, whose stamp was read from the open
  // directory `dir_fd` before it was listed. Kept only as said above.
  void record(std::string_view rel, const DirStamp& stamp, int dir_fd, const std::vector<ListedEntry>& entries);

  // After a walk: keeps exactly the listings it reused or recorded. Returns
  // whether that differs from what was loaded (then it is worth saving).
  bool settle();

  // Writes the cache for `root` to `file` (0600, atomically: a new file
  // renamed over the old). Throws std::runtime_error when it cannot.
  void save(const std::filesystem::path& file, const std::filesystem::path& root) const;

  Counts counts() const;
  std::size_t size() const { return count_; }

 private:
  struct Kept {
    DirStamp stamp;
    std::string_view rel;
    std::string_view listing;  // encoded entries (listing_cache.cpp)
    mutable std::atomic<bool> used{false};
  };
  // A read-only mapping of the loaded file: the keys and listings of what
  // was loaded point into it (mapped rather than read: on a big workspace
  // the file is megabytes, and mapping it costs no page fault per page).
  struct Mapping {
    void* data = nullptr;
    std::size_t size = 0;
    Mapping() = default;
    Mapping(const Mapping&) = delete;
    Mapping& operator=(const Mapping&) = delete;
    ~Mapping();
  };

  static std::unique_ptr<Mapping> map_own_file(const std::filesystem::path& file);
  const Kept* find(std::string_view rel) const;
  bool decode(const Kept& kept, const DirStamp& stamp, std::vector<ListedEntry>& out) const;
  // Makes `kept_` and its index hold these (stamp, rel, listing) triples.
  void index(std::vector<const Kept*> from);

  timespec trusted_before_;
  std::unique_ptr<Mapping> file_;
  // The listings, in one array, and an open-addressing index over their
  // paths (slot = position + 1, 0 = empty; a power of two, at most half
  // full): tens of thousands of directories, no allocation each.
  std::unique_ptr<Kept[]> kept_;
  std::size_t count_ = 0;
  std::vector<std::uint32_t> slots_;

  // Recorded during a walk, under mutex_ (a deque's elements do not move).
  mutable std::mutex mutex_;
  std::deque<std::string> owned_;
  std::deque<Kept> fresh_;
  std::unordered_map<std::uint64_t, bool> device_ok_;
  Counts counts_;
  mutable std::atomic<std::size_t> reused_{0};
};

// Where the cache for the workspace `root` lives in the cagent home.
std::filesystem::path listing_cache_file(const std::filesystem::path& cagent_home, const std::filesystem::path& root);

// How many workspaces keep their listings: those written last.
inline constexpr std::size_t kKeptListingFiles = 32;

// Removes all but the `keep` newest files of `dir` (by mtime). Best effort.
void prune_listing_files(const std::filesystem::path& dir, std::size_t keep);

}  // namespace cagent::launcher::host
