#include "launcher/host/git_markers.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>
#include <memory>
#include <mutex>

#include "launcher/host/dir_listing.hpp"
#include "launcher/host/file_identity.hpp"
#include "launcher/host/listing_cache.hpp"
#include "launcher/host/parallel_walk.hpp"
#include "launcher/host/scan.hpp"
#include "launcher/host/text.hpp"
#include "dnsguard/posix.hpp"

namespace cagent::launcher::host {
namespace fs = std::filesystem;
namespace {

struct DirCloser {
  void operator()(DIR* d) const { ::closedir(d); }
};
using DirHandle = std::unique_ptr<DIR, DirCloser>;

fs::file_type type_of(int dir_fd, const dirent& e) {
  const fs::file_type type = file_type_of_dirent(e.d_type);
  if (type != fs::file_type::none) return type;
  struct stat st {};  // the filesystem does not say: ask
  if (::fstatat(dir_fd, e.d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) return fs::file_type::unknown;
  return file_type_of_mode(st.st_mode);
}

std::string shown(const std::string& relative) { return relative.empty() ? "." : printable(relative); }

std::string what(GitMarker::Kind kind) {
  switch (kind) {
    case GitMarker::Kind::git_dir: return "a new .git directory";
    case GitMarker::Kind::git_file: return "a new .git file: it sends git to the directory it names";
    case GitMarker::Kind::git_symlink: return "a new .git symlink";
    case GitMarker::Kind::bare_repository: return "git takes it for a bare repository: HEAD, objects/, refs/";
    case GitMarker::Kind::linked_git_dir:
      return "git takes it for a repository: HEAD and commondir, whose directory's config and hooks it uses";
  }
  return "";
}

}  // namespace

void GitDirNames::see(std::string_view name) {
  if (name == "HEAD") head_ = true;
  if (name == "objects") objects_ = true;
  if (name == "refs") refs_ = true;
  if (name == "commondir") commondir_ = true;
}

std::optional<GitMarker::Kind> GitDirNames::kind() const {
  if (!head_) return std::nullopt;
  if (commondir_) return GitMarker::Kind::linked_git_dir;
  if (objects_ && refs_) return GitMarker::Kind::bare_repository;
  return std::nullopt;
}

std::optional<GitMarker::Kind> git_entry_kind(fs::file_type type) {
  switch (type) {
    case fs::file_type::directory: return GitMarker::Kind::git_dir;
    case fs::file_type::regular: return GitMarker::Kind::git_file;
    case fs::file_type::symlink: return GitMarker::Kind::git_symlink;
    default: return std::nullopt;
  }
}

std::optional<std::string> dir_identity(const fs::path& path) {
  if (auto id = file_identity(path)) return id;
  struct stat st{};
  if (::lstat(path.c_str(), &st) != 0) return std::nullopt;
  return "ino:" + std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino);
}

namespace {
// Whether the end walk may pass over `child`: recorded at the start and
// still the same directory.
bool still_skipped(const SkipDirs& skip, const std::string& child, const fs::path& root) {
  const auto it = skip.find(child);
  return it != skip.end() && dir_identity(root / child) == it->second;
}

// The end walk's threads start once it proved larger than a few
// directories (a small workspace is done before a thread would start).
constexpr std::size_t kDirsBeforeHelpers = 16;
}  // namespace

GitMarkerWalk find_git_markers(const fs::path& root, const SkipDirs& skip, const ListingCache* cache) {
  GitMarkerWalk out;
  std::mutex out_mutex;  // guards `out`: rarely taken, most directories hold no marker
  // For the cache's stamps (an fstatat below it, not a walk from /).
  const UniqueFd root_fd(cache != nullptr ? ::open(root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC) : -1);
  // One directory open at a time per thread, however deep the agent nested
  // them; the order is free, the result is sorted below.
  ParallelWalk<std::string>(kMaxScanThreads, kDirsBeforeHelpers).run("", [&] {
    return [&, entries = std::vector<ListedEntry>()](const std::string& rel, std::vector<std::string>& subdirs) mutable {
      const fs::path dir = rel.empty() ? root : root / rel;
      const auto unchecked = [&] {
        const std::lock_guard lock(out_mutex);
        out.unchecked.push_back(rel);
      };
      if (dir.native().size() > kMaxScanPath) return unchecked();
      // A directory the session did not change has the entries the start
      // scan listed (listing_cache.hpp): one lstat instead of a listing.
      if (cache == nullptr || !cache->reuse_at(root_fd.get(), rel, entries)) {
        entries.clear();
        UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        DirHandle listing(fd.valid() ? ::fdopendir(fd.get()) : nullptr);
        if (!listing) return unchecked();
        fd.release();  // the DIR owns it now
        while (const dirent* e = ::readdir(listing.get())) {
          const std::string_view name = e->d_name;
          if (name == "." || name == "..") continue;
          entries.push_back({std::string(name), type_of(::dirfd(listing.get()), *e)});
        }
      }
      GitDirNames names;
      std::vector<GitMarker> found;
      for (const ListedEntry& e : entries) {
        const std::string_view name = e.name;
        names.see(name);
        if (e.type != fs::file_type::directory && name != ".git") continue;  // a file: its name was all it took
        std::string child = rel.empty() ? std::string(name) : rel + "/" + std::string(name);
        if (name == ".git") {
          if (const auto kind = git_entry_kind(e.type)) {
            found.push_back({child, *kind, file_identity(root / child).value_or("")});
          }
          continue;  // a .git directory is one unit: never entered
        }
        if (!still_skipped(skip, child, root)) subdirs.push_back(std::move(child));
      }
      if (const auto kind = names.kind()) found.push_back({rel, *kind, file_identity(dir).value_or("")});
      if (!found.empty()) {
        const std::lock_guard lock(out_mutex);
        out.markers.insert(out.markers.end(), found.begin(), found.end());
      }
    };
  });
  std::sort(out.markers.begin(), out.markers.end(),
            [](const GitMarker& a, const GitMarker& b) { return a.relative < b.relative; });
  std::sort(out.unchecked.begin(), out.unchecked.end());
  return out;
}

std::vector<GitMarker> new_git_markers(const std::vector<GitMarker>& before, const std::vector<GitMarker>& after) {
  std::vector<GitMarker> fresh;
  for (const GitMarker& m : after) {
    if (std::find(before.begin(), before.end(), m) == before.end()) fresh.push_back(m);
  }
  return fresh;
}

std::vector<std::string> describe_new_git_markers(const std::vector<GitMarker>& markers,
                                                  const std::vector<std::string>& unchecked, std::size_t limit) {
  std::vector<std::string> lines;
  if (!markers.empty()) {
    lines.push_back("this session created " +
                    (markers.size() == 1 ? std::string("a git repository") :
                                           std::to_string(markers.size()) + " git repositories") +
                    " in the workspace: git run there on the host (also by a shell prompt that shows git status) "
                    "runs its hooks and config, such as core.fsmonitor, as you; read or remove before using git there:");
    for (std::size_t i = 0; i < markers.size() && i < limit; ++i) {
      lines.push_back("  " + shown(markers[i].relative) + " (" + what(markers[i].kind) + ")");
    }
    if (markers.size() > limit) lines.push_back("  … and " + std::to_string(markers.size() - limit) + " more");
  }
  if (!unchecked.empty()) {
    std::string list;
    for (std::size_t i = 0; i < unchecked.size() && i < limit; ++i) list += (i ? ", " : "") + shown(unchecked[i]);
    if (unchecked.size() > limit) list += " and " + std::to_string(unchecked.size() - limit) + " more";
    lines.push_back("could not look for new git repositories in " + list +
                    " (unreadable or nested too deep): check them before using git there");
  }
  return lines;
}

}  // namespace cagent::launcher::host
