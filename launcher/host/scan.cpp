#include "launcher/host/scan.hpp"

#include <fcntl.h>
#include <sched.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <condition_variable>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <stdexcept>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>

#include "launcher/host/dir_listing.hpp"
#include "launcher/host/file_identity.hpp"
#include "launcher/host/listing_cache.hpp"
#include "launcher/host/parallel_walk.hpp"
#include "launcher/host/text.hpp"
#include "dnsguard/posix.hpp"

namespace cagent::launcher::host {
namespace fs = std::filesystem;
namespace {

bool any_match(const std::vector<Pattern>& patterns, const std::string& rel, bool dir) {
  return std::any_of(patterns.begin(), patterns.end(),
                     [&](const Pattern& p) { return p.matches(rel, dir); });
}

// Whether a pattern's match depends on the names of the path's ancestors
// ("/secrets/key.pem", "config/*.key", "a/**"), so renaming an ancestor
// would make it stop matching. "name", "/name" and "**/name" depend only on
// the last segment (or, for "/name", have no ancestors to rename).
bool names_ancestors(const Pattern& p) {
  std::string_view t = p.text();
  while (!t.empty() && t.back() == '/') t.remove_suffix(1);
  while (!t.empty() && t.front() == '/') t.remove_prefix(1);
  while (t.substr(0, 3) == "**/") t.remove_prefix(3);
  return t.find('/') != std::string_view::npos;
}

// Container paths a gitdir mount must never cover: it would shadow the cage's
// own system directories (a hostile .git file could say "gitdir: /etc").
bool forbidden_container_target(const std::string& path) {
  static constexpr std::array<std::string_view, 18> kForbidden = {
      "/bin",  "/boot", "/dev",  "/etc", "/lib", "/lib32", "/lib64",     "/libx32",     "/proc",
      "/root", "/run",  "/sbin", "/sys", "/usr", "/var",   "/workspace", "/home/agent", "/opt"};
  if (path == "/" || path.empty() || path.front() != '/') return true;
  for (std::string_view f : kForbidden) {
    if (path == f ||
        (path.size() > f.size() && path.compare(0, f.size(), f) == 0 && path[f.size()] == '/')) {
      return true;
    }
  }
  // A top-level directory of its own (e.g. "/srv") would hide nothing of the
  // image but is still suspicious; require at least two components.
  return std::count(path.begin(), path.end(), '/') < 2;
}

// A repository's own git directory (not a worktree's private one): HEAD,
// objects and refs, and no commondir redirecting elsewhere.
bool is_main_git_dir(const fs::path& dir) {
  std::error_code ec;
  return fs::is_regular_file(dir / "HEAD", ec) && fs::is_directory(dir / "objects", ec) &&
         fs::is_directory(dir / "refs", ec) &&
         !fs::exists(fs::symlink_status(dir / "commondir", ec));
}

// git's own test for a git directory (as GitDirNames, for one path): HEAD,
// and objects/ and refs/ in its common directory — itself, or the one its
// `commondir` file names (a worktree's private git directory).
bool looks_like_git_dir(const fs::path& dir) {
  std::error_code ec;
  if (!fs::exists(fs::symlink_status(dir / "HEAD", ec))) return false;
  return fs::exists(fs::symlink_status(dir / "commondir", ec)) ||
         (fs::is_directory(dir / "objects", ec) && fs::is_directory(dir / "refs", ec));
}

// Whether a workspace-relative path lies in (or is) a .git directory: one
// unit, read-only whole whenever git directories are protected.
bool in_dot_git(const std::string& rel) {
  for (std::string_view seg : split_path(rel)) {
    if (seg == ".git") return true;
  }
  return false;
}

std::string trim(std::string s) {
  while (!s.empty() &&
         (s.back() == '\n' || s.back() == '\r' || s.back() == ' ' || s.back() == '\t')) {
    s.pop_back();
  }
  std::size_t start = 0;
  while (start < s.size() && (s[start] == ' ' || s[start] == '\t')) ++start;
  return s.substr(start);
}

std::string first_line(const std::string& text) {
  return trim(text.substr(0, text.find('\n')));
}

bool within(const std::string& path, const std::string& dir) {
  return path == dir || (path.size() > dir.size() && path.compare(0, dir.size(), dir) == 0 &&
                         path[dir.size()] == '/');
}

// Reads a small regular file without following a final symlink and without
// blocking: git metadata next to the workspace may have been planted by the
// agent (a FIFO would hang the next cagent run). nullopt if it is not a
// regular file, cannot be read, or is larger than `limit`.
std::optional<std::string> read_small_file(const fs::path& path, std::size_t limit = 64 * 1024,
                                           bool follow = false) {
  const UniqueFd owned(::open(path.c_str(), O_RDONLY | O_CLOEXEC | (follow ? 0 : O_NOFOLLOW) | O_NONBLOCK | O_NOCTTY));
  if (!owned.valid()) return std::nullopt;
  const int fd = owned.get();
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size < 0 ||
      static_cast<std::size_t>(st.st_size) > limit) {
    return std::nullopt;
  }
  std::string out(limit + 1, '\0');
  std::size_t got = 0;
  while (got < out.size()) {
    const ssize_t n = ::read(fd, out.data() + got, out.size() - got);
    if (n < 0) return std::nullopt;
    if (n == 0) break;
    got += static_cast<std::size_t>(n);
  }
  if (got > limit) return std::nullopt;
  out.resize(got);
  return out;
}

// A git directory's `commondir` as git itself takes it (setup.c,
// get_common_dir_noenv): through symlinks, with only trailing newlines
// removed. "" when there is none (or it cannot be read as a small regular
// file, which git would refuse too).
std::string git_commondir(const fs::path& gitdir) {
  std::string common = read_small_file(gitdir / "commondir", 64 * 1024, true).value_or("");
  while (!common.empty() && common.back() == '\n') common.pop_back();
  return common;
}

// core.worktree from a git config file, as git writes it for submodules
// ("[core]" then "\tworktree = ../../../sub"). Deliberately minimal: quoted
// values with escapes, includes and subsections are not understood, and then
// the answer is "none" — which only ever means "not mounted".
std::optional<std::string> core_worktree(const std::string& config) {
  std::optional<std::string> result;
  bool in_core = false;
  std::size_t pos = 0;
  while (pos < config.size()) {
    std::size_t eol = config.find('\n', pos);
    if (eol == std::string::npos) eol = config.size();
    const std::string line = trim(config.substr(pos, eol - pos));
    pos = eol + 1;
    if (line.empty() || line[0] == '#' || line[0] == ';') continue;
    if (line[0] == '[') {
      const std::size_t close = line.find(']');
      std::string section = trim(line.substr(1, close == std::string::npos ? 0 : close - 1));
      std::transform(section.begin(), section.end(), section.begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      in_core =
          close != std::string::npos && section == "core" && trim(line.substr(close + 1)).empty();
      continue;
    }
    if (!in_core) continue;
    const std::size_t eq = line.find('=');
    if (eq == std::string::npos) continue;
    std::string key = trim(line.substr(0, eq));
    std::transform(key.begin(), key.end(), key.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (key != "worktree") continue;
    std::string value = trim(line.substr(eq + 1));
    if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
      value = value.substr(1, value.size() - 2);
    }
    if (value.empty() || value.find_first_of("\"\\;#") != std::string::npos) return std::nullopt;
    result = value;
  }
  return result;
}

// Canonical form of `p`, or nullopt if it does not exist or cannot be resolved.
std::optional<fs::path> canonical_or_none(const fs::path& p) {
  std::error_code ec;
  fs::path c = fs::canonical(p, ec);
  if (ec) return std::nullopt;
  return c;
}

// A warning for a .git file that mounts nothing.
std::string refusal(const std::string& gitfile_rel, const std::string& why) {
  return printable(gitfile_rel) + ": " + why + "; not mounted";
}

// ---------------------------------------------------------------------------
// The walk, in two halves (scan.hpp says why).
//
// First every directory is scanned on its own, on up to kMaxScanThreads
// threads (DirScan): listed, its entries typed and matched, and the
// entries that matter visited in name order. What a visit decides goes into
// the directory's record (DirRecord) as effects, in the order a visit makes
// them, each marked with where it stands among the subdirectories to walk;
// each of those gets a record of its own, scanned later by whichever thread.
// Then one thread replays the records depth first (Replay): the effects
// reach the ScanResult in the order a recursive walk on one thread makes
// them, so the result is the same, list order included, whatever thread
// scanned what and when.

// One git directory mount that a .git file asks for (add_git_mount()).
struct GitMountRequest {
  fs::path host;
  std::string container;
  std::string shown;  // the .git file, for the warning when it is refused
};

struct Effect {
  enum class Kind : unsigned char { ignored, readonly, warning, pin, protect, git_mount };
  Kind kind;
  bool directory = false;         // ignored, readonly: what the path is
  std::size_t index = 0;          // into the texts or the mounts
  std::size_t children_before = 0;  // where it stands among the walks of subdirectories
};

// What a directory's visit decided, besides which subdirectories to walk.
// Most directories of a big tree decide nothing: a record holds this only
// when there is something.
struct Findings {
  std::optional<std::string> error;  // why it could not be scanned: hidden whole (by the replay)
  std::vector<GitMarker> markers;    // sorted at the end: their order is free
  std::vector<Effect> effects;       // in the order the visit made them
  std::vector<std::string> texts;
  std::vector<GitMountRequest> mounts;
};

// One directory of the walk. Every directory's record lives until the
// replay, so it is kept small (80-odd bytes) for trees of a million files.
struct DirRecord {
  DirRecord(std::string r, int g) : rel(std::move(r)), in_git(g) {}

  std::string rel;  // relative to the workspace ("" = the workspace); once scanned, kept only for an error
  int in_git = 0;   // how many .git directories hold it
  std::size_t entries = 0;
  // What scanning it threw, thrown again where the replay reaches its end:
  // where a walk on one thread would have stopped.
  std::exception_ptr failure;
  std::vector<DirRecord> children;  // the subdirectories to walk, in name order
  std::unique_ptr<Findings> findings;

  Findings& more() {
    if (!findings) findings = std::make_unique<Findings>();
    return *findings;
  }
  void add(Effect::Kind kind, std::string text, bool is_dir = false) {
    Findings& f = more();
    f.effects.push_back({kind, is_dir, f.texts.size(), children.size()});
    f.texts.push_back(std::move(text));
  }
};

// Scans single directories: everything here reads the file system and the
// patterns, and writes only to the record it is given.
class DirScan {
 public:
  DirScan(const fs::path& root, const std::vector<Pattern>& ignore, const std::vector<Pattern>& readonly,
          ListingCache* cache)
      : root_(root), ignore_(ignore), readonly_(readonly), protect_git_(protects_git_dirs(readonly)), cache_(cache),
        root_fd_(cache != nullptr ? ::open(root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC) : -1) {}

  // What one thread keeps between directories.
  struct Scratch {
    DirLister lister;
    std::vector<ListedEntry> entries;
    std::vector<const Pattern*> ignore, readonly;
    struct Kept {
      const ListedEntry* entry;
      bool hidden;    // an ignore pattern matches it (not for symlinks: see visit_symlink())
      bool readonly;  // a readonly pattern does, outside .git
    };
    std::vector<Kept> kept;
    std::string rel;
  };

  // Scans `d` completely or not at all (its findings' error says why not); appends the
  // records of the subdirectories to walk to `found`.
  void scan(DirRecord& d, Scratch& s, std::vector<DirRecord*>& found) const {
    const fs::path dir = d.rel.empty() ? root_ : root_ / d.rel;
    if (dir.native().size() > kMaxScanPath) {
      d.more().error = std::string("path longer than ") + std::to_string(kMaxScanPath) + " bytes";
      return;
    }
    if (!reuse_listing(d.rel, s.entries) && !list(d, dir, s)) return;
    d.entries = s.entries.size();
    if (d.in_git == 0) {
      GitDirNames names;
      for (const ListedEntry& e : s.entries) names.see(e.name);
      if (const auto kind = names.kind()) {
        d.more().markers.push_back({d.rel, *kind, file_identity(dir).value_or("")});
        // Read-only whole when history is: its config and hooks run for git
        // on the host.
        if (protect_git_) protect_git_dir(d, dir);
      }
    }
    // Only the patterns that can match in here are tried on each entry.
    const auto live = [&](const std::vector<Pattern>& patterns, std::vector<const Pattern*>& out) {
      out.clear();
      for (const Pattern& p : patterns) {
        if (p.could_match_below(d.rel)) out.push_back(&p);
      }
    };
    live(ignore_, s.ignore);
    if (d.in_git == 0) {
      live(readonly_, s.readonly);
    } else {
      s.readonly.clear();  // readonly patterns do not apply inside .git
    }
    const auto any = [&](const std::vector<const Pattern*>& patterns, bool is_dir) {
      return std::any_of(patterns.begin(), patterns.end(), [&](const Pattern* p) { return p->matches(s.rel, is_dir); });
    };
    // An entry that is no directory, symlink or `.git` and that no pattern
    // matches has nothing to visit: it is only counted.
    s.kept.clear();
    s.rel = d.rel.empty() ? std::string() : d.rel + "/";
    const std::size_t prefix = s.rel.size();
    for (const ListedEntry& e : s.entries) {
      if (e.type == fs::file_type::symlink) {
        s.kept.push_back({&e, false, false});
        continue;
      }
      const bool is_dir = e.type == fs::file_type::directory;
      s.rel.resize(prefix);
      s.rel += e.name;
      const bool hidden = any(s.ignore, is_dir);
      const bool ro = !hidden && any(s.readonly, is_dir);
      if (is_dir || hidden || ro || e.name == ".git") s.kept.push_back({&e, hidden, ro});
    }
    // Deterministic order, so mount plans are reproducible.
    std::sort(s.kept.begin(), s.kept.end(),
              [](const Scratch::Kept& a, const Scratch::Kept& b) { return a.entry->name < b.entry->name; });
    for (const Scratch::Kept& k : s.kept) visit(d, dir, k);
    // Their addresses are final now: the records go to other threads.
    d.children.shrink_to_fit();
    for (DirRecord& child : d.children) found.push_back(&child);
    std::string().swap(d.rel);  // (only a directory that could not be scanned needs it again)
  }

 private:
  // The listing kept from an earlier walk, if the directory is still the
  // one listed then (listing_cache.hpp): one lstat instead of a listing.
  bool reuse_listing(const std::string& rel, std::vector<ListedEntry>& out) const {
    return cache_ != nullptr && cache_->reuse_at(root_fd_.get(), rel, out);
  }

  // Lists `dir` into the scratch entries; false, with the record's error
  // set, when it cannot be listed completely.
  bool list(DirRecord& d, const fs::path& dir, Scratch& s) const {
    // Below the root, never through a symlink (one put in place of a
    // directory since it was listed).
    const UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC | (d.rel.empty() ? 0 : O_NOFOLLOW)));
    if (!fd.valid()) {
      d.more().error = "cannot open: " + std::generic_category().message(errno);
      return false;
    }
    // Read before the listing: a change while it is listed moves the ctime
    // on from this.
    const std::optional<DirStamp> stamp =
        cache_ != nullptr ? directory_stamp(fd.get(), "", AT_EMPTY_PATH) : std::nullopt;
    if (const std::optional<DirLister::Failure> f = s.lister.list(fd.get(), s.entries)) {
      d.more().error = f->entry.empty() ? "cannot list: " + std::generic_category().message(f->error)
                                        : "cannot examine " + printable(f->entry) + ": " +
                                              std::generic_category().message(f->error);
      return false;
    }
    if (stamp) cache_->record(d.rel, *stamp, fd.get(), s.entries);
    return true;
  }

  void visit(DirRecord& d, const fs::path& dir, const Scratch::Kept& k) const {
    const std::string& name = k.entry->name;
    const fs::file_type type = k.entry->type;
    const fs::path path = dir / name;
    const std::string rel = d.rel.empty() ? name : d.rel + "/" + name;
    if (name == ".git" && d.in_git == 0) {
      // Before the patterns: a repository is one whatever hides it.
      if (const auto kind = git_entry_kind(type)) d.more().markers.push_back({rel, *kind, file_identity(path).value_or("")});
    }
    if (type == fs::file_type::symlink) {
      visit_symlink(d, path, rel);
      return;
    }
    const bool is_dir = type == fs::file_type::directory;
    if (k.hidden) {
      d.add(Effect::Kind::ignored, rel, is_dir);
      pin_ancestors_if_needed(d, rel, is_dir);
      return;  // hidden wholesale: nothing below matters
    }
    // A .git directory is one unit for readonly (it is mounted whole), but
    // ignore patterns still apply inside it: otherwise the agent could move
    // a directory holding a hidden file into one ("mv app .git") and the
    // next session would show the file.
    // With history read-only, every .git entry is, whatever the pattern's
    // anchoring: a .git file repointed in place keeps its identity, so the
    // end of the session would not name it.
    const bool git_entry = name == ".git" && (is_dir || type == fs::file_type::regular);
    if (d.in_git == 0 && (k.readonly || (protect_git_ && git_entry))) d.add(Effect::Kind::readonly, rel, is_dir);
    if (name == ".git" && type == fs::file_type::regular && d.in_git == 0) follow_gitfile(d, path, d.rel);
    if (!is_dir) return;
    // Walked later, maybe on another thread; the replay puts its effects
    // here, after this entry's own.
    d.children.emplace_back(rel, d.in_git + (name == ".git" ? 1 : 0));
  }

  // Pins the ancestors of a hidden path when every pattern that hides it
  // names those ancestors: renaming one would unhide the path next time.
  void pin_ancestors_if_needed(DirRecord& d, const std::string& rel, bool is_dir) const {
    for (const Pattern& p : ignore_) {
      if (p.matches(rel, is_dir) && !names_ancestors(p)) return;  // a basename match
    }
    for (std::size_t slash = rel.find('/'); slash != std::string::npos; slash = rel.find('/', slash + 1)) {
      d.add(Effect::Kind::pin, rel.substr(0, slash));
    }
  }

  void visit_symlink(DirRecord& d, const fs::path& link, const std::string& rel) const {
    // Only a link some pattern names (as a file or as a directory: what its
    // target is decides which), or a .git link, has an effect below; the
    // others (node_modules/.bin holds thousands) are not resolved: a
    // resolution is a readlink for each component of the path.
    const bool git_link = protect_git_ && d.in_git == 0 && link.filename() == ".git";
    if (!git_link && !any_match(ignore_, rel, false) && !any_match(ignore_, rel, true) &&
        !any_match(readonly_, rel, false) && !any_match(readonly_, rel, true)) {
      return;
    }
    std::error_code ec;
    const fs::path target = fs::weakly_canonical(link, ec);
    std::string target_rel;
    bool target_dir = false;
    bool inside = false;
    if (!ec) {
      const std::string t = target.string();
      const std::string r = root_.string();
      inside = within(t, r) && t != r;
      if (inside) {
        target_rel = t.substr(r.size() + 1);
        const fs::file_status st = fs::symlink_status(target, ec);
        inside = !ec && (fs::is_regular_file(st) || fs::is_directory(st));
        target_dir = fs::is_directory(st);
      }
    }
    const bool hide = any_match(ignore_, rel, target_dir);
    const bool protect = hide || any_match(readonly_, rel, target_dir);
    if (protect && ec && ec != std::errc::no_such_file_or_directory) {
      // (A target in a directory the host cannot read lies in a directory
      // the walk hides whole; loops and overlong chains fail in the cage too.)
      d.add(Effect::Kind::warning, "cannot resolve the symlink " + printable(rel) + " (" + ec.message() +
                                       "); its target is not " + (hide ? "hidden" : "made read-only") + " through it");
    }
    // A symlink's own name matching a pattern protects its target: hiding
    // ".env" must not leave "config/prod.env" readable through the link.
    if (hide) {
      if (inside) d.add(Effect::Kind::ignored, target_rel, target_dir);
      return;
    }
    if (any_match(readonly_, rel, target_dir) && inside) d.add(Effect::Kind::readonly, target_rel, target_dir);
    // A .git symlink sends git to its target: protected as a git directory.
    if (protect_git_ && d.in_git == 0 && link.filename() == ".git" && inside && target_dir &&
        looks_like_git_dir(target)) {
      protect_git_dir(d, target);
    }
  }

  // A git directory that lies in the workspace, and the common directory
  // its `commondir` names when that lies in the workspace too (git reads
  // config and hooks from there): both read-only. `dir` need not be
  // canonical; what lies outside the workspace is left to follow_gitfile().
  void protect_git_dir(DirRecord& d, const fs::path& dir) const {
    const std::optional<fs::path> canon = canonical_or_none(dir);
    if (!canon) return;
    protect_inside(d, *canon);
    // Read as git reads it, not as the rest of the scan reads files: git
    // follows a symlinked `commondir` and strips only trailing newlines
    // ("../c " names a directory "c "). Read any other way, the agent
    // could name a common directory git uses and this protects nothing.
    // Only a path is taken from it, never shown.
    const std::string common = git_commondir(*canon);
    if (common.empty()) return;
    if (const std::optional<fs::path> c = canonical_or_none(fs::path(common).is_absolute() ? fs::path(common) : *canon / common)) {
      protect_inside(d, *c);
    }
  }

  void protect_inside(DirRecord& d, const fs::path& canon) const {
    const std::string path = canon.string();
    const std::string root = root_.string();
    std::error_code ec;
    if (!within(path, root) || !fs::is_directory(fs::symlink_status(canon, ec))) return;
    const std::string rel = path == root ? std::string() : path.substr(root.size() + 1);
    if (!in_dot_git(rel)) d.add(Effect::Kind::protect, rel);  // (a .git directory is read-only whole)
  }

  static void refuse_gitfile(DirRecord& d, const std::string& gitfile_rel, const std::string& why) {
    d.add(Effect::Kind::warning, refusal(gitfile_rel, why));
  }

  static void add_git_mount(DirRecord& d, const fs::path& host, const std::string& container, const std::string& shown) {
    Findings& f = d.more();
    f.effects.push_back({Effect::Kind::git_mount, false, f.mounts.size(), d.children.size()});
    f.mounts.push_back({host, container, shown});
  }

  // A `.git` file (worktree or submodule checkout): its git directory is
  // mounted read-only only when git's own files outside the workspace tie
  // it to this very checkout; anything else is reported and mounts nothing.
  void follow_gitfile(DirRecord& d, const fs::path& gitfile, const std::string& rel_dir) const {
    const std::string shown = rel_dir.empty() ? ".git" : rel_dir + "/.git";
    const std::optional<std::string> content = read_small_file(gitfile);
    const std::string line = content ? first_line(*content) : std::string();
    static constexpr std::string_view kPrefix = "gitdir: ";
    if (line.compare(0, kPrefix.size(), kPrefix) != 0 || line.size() == kPrefix.size()) {
      refuse_gitfile(d, shown, "not a 'gitdir: PATH' file");
      return;
    }
    const std::string target = line.substr(kPrefix.size());
    const bool absolute = fs::path(target).is_absolute();
    const std::string container_dir = rel_dir.empty()
                                          ? std::string(kContainerWorkspace)
                                          : std::string(kContainerWorkspace) + "/" + rel_dir;
    const std::string container_gitdir =
        normalize_container_path(absolute ? target : container_dir + "/" + target);
    const std::optional<fs::path> host_gitdir =
        canonical_or_none(absolute ? fs::path(target) : gitfile.parent_path() / target);
    // Where git on the host goes: when that is in the workspace, the agent
    // must not write it (as an absolute path, as `git worktree add` and
    // `--separate-git-dir` write it, the cage does not even reach it there).
    if (protect_git_ && host_gitdir && looks_like_git_dir(*host_gitdir)) protect_git_dir(d, *host_gitdir);
    if (within(container_gitdir, kContainerWorkspace)) {
      report_commondir_outside(d, shown, gitfile, target, container_gitdir);
      return;
    }
    std::error_code dir_ec;
    if (!host_gitdir || !fs::is_directory(*host_gitdir, dir_ec)) {
      refuse_gitfile(d, shown, "its gitdir " + printable(target) + " is not a directory");
      return;
    }
    const std::optional<fs::path> gitfile_canon = canonical_or_none(gitfile);
    if (!gitfile_canon) {
      refuse_gitfile(d, shown, "cannot resolve its own path");
      return;
    }
    if (const std::optional<std::string> common = read_small_file(*host_gitdir / "commondir")) {
      follow_worktree(d, shown, *host_gitdir, *gitfile_canon, container_gitdir, first_line(*common));
    } else if (within(host_gitdir->string(), root_.string()) && is_main_git_dir(*host_gitdir)) {
      // A repository of the workspace's own (git init --separate-git-dir
      // "$PWD/.gitdata"): the cage sees it anyway, so no back-pointer is
      // needed; mounted where the .git file says, for git in the cage.
      add_git_mount(d, *host_gitdir, container_gitdir, shown);
    } else {
      follow_submodule(d, shown, *host_gitdir, *gitfile_canon, container_gitdir);
    }
  }

  // The gitdir is inside the workspace: the cage reaches it through
  // /workspace (as whatever the workspace holds there), nothing to mount. A
  // commondir pointing out of the workspace is not followed — a gitdir
  // inside the workspace is the agent's to forge — but the user hears about it.
  void report_commondir_outside(DirRecord& d, const std::string& shown, const fs::path& gitfile, const std::string& target,
                                const std::string& container_gitdir) const {
    const std::string common =
        first_line(read_small_file(gitfile.parent_path() / target / "commondir").value_or(""));
    if (common.empty()) return;
    const std::string container_common =
        normalize_container_path(fs::path(common).is_absolute() ? common : container_gitdir + "/" + common);
    if (!within(container_common, kContainerWorkspace)) {
      refuse_gitfile(d, shown, "its gitdir " + printable(target) + " names a commondir " + printable(common) +
                                " outside the workspace");
    }
  }

  // Worktree: <common>/worktrees/<name>, whose back-pointer ('gitdir')
  // names this very .git file.
  void follow_worktree(DirRecord& d, const std::string& shown, const fs::path& host_gitdir, const fs::path& gitfile_canon,
                       const std::string& container_gitdir, const std::string& common) const {
    const bool common_abs = fs::path(common).is_absolute();
    const std::optional<fs::path> host_common =
        common.empty() ? std::nullopt : canonical_or_none(common_abs ? fs::path(common) : host_gitdir / common);
    const std::optional<std::string> back = read_small_file(host_gitdir / "gitdir");
    std::optional<fs::path> back_canon;
    if (back && !first_line(*back).empty()) {
      const fs::path b = first_line(*back);
      back_canon = canonical_or_none(b.is_absolute() ? b : host_gitdir / b);
    }
    if (!host_common || !is_main_git_dir(*host_common) || host_gitdir.parent_path() != *host_common / "worktrees") {
      refuse_gitfile(d, shown, "its gitdir " + printable(host_gitdir.string()) + " is not a worktree of a git repository");
      return;
    }
    if (back_canon != gitfile_canon) {
      refuse_gitfile(d, shown, "the worktree " + printable(host_gitdir.string()) +
                                " belongs to another checkout (its 'gitdir' file does not name this .git file)");
      return;
    }
    add_git_mount(d, *host_common, normalize_container_path(common_abs ? common : container_gitdir + "/" + common),
                  shown);
  }

  // Submodule: below <git dir>/modules/, with core.worktree naming the
  // directory that holds this .git file.
  void follow_submodule(DirRecord& d, const std::string& shown, const fs::path& host_gitdir, const fs::path& gitfile_canon,
                        const std::string& container_gitdir) const {
    bool under_modules = false;
    for (fs::path p = host_gitdir.parent_path(); p.has_relative_path(); p = p.parent_path()) {
      if (p.filename() == "modules" && is_main_git_dir(p.parent_path())) {
        under_modules = true;
        break;
      }
    }
    std::optional<fs::path> worktree_canon;
    if (const std::optional<std::string> config = read_small_file(host_gitdir / "config")) {
      if (const std::optional<std::string> wt = core_worktree(*config)) {
        const fs::path w = *wt;
        worktree_canon = canonical_or_none(w.is_absolute() ? w : host_gitdir / w);
      }
    }
    // error_code forms: an `objects` the agent made a symlink loop or
    // unreadable refuses this .git file, it does not end the scan.
    std::error_code ec;
    if (!under_modules || !fs::is_directory(host_gitdir / "objects", ec) ||
        worktree_canon != gitfile_canon.parent_path()) {
      refuse_gitfile(d, shown, "its gitdir " + printable(host_gitdir.string()) +
                                " is neither a worktree nor a submodule git directory of this checkout");
      return;
    }
    add_git_mount(d, host_gitdir, container_gitdir, shown);
  }

  const fs::path& root_;
  const std::vector<Pattern>& ignore_;
  const std::vector<Pattern>& readonly_;
  const bool protect_git_;  // readonly covers .git: every git directory is read-only
  ListingCache* const cache_;  // nullptr: every directory is listed
  // The workspace, for the cache's stamps: each one an fstatat of a path
  // below it, not a walk from / (-1 when it cannot be opened: then every
  // directory is listed, and the root's failure said).
  const UniqueFd root_fd_;
};

// Scans the records of a whole tree, from `root` down, on up to
// kMaxScanThreads threads (parallel_walk.hpp).
class TreeScan {
 public:
  explicit TreeScan(const DirScan& scan) : scan_(scan) {}

  void run(DirRecord& root) {
    // Records, not copies: each lives in its parent's `children`, whose
    // addresses are final once scanned.
    ParallelWalk<DirRecord*>(kMaxScanThreads, kDirsBeforeHelpers).run(&root, [this] {
      return [this, scratch = DirScan::Scratch()](DirRecord* d, std::vector<DirRecord*>& found) mutable {
        try {
          scan_.scan(*d, scratch, found);
        } catch (...) {
          d->failure = std::current_exception();
        }
      };
    });
    // (the helpers are joined there, before the records are read)
  }

 private:
  // A small workspace is scanned before a thread would have started.
  static constexpr std::size_t kDirsBeforeHelpers = 16;

  const DirScan& scan_;
};

// Puts the records together, depth first in name order, into the ScanResult
// that a walk on one thread makes.
class Replay {
 public:
  explicit Replay(const fs::path& root) : root_(root) {}

  ScanResult run(const DirRecord& top) {
    take(top);
    // Depth first with an explicit stack: as deep as the agent nested
    // directories, up to kMaxScanPath. In each directory its effects and
    // the walks of its subdirectories, merged in the order the visit made
    // them.
    struct Frame {
      const DirRecord* d;
      std::size_t child = 0, effect = 0;
    };
    std::vector<Frame> stack{{&top}};
    while (!stack.empty()) {
      Frame& f = stack.back();
      const DirRecord& d = *f.d;
      const Findings* found = d.findings.get();
      if (found != nullptr && f.effect < found->effects.size() &&
          found->effects[f.effect].children_before <= f.child) {
        apply(*found, found->effects[f.effect++]);
      } else if (f.child < d.children.size()) {
        const DirRecord& child = d.children[f.child++];
        take(child);
        stack.push_back({&child});  // (f is gone now)
      } else {
        if (d.failure) std::rethrow_exception(d.failure);
        stack.pop_back();
        if (found != nullptr && found->error) {
          // Fail closed: whatever is below was not looked at, so none of it
          // may reach the cage.
          result_.ignored.push_back({d.rel, true});
          result_.warnings.push_back(printable(d.rel) + ": " + *found->error +
                                     "; hidden in the cage (shown as an empty read-only directory)");
        }
      }
    }
    drop_unsafe_git_mounts();
    add_protected_git_dirs();
    result_.pinned.assign(pinned_.begin(), pinned_.end());
    std::sort(result_.git_markers.begin(), result_.git_markers.end(),
              [](const GitMarker& a, const GitMarker& b) { return a.relative < b.relative; });
    return std::move(result_);
  }

 private:
  void take(const DirRecord& d) {
    result_.entries_seen += d.entries;
    if (d.findings) {
      for (const GitMarker& m : d.findings->markers) result_.git_markers.push_back(m);
    }
  }

  void apply(const Findings& f, const Effect& e) {
    switch (e.kind) {
      case Effect::Kind::ignored: result_.ignored.push_back({f.texts[e.index], e.directory}); break;
      case Effect::Kind::readonly: add_readonly(f.texts[e.index], e.directory); break;
      case Effect::Kind::warning: result_.warnings.push_back(f.texts[e.index]); break;
      case Effect::Kind::pin: pinned_.insert(f.texts[e.index]); break;
      case Effect::Kind::protect: protected_.insert(f.texts[e.index]); break;
      case Effect::Kind::git_mount: add_git_mount(f.mounts[e.index]); break;
    }
  }

  // The git directories found, read-only: each once, none below another
  // read-only directory (one mount covers it).
  void add_protected_git_dirs() {
    const auto below = [](const std::string& path, const std::string& dir) {
      return dir.empty() ? !path.empty() : path.size() > dir.size() && within(path, dir);
    };
    for (const std::string& rel : protected_) {
      const bool covered =
          std::any_of(protected_.begin(), protected_.end(), [&](const std::string& d) { return below(rel, d); }) ||
          std::any_of(result_.readonly.begin(), result_.readonly.end(),
                      [&](const ScannedPath& r) { return r.directory && below(rel, r.relative); });
      if (!covered) add_readonly(rel, true);
    }
  }

  // Read-only, once.
  void add_readonly(const std::string& rel, bool is_dir) {
    const ScannedPath p{rel, is_dir};
    if (std::find(result_.readonly.begin(), result_.readonly.end(), p) == result_.readonly.end()) {
      result_.readonly.push_back(p);
    }
  }

  void add_git_mount(const GitMountRequest& request) {
    const fs::path& host = request.host;
    const std::string& container = request.container;
    if (within(container, kContainerWorkspace)) return;  // visible through the workspace
    for (const ExtraMount& m : result_.git_dirs) {
      if (within(container, m.container)) return;  // already covered by a parent mount
    }
    if (forbidden_container_target(container)) {
      result_.warnings.push_back(refusal(request.shown, "its git directory " + printable(host.string()) +
                                                            " would be mounted at " + printable(container) +
                                                            ", a system path"));
      return;
    }
    result_.git_dirs.push_back({host, container});
  }

  // A git mount whose source is in the workspace would show it a second
  // time, outside /workspace, without the ignore placeholders: refuse it if
  // it contains or lies in an ignored path (or contains the workspace).
  void drop_unsafe_git_mounts() {
    const std::string root = root_.string();
    std::vector<ExtraMount> kept;
    for (ExtraMount& m : result_.git_dirs) {
      const std::string host = m.host.string();
      bool unsafe = within(root, host);
      if (!unsafe && within(host, root)) {
        const std::string rel = host.substr(root.size() + 1);
        unsafe =
            std::any_of(result_.ignored.begin(), result_.ignored.end(), [&](const ScannedPath& i) {
              return within(rel, i.relative) || within(i.relative, rel);
            });
      }
      if (unsafe) {
        result_.warnings.push_back("git directory " + printable(host) +
                                   " holds or lies in a hidden part of the workspace; not mounted");
        continue;
      }
      kept.push_back(std::move(m));
    }
    result_.git_dirs = std::move(kept);
  }

  const fs::path& root_;
  std::set<std::string> pinned_;
  std::set<std::string> protected_;  // git directories to make read-only (relative)
  ScanResult result_;
};

ScanResult scan(const fs::path& root, const std::vector<Pattern>& ignore, const std::vector<Pattern>& readonly,
                ListingCache* cache) {
  const DirScan dirs(root, ignore, readonly, cache);
  DirRecord top("", 0);
  TreeScan(dirs).run(top);
  if (top.findings && top.findings->error) {
    // The root cannot be hidden behind a placeholder (it *is* the mount):
    // stop instead of starting a session with an unknown workspace.
    throw std::runtime_error("cannot scan the workspace " + printable(root.string()) + ": " + *top.findings->error +
                             " (fix its permissions, or remove what cannot be read)");
  }
  return Replay(root).run(top);
}

}  // namespace

std::string normalize_container_path(const std::string& path) {
  std::vector<std::string> parts;
  for (std::string_view seg : split_path(path)) {
    if (seg == ".") continue;
    if (seg == "..") {
      if (!parts.empty()) parts.pop_back();
      continue;
    }
    parts.emplace_back(seg);
  }
  std::string out;
  for (const std::string& p : parts) out += "/" + p;
  return out.empty() ? "/" : out;
}

bool protects_git_dirs(const std::vector<Pattern>& readonly) {
  return any_match(readonly, ".git", true);
}

ScanResult scan_workspace(const fs::path& root, const std::vector<Pattern>& ignore,
                          const std::vector<Pattern>& readonly, ListingCache* cache) {
  return scan(root, ignore, readonly, cache);
}

SkipDirs unwritable_directories(const fs::path& root, const ScanResult& scan) {
  SkipDirs dirs;
  for (const std::vector<ScannedPath>* list : {&scan.ignored, &scan.readonly}) {
    for (const ScannedPath& p : *list) {
      if (!p.directory) continue;
      // One whose identity cannot be read is walked at the end after all.
      if (auto id = dir_identity(p.relative.empty() ? root : root / p.relative)) dirs.emplace(p.relative, *id);
    }
  }
  return dirs;
}

}  // namespace cagent::launcher::host
