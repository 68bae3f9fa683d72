#include "launcher/host/scan.hpp"

#include <algorithm>
#include <array>
#include <fstream>
#include <string_view>
#include <system_error>

namespace cagent::launcher::host {
namespace fs = std::filesystem;
namespace {

bool any_match(const std::vector<Pattern>& patterns, const std::string& rel, bool dir) {
  return std::any_of(patterns.begin(), patterns.end(),
                     [&](const Pattern& p) { return p.matches(rel, dir); });
}

// Container paths a gitdir mount must never cover: it would shadow the cage's
// own system directories (a hostile .git file could say "gitdir: /etc").
bool forbidden_container_target(const std::string& path) {
  static constexpr std::array<std::string_view, 18> kForbidden = {
      "/bin", "/boot", "/dev", "/etc", "/lib", "/lib32", "/lib64", "/libx32", "/proc",
      "/root", "/run", "/sbin", "/sys", "/usr", "/var", "/workspace", "/home/agent", "/opt"};
  if (path == "/" || path.empty() || path.front() != '/') return true;
  for (std::string_view f : kForbidden) {
    if (path == f || (path.size() > f.size() && path.compare(0, f.size(), f) == 0 &&
                      path[f.size()] == '/')) {
      return true;
    }
  }
  // A top-level directory of its own (e.g. "/srv") would hide nothing of the
  // image but is still suspicious; require at least two components.
  return std::count(path.begin(), path.end(), '/') < 2;
}

bool looks_like_git_dir(const fs::path& dir) {
  std::error_code ec;
  return fs::is_regular_file(dir / "HEAD", ec) &&
         (fs::is_directory(dir / "objects", ec) || fs::is_regular_file(dir / "commondir", ec));
}

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

bool within(const std::string& path, const std::string& dir) {
  return path == dir ||
         (path.size() > dir.size() && path.compare(0, dir.size(), dir) == 0 && path[dir.size()] == '/');
}

class Scanner {
 public:
  Scanner(const fs::path& root, const std::vector<Pattern>& ignore,
          const std::vector<Pattern>& readonly)
      : root_(root), ignore_(ignore), readonly_(readonly) {}

  ScanResult run() {
    walk(root_, "");
    return std::move(result_);
  }

 private:
  void walk(const fs::path& dir, const std::string& rel_dir) {
    std::error_code ec;
    fs::directory_iterator it(dir, fs::directory_options::none, ec);
    if (ec) {
      if (rel_dir.empty()) {
        throw std::runtime_error("cannot read workspace " + dir.string() + ": " + ec.message());
      }
      result_.warnings.push_back("cannot read " + rel_dir + ": " + ec.message() + " (not scanned)");
      return;
    }
    std::vector<fs::directory_entry> entries;
    for (; it != fs::directory_iterator(); it.increment(ec)) {
      if (ec) break;
      entries.push_back(*it);
    }
    // Deterministic order, so mount plans are reproducible.
    std::sort(entries.begin(), entries.end(),
              [](const auto& a, const auto& b) { return a.path().filename() < b.path().filename(); });
    for (const fs::directory_entry& entry : entries) visit(entry, rel_dir);
  }

  void visit(const fs::directory_entry& entry, const std::string& rel_dir) {
    ++result_.entries_seen;
    const std::string name = entry.path().filename().string();
    const std::string rel = rel_dir.empty() ? name : rel_dir + "/" + name;
    std::error_code ec;
    const fs::file_status st = entry.symlink_status(ec);  // never follows
    if (ec) return;
    if (fs::is_symlink(st)) {
      visit_symlink(entry.path(), rel);
      return;
    }
    const bool is_dir = fs::is_directory(st);
    if (any_match(ignore_, rel, is_dir)) {
      result_.ignored.push_back({rel, is_dir});
      return;  // hidden wholesale: nothing below matters
    }
    if (any_match(readonly_, rel, is_dir)) result_.readonly.push_back({rel, is_dir});
    if (name == ".git") {
      if (fs::is_regular_file(st)) follow_gitfile(entry.path(), rel_dir);
      return;  // a .git directory is one unit; patterns don't apply inside
    }
    if (is_dir) walk(entry.path(), rel);
  }

  void visit_symlink(const fs::path& link, const std::string& rel) {
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
    // A symlink's own name matching a pattern protects its target: hiding
    // ".env" must not leave "config/prod.env" readable through the link.
    if (any_match(ignore_, rel, target_dir)) {
      if (inside) result_.ignored.push_back({target_rel, target_dir});
      return;
    }
    if (any_match(readonly_, rel, target_dir) && inside) {
      result_.readonly.push_back({target_rel, target_dir});
    }
  }

  void follow_gitfile(const fs::path& gitfile, const std::string& rel_dir) {
    std::ifstream in(gitfile);
    std::string line;
    std::getline(in, line);
    line = trim(line);
    static constexpr std::string_view kPrefix = "gitdir: ";
    if (line.compare(0, kPrefix.size(), kPrefix) != 0) {
      result_.warnings.push_back(gitfile.string() + ": not a 'gitdir:' file, ignored");
      return;
    }
    const std::string target = line.substr(kPrefix.size());
    const std::string container_dir =
        rel_dir.empty() ? std::string(kContainerWorkspace)
                        : std::string(kContainerWorkspace) + "/" + rel_dir;
    const fs::path host_gitdir = fs::weakly_canonical(
        fs::path(target).is_absolute() ? fs::path(target) : gitfile.parent_path() / target);
    const std::string container_gitdir = normalize_container_path(
        fs::path(target).is_absolute() ? target : container_dir + "/" + target);
    if (!looks_like_git_dir(host_gitdir)) {
      result_.warnings.push_back(gitfile.string() + ": " + host_gitdir.string() +
                                 " is not a git directory, not mounted");
      return;
    }
    // Worktrees keep objects and refs in the common dir ("commondir" file,
    // relative to the gitdir); git status needs both.
    std::ifstream common_in(host_gitdir / "commondir");
    std::string common;
    if (std::getline(common_in, common) && !trim(common).empty()) {
      common = trim(common);
      const bool abs = fs::path(common).is_absolute();
      add_git_mount(fs::weakly_canonical(abs ? fs::path(common) : host_gitdir / common),
                    normalize_container_path(abs ? common : container_gitdir + "/" + common));
    }
    add_git_mount(host_gitdir, container_gitdir);
  }

  void add_git_mount(const fs::path& host, const std::string& container) {
    if (within(container, kContainerWorkspace)) return;  // visible through the workspace
    for (const ExtraMount& m : result_.git_dirs) {
      if (within(container, m.container)) return;  // already covered by a parent mount
    }
    if (forbidden_container_target(container)) {
      result_.warnings.push_back("git directory " + host.string() + " would be mounted at " +
                                 container + ", a system path; not mounted");
      return;
    }
    result_.git_dirs.push_back({host, container});
  }

  const fs::path& root_;
  const std::vector<Pattern>& ignore_;
  const std::vector<Pattern>& readonly_;
  ScanResult result_;
};

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

ScanResult scan_workspace(const fs::path& root, const std::vector<Pattern>& ignore,
                          const std::vector<Pattern>& readonly) {
  return Scanner(root, ignore, readonly).run();
}

}  // namespace cagent::launcher::host
