// The fast scan against a plain full walk, on generated workspaces.
//
// scan_workspace() takes entry types from the directory listing, matches an
// entry only against the patterns that can still match in its directory, and
// lists directories on more than one thread before it puts the result
// together in walk order. None of that may change what it finds. The
// reference below is scan.hpp's rules written as the simplest walk there is:
// recursive, one thread, an lstat for every entry, every pattern tried on
// every path. Both scan the same seeded, generated workspaces (files,
// directories, symlinks in and out of the workspace and dangling, .git
// directories, bare and linked git directories, .git files, directories
// the scanning user cannot read, a path longer than kMaxScanPath) under
// random ignore and readonly patterns, and must give the same ScanResult,
// list order included.
//
// Unreadable directories only stop a user without CAP_DAC_OVERRIDE. As root
// the scans run in a child switched to uid 65534 (run_unprivileged), which
// the generated tree admits as "others"; where that cannot be done the test
// says so and those directories are read like any other.
//
// Out of reach here: .git files whose gitdir lies outside the workspace (the
// mounts of worktrees and submodules: scan_test.cpp's own cases), and
// failures of single entries in a readable directory (a file vanishing
// between the listing and its lstat), which cannot be made to happen on
// demand.

#include <doctest/doctest.h>

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <time.h>

#include <algorithm>
#include <fstream>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "launcher/host/file_identity.hpp"
#include "launcher/host/git_markers.hpp"
#include "launcher/host/listing_cache.hpp"
#include "launcher/host/scan.hpp"
#include "launcher/host/text.hpp"
#include "tests/unit/launcher/test_util.hpp"

using namespace cagent::launcher::host;
using cagent::launcher::host::test::TempDir;
namespace fs = std::filesystem;

namespace {

bool matched(const std::vector<Pattern>& patterns, const std::string& rel, bool dir) {
  for (const Pattern& p : patterns) {
    if (p.matches(rel, dir)) return true;
  }
  return false;
}

bool at_or_below(const std::string& path, const std::string& dir) {
  return path == dir || (path.size() > dir.size() && path.starts_with(dir) && path[dir.size()] == '/');
}

// The first line of a small regular file (not through a symlink), without
// the blanks around it; "" when there is none.
std::string first_line_of(const fs::path& path) {
  std::error_code ec;
  if (!fs::is_regular_file(fs::symlink_status(path, ec))) return "";
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  const auto blank = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; };
  while (!line.empty() && blank(line.back())) line.pop_back();
  std::size_t start = 0;
  while (start < line.size() && (line[start] == ' ' || line[start] == '\t')) ++start;
  return line.substr(start);
}

// scan.hpp's rules, walked the plain way.
class ReferenceScan {
 public:
  ReferenceScan(fs::path root, const std::vector<Pattern>& ignore, const std::vector<Pattern>& readonly)
      : root_(std::move(root)), ignore_(ignore), readonly_(readonly), git_(protects_git_dirs(readonly)) {}

  ScanResult run() {
    if (const auto err = walk("", 0)) {
      throw std::runtime_error("cannot scan the workspace " + printable(root_.string()) + ": " + *err +
                               " (fix its permissions, or remove what cannot be read)");
    }
    // Every git directory found, read-only once, unless a read-only
    // directory (or another one of them) holds it.
    for (const std::string& rel : protect_) {
      bool held = false;
      for (const std::string& d : protect_) held = held || (rel != d && (d.empty() || at_or_below(rel, d)));
      for (const ScannedPath& r : out_.readonly) {
        held = held || (r.directory && rel != r.relative && (r.relative.empty() || at_or_below(rel, r.relative)));
      }
      if (!held) readonly(rel, true);
    }
    out_.pinned.assign(pins_.begin(), pins_.end());
    std::sort(out_.git_markers.begin(), out_.git_markers.end(),
              [](const GitMarker& a, const GitMarker& b) { return a.relative < b.relative; });
    return out_;
  }

 private:
  fs::path at(const std::string& rel) const { return rel.empty() ? root_ : root_ / rel; }

  std::optional<std::string> walk(const std::string& rel_dir, int in_git) {
    const fs::path dir = at(rel_dir);
    if (dir.native().size() > kMaxScanPath) return "path longer than " + std::to_string(kMaxScanPath) + " bytes";
    std::error_code ec;
    fs::directory_iterator it(dir, ec);
    if (ec) return "cannot open: " + ec.message();
    std::vector<std::pair<std::string, fs::file_type>> entries;
    for (; !ec && it != fs::directory_iterator(); it.increment(ec)) {
      const std::string name = it->path().filename().string();
      const fs::file_status st = fs::symlink_status(it->path(), ec);  // every entry
      if (ec) return "cannot examine " + printable(name) + ": " + ec.message();
      entries.emplace_back(name, st.type());
    }
    if (ec) return "cannot list: " + ec.message();
    std::sort(entries.begin(), entries.end());
    if (in_git == 0) {
      GitDirNames names;
      for (const auto& e : entries) names.see(e.first);
      if (const auto kind = names.kind()) {
        out_.git_markers.push_back({rel_dir, *kind, file_identity(dir).value_or("")});
        if (git_) protect(dir);
      }
    }
    for (const auto& [name, type] : entries) {
      ++out_.entries_seen;
      const std::string rel = rel_dir.empty() ? name : rel_dir + "/" + name;
      const bool dir_entry = type == fs::file_type::directory;
      if (name == ".git" && in_git == 0 && git_entry_kind(type)) {
        out_.git_markers.push_back({rel, *git_entry_kind(type), file_identity(at(rel)).value_or("")});
      }
      if (type == fs::file_type::symlink) {
        symlink(rel, name, in_git);
      } else if (matched(ignore_, rel, dir_entry)) {
        out_.ignored.push_back({rel, dir_entry});
        bool by_name = false;  // a pattern that needs no ancestor's name: no pins
        for (const Pattern& p : ignore_) {
          std::string t = p.text();
          while (t.ends_with("/")) t.pop_back();
          while (t.starts_with("/")) t.erase(0, 1);
          while (t.starts_with("**/")) t.erase(0, 3);
          by_name = by_name || (p.matches(rel, dir_entry) && t.find('/') == std::string::npos);
        }
        for (std::size_t s = rel.find('/'); !by_name && s != std::string::npos; s = rel.find('/', s + 1)) {
          pins_.insert(rel.substr(0, s));
        }
      } else {
        const bool git_entry = name == ".git" && (dir_entry || type == fs::file_type::regular);
        if (in_git == 0 && (matched(readonly_, rel, dir_entry) || (git_ && git_entry))) readonly(rel, dir_entry);
        if (name == ".git" && type == fs::file_type::regular && in_git == 0) gitfile(rel_dir);
        if (dir_entry) {
          if (const auto err = walk(rel, in_git + (name == ".git" ? 1 : 0))) {
            out_.ignored.push_back({rel, true});
            out_.warnings.push_back(printable(rel) + ": " + *err +
                                    "; hidden in the cage (shown as an empty read-only directory)");
          }
        }
      }
    }
    return std::nullopt;
  }

  void symlink(const std::string& rel, const std::string& name, int in_git) {
    std::error_code ec;
    const fs::path target = fs::weakly_canonical(at(rel), ec);
    std::string target_rel;
    bool target_dir = false;
    bool inside = false;
    if (!ec && at_or_below(target.string(), root_.string()) && target != root_) {
      target_rel = target.string().substr(root_.string().size() + 1);
      const fs::file_status st = fs::symlink_status(target, ec);
      target_dir = fs::is_directory(st);
      inside = !ec && (fs::is_regular_file(st) || target_dir);
    }
    const bool hide = matched(ignore_, rel, target_dir);
    if ((hide || matched(readonly_, rel, target_dir)) && ec && ec != std::errc::no_such_file_or_directory) {
      out_.warnings.push_back("cannot resolve the symlink " + printable(rel) + " (" + ec.message() +
                              "); its target is not " + (hide ? "hidden" : "made read-only") + " through it");
    }
    if (hide) {
      if (inside) out_.ignored.push_back({target_rel, target_dir});
      return;
    }
    if (inside && matched(readonly_, rel, target_dir)) readonly(target_rel, target_dir);
    if (git_ && in_git == 0 && name == ".git" && inside && target_dir && looks_like_git_dir(target)) protect(target);
  }

  // The generated .git files name git directories inside the workspace (or
  // hold no "gitdir: " line): nothing to mount, as scan.hpp says.
  void gitfile(const std::string& rel_dir) {
    const std::string shown = rel_dir.empty() ? ".git" : rel_dir + "/.git";
    const fs::path file = at(rel_dir) / ".git";
    const std::string line = first_line_of(file);
    if (!line.starts_with("gitdir: ") || line == "gitdir: ") {
      out_.warnings.push_back(printable(shown) + ": not a 'gitdir: PATH' file; not mounted");
      return;
    }
    const std::string target = line.substr(8);
    std::error_code ec;
    const fs::path host = fs::canonical(file.parent_path() / target, ec);
    if (git_ && !ec && looks_like_git_dir(host)) protect(host);
    const std::string common = first_line_of(file.parent_path() / target / "commondir");
    const std::string container = "/workspace" + (rel_dir.empty() ? "" : "/" + rel_dir) + "/" + target;
    if (!common.empty() && !at_or_below(normalize_container_path(common.starts_with("/") ? common
                                                                                        : container + "/" + common),
                                        "/workspace")) {
      out_.warnings.push_back(printable(shown) + ": its gitdir " + printable(target) + " names a commondir " +
                              printable(common) + " outside the workspace; not mounted");
    }
  }

  static bool looks_like_git_dir(const fs::path& dir) {
    std::error_code ec;
    return fs::exists(fs::symlink_status(dir / "HEAD", ec)) &&
           (fs::exists(fs::symlink_status(dir / "commondir", ec)) ||
            (fs::is_directory(dir / "objects", ec) && fs::is_directory(dir / "refs", ec)));
  }

  // A git directory in the workspace and the common directory it names.
  void protect(const fs::path& dir) {
    std::error_code ec;
    const fs::path canon = fs::canonical(dir, ec);
    if (ec) return;
    protect_canonical(canon);
    const std::string common = first_line_of(canon / "commondir");
    if (common.empty()) return;
    const fs::path c = fs::canonical(common.starts_with("/") ? fs::path(common) : canon / common, ec);
    if (!ec) protect_canonical(c);
  }

  void protect_canonical(const fs::path& canon) {
    std::error_code ec;
    if (!at_or_below(canon.string(), root_.string()) || !fs::is_directory(fs::symlink_status(canon, ec))) return;
    const std::string rel = canon == root_ ? "" : canon.string().substr(root_.string().size() + 1);
    if (!(rel == ".git" || rel.starts_with(".git/") || rel.find("/.git/") != std::string::npos ||
          rel.ends_with("/.git"))) {
      protect_.insert(rel);
    }
  }

  void readonly(const std::string& rel, bool dir) {
    const ScannedPath p{rel, dir};
    if (std::find(out_.readonly.begin(), out_.readonly.end(), p) == out_.readonly.end()) out_.readonly.push_back(p);
  }

  fs::path root_;
  const std::vector<Pattern>& ignore_;
  const std::vector<Pattern>& readonly_;
  bool git_;
  std::set<std::string> pins_;
  std::set<std::string> protect_;
  ScanResult out_;
};

// A workspace made from a seed: a few hundred entries at most, some seeds
// thousands of directories (so that the scan's helper threads start).
class Generator {
 public:
  Generator(const TempDir& t, std::string ws, unsigned seed) : t_(t), ws_(std::move(ws)), rng_(seed) {}

  void make() {
    static const int kBreadth[] = {4, 8, 16};
    const int breadth = kBreadth[pick(3)];
    fill("", 0, breadth);
    for (const auto& [rel, target] : links_) fs::create_symlink(target, t_ / (ws_ + "/" + rel));
    // A path longer than kMaxScanPath, once in a while.
    if (pick(8) == 0) {
      std::string deep = pick_of(dirs_) + (dirs_.empty() ? "" : "/") + "long";
      while ((t_ / ws_ / deep).native().size() <= kMaxScanPath + 40) deep += "/0123456789abcdef";
      put(ws_ + "/" + deep + "/id_rsa", "x\n");
    }
    // Closed last, so that the generator could fill them first.
    for (const auto& [rel, mode] : locked_) fs::permissions(t_ / (ws_ + "/" + rel), mode);
  }

  std::vector<Pattern> patterns(const std::vector<const char*>& pool) {
    std::vector<Pattern> out;
    for (int n = pick(5); n > 0; --n) {
      out.push_back(Pattern::parse(pool[static_cast<std::size_t>(pick(static_cast<int>(pool.size())))]));
    }
    return out;
  }

  int pick(int n) { return std::uniform_int_distribution<int>(0, n - 1)(rng_); }
  std::size_t directories() const { return dirs_.size(); }

 private:
  // A file and its parents (TempDir::file() writes atomically, with an
  // fsync: thousands of those take seconds).
  void put(const std::string& rel, const std::string& content) const {
    const fs::path p = t_ / rel;
    fs::create_directories(p.parent_path());
    std::ofstream(p) << content;
  }

  std::string pick_of(const std::vector<std::string>& v) {
    return v.empty() ? "" : v[static_cast<std::size_t>(pick(static_cast<int>(v.size())))];
  }
  std::string in_ws(const std::string& rel) const { return rel.empty() ? ws_ : ws_ + "/" + rel; }

  // `rel` relative to the directory `from` ("" = the root), with "..".
  static std::string relative_to(const std::string& rel, const std::string& from) {
    return fs::path(rel.empty() ? "." : rel).lexically_relative(from.empty() ? "." : from).string();
  }

  void git_repo(const std::string& rel) {
    put(in_ws(rel) + "/HEAD", "ref: refs/heads/main\n");
    t_.dir(in_ws(rel) + "/objects/pack");
    t_.dir(in_ws(rel) + "/refs/heads");
    put(in_ws(rel) + "/config", "[core]\n\tbare = false\n");
  }

  void fill(const std::string& rel_dir, int depth, int breadth) {
    static const std::vector<const char*> kFiles = {
        ".env", ".env.local", "server.key", "id_rsa", "main.js", "README.md", "HEAD", "config", "x.pem",
        ".envrc", ".cagent.yaml", "notes [1].txt", "a b.key", "index.js", "commondir", "objects", "refs", "a"};
    static const std::vector<const char*> kDirs = {"src",    "lib",  "node_modules", "secrets", "docs",
                                                   "private", "a",   "b",            "objects", "refs",
                                                   "vendor", "deep", "config",       ".cache",  "x.git"};
    t_.dir(in_ws(rel_dir));
    std::set<std::string> used;
    const int count = pick(breadth + 1);
    for (int i = 0; i < count; ++i) {
      const int kind = pick(100);
      const bool can_nest = depth < 5;
      std::string name = kind < 55 || !can_nest ? kFiles[static_cast<std::size_t>(pick(static_cast<int>(kFiles.size())))]
                                                : kDirs[static_cast<std::size_t>(pick(static_cast<int>(kDirs.size())))];
      if (kind >= 88) name = pick(2) ? ".git" : name;
      if (!used.insert(name).second) continue;
      const std::string rel = rel_dir.empty() ? name : rel_dir + "/" + name;
      if (kind < 55 || !can_nest) {
        put(in_ws(rel), "x\n");
      } else if (kind < 78) {
        dirs_.push_back(rel);
        fill(rel, depth + 1, breadth);
        if (pick(12) == 0) {
          static const fs::perms kModes[] = {fs::perms::none, fs::perms::owner_read | fs::perms::group_read | fs::perms::others_read,
                                             fs::perms::owner_exec | fs::perms::group_exec | fs::perms::others_exec};
          locked_.emplace_back(rel, kModes[pick(3)]);
        }
      } else if (kind < 84) {
        // A symlink: to a file or directory of the workspace, out of it,
        // to nothing, or to itself.
        const int to = pick(6);
        std::string target = "missing";
        if (to == 0 && !dirs_.empty()) target = relative_to(pick_of(dirs_), rel_dir);
        if (to == 1) target = (t_ / "outside").string();
        if (to == 2) target = name;
        if (to == 3 && !dirs_.empty()) target = (t_ / ws_ / pick_of(dirs_)).string();
        if (to == 4 && !files_.empty()) target = relative_to(pick_of(files_), rel_dir);
        links_.emplace_back(rel, target);
      } else if (kind < 88) {
        git_repo(rel);  // a bare repository, whatever its name
        dirs_.push_back(rel);
        if (pick(2)) fill(rel + "/refs", depth + 1, 3);
      } else if (name == ".git") {
        const int how = pick(4);
        if (how == 0) {
          git_repo(rel);
          fill(rel + "/objects", depth + 1, 4);  // walked: ignore patterns hold in .git
        } else if (how == 1 && !dirs_.empty()) {
          put(in_ws(rel), "gitdir: " + relative_to(pick_of(dirs_), rel_dir) + "\n");
        } else if (how == 2) {
          put(in_ws(rel), pick(2) ? "not a gitfile\n" : "");
        } else {
          links_.emplace_back(rel, dirs_.empty() ? std::string("missing") : relative_to(pick_of(dirs_), rel_dir));
        }
      } else {
        // A linked git directory: HEAD and a commondir naming another one.
        put(in_ws(rel) + "/HEAD", "ref: refs/heads/main\n");
        const std::string common = dirs_.empty() ? std::string("..") : relative_to(pick_of(dirs_), rel);
        put(in_ws(rel) + "/commondir", (pick(4) ? common : (t_ / ws_ / pick_of(dirs_)).string()) + "\n");
        dirs_.push_back(rel);
      }
      if (kind < 55 || !can_nest) files_.push_back(rel);
    }
  }

  const TempDir& t_;
  std::string ws_;
  std::mt19937 rng_;
  std::vector<std::string> dirs_, files_;
  std::vector<std::pair<std::string, std::string>> links_;
  std::vector<std::pair<std::string, fs::perms>> locked_;
};

// Everything a ScanResult holds, a line each, in its order.
std::string describe(const ScanResult& r) {
  std::ostringstream out;
  for (const ScannedPath& p : r.ignored) out << "ignored " << p.relative << (p.directory ? "/" : "") << "\n";
  for (const ScannedPath& p : r.readonly) out << "readonly " << p.relative << (p.directory ? "/" : "") << "\n";
  for (const ExtraMount& m : r.git_dirs) out << "git_dir " << m.host.string() << " -> " << m.container << "\n";
  for (const std::string& p : r.pinned) out << "pinned " << p << "\n";
  for (const std::string& w : r.warnings) out << "warning " << w << "\n";
  for (const GitMarker& m : r.git_markers) {
    out << "marker " << m.relative << " " << static_cast<int>(m.kind) << " " << m.identity << "\n";
  }
  out << "entries " << r.entries_seen << "\n";
  return out.str();
}

template <typename Scan>
std::string outcome(Scan&& scan) {
  try {
    return describe(scan());
  } catch (const std::exception& e) {
    return std::string("threw: ") + e.what() + "\n";
  }
}

// The first line where two descriptions part, with its neighbours.
std::string first_difference(const std::string& a, const std::string& b) {
  std::size_t i = 0;
  while (i < a.size() && i < b.size() && a[i] == b[i]) ++i;
  const std::size_t line = a.rfind('\n', i == 0 ? 0 : i - 1);
  const std::size_t from = line == std::string::npos ? 0 : line + 1;
  return "  fast:      " + a.substr(from, 300) + "\n  reference: " + b.substr(from, 300);
}

}  // namespace

TEST_CASE("scan: the fast path finds what a plain full walk finds, on generated workspaces") {
  static const std::vector<const char*> kIgnore = {
      ".env",       ".env.*",       "*.key",    "id_rsa",     "/secrets/", "secrets/", "lib/*.js", "a/**",
      "**/deep",    "/src/a.key",   "docs/private/", "[ab]", "?.md",      "*.js",     "node_modules/", "/lib",
      "x*",         "*x",           "**/b/*.key", "a/**/c",  "src/**/.env", "refs",   "HEAD",     "/a/b/"};
  static const std::vector<const char*> kReadonly = {
      ".git", "/.git", ".git/", ".cagent.yaml", ".envrc", "docs/", "vendor/**", "/src", "lib/a", "**/refs",
      "HEAD", "*.md", "objects/", "a/**/b", "x.git"};
  constexpr unsigned kSeeds = 80;
  TempDir t;
  // The scans may run as uid 65534: it must reach every workspace as "others".
  fs::permissions(t.path(), fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                                fs::perms::others_read | fs::perms::others_exec);
  t.file("outside/secret.txt", "outside the workspace");
  struct Case {
    std::string ws;
    std::vector<Pattern> ignore, readonly;
  };
  std::vector<Case> cases;
  std::size_t large = 0;
  for (unsigned seed = 1; seed <= kSeeds; ++seed) {
    Generator g(t, "ws" + std::to_string(seed), seed);
    g.make();
    if (g.directories() > 40) ++large;
    std::vector<Pattern> ignore = g.patterns(kIgnore);
    std::vector<Pattern> readonly = g.patterns(kReadonly);
    if (g.pick(2)) readonly.push_back(Pattern::parse(".git"));  // history read-only: git directories protected
    cases.push_back({"ws" + std::to_string(seed), std::move(ignore), std::move(readonly)});
  }
  const std::string report = cagent::launcher::host::test::run_unprivileged([&] {
    std::string text;
    std::size_t hidden_unreadable = 0, entries = 0;
    for (const Case& c : cases) {
      const fs::path ws = t / c.ws;
      const std::string fast = outcome([&] { return scan_workspace(ws, c.ignore, c.readonly); });
      const std::string reference = outcome([&] { return ReferenceScan(ws, c.ignore, c.readonly).run(); });
      if (fast != reference) text += c.ws + ": the fast scan differs\n" + first_difference(fast, reference) + "\n";
      for (std::size_t p = 0; (p = fast.find("; hidden in the cage", p)) != std::string::npos; ++p) ++hidden_unreadable;
      const std::size_t e = fast.rfind("entries ");
      if (e != std::string::npos) entries += std::stoul(fast.substr(e + 8));
    }
    return text + "summary: " + std::to_string(entries) + " entries, " + std::to_string(hidden_unreadable) +
           " directories hidden as unscannable\n";
  });
  const std::size_t summary = report.rfind("summary: ");
  REQUIRE(summary != std::string::npos);
  MESSAGE(report.substr(summary) << large << " of " << kSeeds << " workspaces have more than 40 directories");
  // Enough for the scan to list on more than one thread (it starts helpers
  // after 16 directories, where the machine has more than one CPU).
  CHECK(large >= kSeeds / 8);
  CHECK(report.substr(0, summary) == "");
  // The generated workspaces did reach the fail-closed paths (as a user
  // that permission bits stop).
  CHECK(report.find(" 0 directories hidden") == std::string::npos);
}

namespace {

// Changes a generated workspace as an agent might between two scans: a
// planted .env and a new repository in directories listed before, with
// their mtimes set back (ctime cannot be); a file removed, a directory
// renamed, a file replaced by a directory, a directory made unreadable.
// Returns what it did, for a failure's message.
std::string change(const fs::path& ws, std::mt19937& rng) {
  std::vector<fs::path> dirs{ws}, files;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(ws, fs::directory_options::skip_permission_denied, ec);
       it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) break;
    const fs::file_status st = it->symlink_status(ec);
    if (fs::is_directory(st)) dirs.push_back(it->path());
    if (fs::is_regular_file(st)) files.push_back(it->path());
  }
  const auto pick = [&](const std::vector<fs::path>& v) { return v[std::uniform_int_distribution<std::size_t>(0, v.size() - 1)(rng)]; };
  const auto set_back = [](const fs::path& dir) {
    const timespec old[2] = {{946684800, 0}, {946684800, 0}};  // 2000-01-01
    ::utimensat(AT_FDCWD, dir.c_str(), old, AT_SYMLINK_NOFOLLOW);
  };
  std::string did;
  for (int n = 0; n < 4; ++n) {
    const int what = std::uniform_int_distribution<int>(0, 5)(rng);
    if (what == 0) {
      const fs::path d = pick(dirs);
      std::ofstream(d / ".env") << "SECRET=1\n";
      set_back(d);
      did += "planted " + (d / ".env").string() + "; ";
    } else if (what == 1) {
      const fs::path d = pick(dirs);
      fs::create_directories(d / "newrepo/.git/refs", ec);
      set_back(d);
      did += "git repo in " + d.string() + "; ";
    } else if (what == 2 && !files.empty()) {
      const fs::path f = pick(files);
      fs::remove(f, ec);
      did += "removed " + f.string() + "; ";
    } else if (what == 3 && dirs.size() > 1) {
      const fs::path d = pick(dirs);
      if (d != ws) fs::rename(d, d.parent_path() / "renamed.key", ec);
      did += "renamed " + d.string() + "; ";
    } else if (what == 4 && !files.empty()) {
      const fs::path f = pick(files);
      if (fs::remove(f, ec)) {
        fs::create_directories(f / "inner", ec);
        std::ofstream(f / "inner" / ".env") << "SECRET=2\n";
      }
      did += "file to dir " + f.string() + "; ";
    } else if (what == 5 && dirs.size() > 1) {
      const fs::path d = pick(dirs);
      if (d != ws) fs::permissions(d, fs::perms::none, ec);
      did += "locked " + d.string() + "; ";
    }
  }
  return did;
}

}  // namespace

TEST_CASE("scan: listings kept from an earlier scan give what a plain full walk finds, also after changes") {
  static const std::vector<const char*> kIgnore = {".env", "*.key", "secrets/", "/lib", "a/**", "refs", "node_modules/"};
  static const std::vector<const char*> kReadonly = {".git", "docs/", "**/refs", "HEAD", "x.git"};
  constexpr unsigned kSeeds = 24;
  TempDir t;
  fs::permissions(t.path(), fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                                fs::perms::others_read | fs::perms::others_exec);
  t.file("outside/secret.txt", "outside the workspace");
  // The scans may run as uid 65534: their cache files are theirs.
  t.dir("caches");
  fs::permissions(t / "caches", fs::perms::all);
  struct Case {
    std::string ws;
    std::vector<Pattern> ignore, readonly;
  };
  std::vector<Case> cases;
  for (unsigned seed = 101; seed < 101 + kSeeds; ++seed) {
    Generator g(t, "ws" + std::to_string(seed), seed);
    g.make();
    std::vector<Pattern> ignore = g.patterns(kIgnore);
    ignore.push_back(Pattern::parse(".env"));
    std::vector<Pattern> readonly = g.patterns(kReadonly);
    if (g.pick(2)) readonly.push_back(Pattern::parse(".git"));
    cases.push_back({"ws" + std::to_string(seed), std::move(ignore), std::move(readonly)});
  }
  // Everything made so far is older than this; what changes later is not.
  timespec made{};
  ::clock_gettime(CLOCK_REALTIME, &made);
  ::poll(nullptr, 0, 30);
  const auto cache_file = [&](const Case& c) { return t / "caches" / c.ws; };

  // First scans: listings recorded and kept.
  const std::string first = cagent::launcher::host::test::run_unprivileged([&] {
    std::string text;
    std::size_t recorded = 0;
    for (const Case& c : cases) {
      ListingCache cache(made);
      const std::string with = outcome([&] { return scan_workspace(t / c.ws, c.ignore, c.readonly, &cache); });
      const std::string reference = outcome([&] { return ReferenceScan(t / c.ws, c.ignore, c.readonly).run(); });
      if (with != reference) text += c.ws + ": the first scan differs\n" + first_difference(with, reference) + "\n";
      cache.settle();
      recorded += cache.counts().recorded;
      try {
        cache.save(cache_file(c), t / c.ws);
      } catch (const std::exception& e) {
        text += c.ws + ": " + e.what() + "\n";
      }
    }
    return text + "recorded " + std::to_string(recorded) + "\n";
  });
  MESSAGE(first.substr(first.rfind("recorded ")));
  CHECK(first.substr(0, first.rfind("recorded ")) == "");
  CHECK(first.find("recorded 0\n") == std::string::npos);

  // Every workspace scanned again with the listings its first scan kept,
  // against the reference walk, and the walk at the end from those listings
  // against one without. "" when all agree, else what differs; the counts
  // of listings reused and recorded.
  const auto rescan = [&] {
    return cagent::launcher::host::test::run_unprivileged([&] {
      std::string text;
      std::size_t reused = 0, recorded = 0, too_new = 0;
      for (const Case& c : cases) {
        ListingCache cache(ListingCache::horizon_now());
        if (!cache.load(cache_file(c), t / c.ws)) text += c.ws + ": its cache file was not taken\n";
        const std::string with = outcome([&] { return scan_workspace(t / c.ws, c.ignore, c.readonly, &cache); });
        const std::string reference = outcome([&] { return ReferenceScan(t / c.ws, c.ignore, c.readonly).run(); });
        if (with != reference) text += c.ws + ": the cached scan differs\n" + first_difference(with, reference) + "\n";
        reused += cache.counts().reused;
        recorded += cache.counts().recorded;
        too_new += cache.counts().too_new;
        cache.settle();
        const SkipDirs none;
        const GitMarkerWalk cached = find_git_markers(t / c.ws, none, &cache);
        const GitMarkerWalk plain = find_git_markers(t / c.ws, none);
        if (cached.markers != plain.markers || cached.unchecked != plain.unchecked) text += c.ws + ": the end walks differ\n";
      }
      return text + "reused " + std::to_string(reused) + " recorded " + std::to_string(recorded) + " too_new " +
             std::to_string(too_new) + "\n";
    });
  };
  SUBCASE("unchanged: every listing reused, the same result") {
    const std::string again = rescan();
    MESSAGE(again.substr(again.rfind("reused ")));
    CHECK(again.substr(0, again.rfind("reused ")) == "");
    // Nothing changed: nothing listed afresh that the first scans kept.
    CHECK(again.find(" recorded 0 too_new 0\n") != std::string::npos);
    CHECK(again.find("reused 0 ") == std::string::npos);
  }
  SUBCASE("changed as an agent would: what changed is listed again, nothing is missed") {
    std::mt19937 rng(7);
    std::string changes;
    for (const Case& c : cases) changes += c.ws + ": " + change(t / c.ws, rng) + "\n";
    const std::string again = rescan();
    INFO(changes);
    MESSAGE(again.substr(again.rfind("reused ")));
    CHECK(again.substr(0, again.rfind("reused ")) == "");
    // What changed was listed afresh (and, changed this instant, not kept);
    // the unchanged directories were still reused (the control: the cache
    // was used at all).
    CHECK(again.find(" too_new 0\n") == std::string::npos);
    CHECK(again.find("reused 0 ") == std::string::npos);
  }
}
