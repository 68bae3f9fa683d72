// Git repositories a session created: the pure diff as a table, the
// warning's bounds and escaping, and the start scan against the end walk on
// a real tree.
#include <doctest/doctest.h>

#include <optional>
#include <random>

#include <sys/stat.h>
#include <unistd.h>

#include "launcher/host/git_markers.hpp"
#include "launcher/host/paths.hpp"
#include "launcher/host/scan.hpp"
#include "tests/unit/launcher/test_util.hpp"

using namespace cagent::launcher::host;
using cagent::launcher::host::test::TempDir;
namespace fs = std::filesystem;
using Kind = GitMarker::Kind;

namespace {

std::vector<std::string> relatives(const std::vector<GitMarker>& markers) {
  std::vector<std::string> out;
  for (const GitMarker& m : markers) out.push_back(m.relative);
  return out;
}

// A directory git takes for a repository of its own.
void make_git_dir(const TempDir& t, const std::string& rel) {
  t.file(rel + "/HEAD", "ref: refs/heads/main\n");
  t.dir(rel + "/objects");
  t.dir(rel + "/refs/heads");
}

}  // namespace

TEST_CASE("git markers: the diff names what is new or replaced, nothing that was there") {
  const GitMarker root_git{".git", Kind::git_dir, "fh1:01"};
  const GitMarker sub_file{"sub/.git", Kind::git_file, "fh1:02"};
  struct Row {
    const char* name;
    std::vector<GitMarker> before, after;
    std::vector<std::string> want;
  };
  const std::vector<Row> rows = {
      {"nothing changed", {root_git, sub_file}, {root_git, sub_file}, {}},
      {"none before, none after", {}, {}, {}},
      {"git init vendor/lib", {root_git}, {root_git, {"vendor/lib/.git", Kind::git_dir, "fh1:03"}},
       {"vendor/lib/.git"}},
      {"a planted .git file", {root_git}, {root_git, {"x/.git", Kind::git_file, "fh1:04"}}, {"x/.git"}},
      {"a bare repository", {}, {{"tools", Kind::bare_repository, "fh1:05"}}, {"tools"}},
      {"a .git removed: nothing to name", {root_git, sub_file}, {root_git}, {}},
      {"replaced at the same path (another inode)", {sub_file}, {{"sub/.git", Kind::git_file, "fh1:99"}},
       {"sub/.git"}},
      {"a .git file turned into a directory", {sub_file}, {{"sub/.git", Kind::git_dir, "fh1:02"}}, {"sub/.git"}},
  };
  for (const Row& row : rows) {
    CAPTURE(row.name);
    CHECK(relatives(new_git_markers(row.before, row.after)) == row.want);
  }
}

TEST_CASE("git markers: a git directory by git's own test, on the names alone") {
  struct Row {
    std::vector<const char*> names;
    std::optional<Kind> want;
  };
  const std::vector<Row> rows = {
      {{"HEAD", "objects", "refs"}, Kind::bare_repository},
      {{"HEAD", "objects", "refs", "config", "hooks"}, Kind::bare_repository},
      // A worktree's private git directory: objects and refs are its
      // commondir's (git reads config and hooks from there too).
      {{"HEAD", "commondir"}, Kind::linked_git_dir},
      {{"HEAD", "commondir", "objects", "refs"}, Kind::linked_git_dir},
      {{"HEAD", "objects"}, std::nullopt},
      {{"HEAD", "refs"}, std::nullopt},
      {{"objects", "refs", "commondir", "config"}, std::nullopt},  // no HEAD
      {{"HEAD"}, std::nullopt},
      {{"head", "Objects", "refs", "commondir."}, std::nullopt},
      {{}, std::nullopt},
  };
  for (const Row& row : rows) {
    GitDirNames names;
    std::string shown;
    for (const char* n : row.names) {
      names.see(n);
      shown += std::string(n) + " ";
    }
    CAPTURE(shown);
    CHECK(names.kind() == row.want);
  }
}

TEST_CASE("git markers: the warning says why, escapes names and is bounded") {
  CHECK(describe_new_git_markers({}, {}, 3).empty());
  const std::vector<std::string> one = describe_new_git_markers({{"vendor/lib/.git", Kind::git_dir, ""}}, {}, 3);
  REQUIRE(one.size() == 2);
  CHECK(one[0].find("a git repository") != std::string::npos);
  CHECK(one[0].find("core.fsmonitor") != std::string::npos);
  CHECK(one[0].find("shell prompt") != std::string::npos);
  CHECK(one[1] == "  vendor/lib/.git (a new .git directory)");

  std::vector<GitMarker> many;
  for (int i = 0; i < 5; ++i) many.push_back({"r" + std::to_string(i) + "/.git", Kind::git_dir, ""});
  many.push_back({"\x1b]0;x\x07/.git", Kind::git_file, ""});
  many.push_back({"", Kind::bare_repository, ""});
  const std::vector<std::string> lines = describe_new_git_markers(many, {"locked\n"}, 3);
  REQUIRE(lines.size() == 6);
  CHECK(lines[0].find("created 7 git repositories") != std::string::npos);
  CHECK(lines[3] == "  r2/.git (a new .git directory)");
  CHECK(lines[4] == "  … and 4 more");
  CHECK(lines[5].find("could not look for new git repositories in locked\\n") != std::string::npos);
  const std::vector<std::string> odd = describe_new_git_markers({many[5], many[6]}, {}, 10);
  CHECK(odd[1] == "  \\x1b]0;x\\x07/.git (a new .git file: it sends git to the directory it names)");
  CHECK(odd[2].rfind("  . (git takes it for a bare repository", 0) == 0);
  const std::vector<std::string> linked = describe_new_git_markers({{"src", Kind::linked_git_dir, ""}}, {}, 10);
  REQUIRE(linked.size() == 2);
  CHECK(linked[1].rfind("  src (git takes it for a repository: HEAD and commondir", 0) == 0);
}

TEST_CASE("git markers: the start scan records them, the end walk finds what the session added") {
  TempDir t;
  const fs::path ws = t.dir("ws");
  make_git_dir(t, "ws/.git");          // the workspace's own repository
  t.file("ws/wt/.git", "gitdir: /elsewhere\n");  // a worktree's .git file
  make_git_dir(t, "ws/mirror.git");    // a bare repository the user keeps
  make_git_dir(t, "ws/.git/modules/m");  // inside .git: part of that repository
  t.dir("ws/secrets");
  t.dir("ws/docs");
  const ScanResult start = scan_workspace(ws, {Pattern::parse("secrets/")}, {Pattern::parse("docs/")});
  CHECK(relatives(start.git_markers) == std::vector<std::string>{".git", "mirror.git", "wt/.git"});

  // Nothing happened: nothing to name.
  const SkipDirs skip = unwritable_directories(ws, start);
  CHECK(skip.contains("secrets"));
  CHECK(skip.contains("docs"));
  GitMarkerWalk end = find_git_markers(ws, skip);
  CHECK(new_git_markers(start.git_markers, end.markers).empty());
  CHECK(end.unchecked.empty());

  // The session: git init vendor/lib, a planted .git file and symlink, a
  // bare repository, and one in a directory it made unreadable.
  make_git_dir(t, "ws/vendor/lib/.git");
  t.file("ws/a/b/.git", "gitdir: ../../.git/modules/evil\n");
  t.dir("ws/c");
  fs::create_symlink("../.git", ws / "c" / ".git");
  make_git_dir(t, "ws/tools");
  // A linked git directory: HEAD and a commondir naming a directory with
  // objects/, refs/ and the config git then runs (no HEAD of its own).
  t.file("ws/src/HEAD", "ref: refs/heads/main\n");
  t.file("ws/src/commondir", "../.cache/c\n");
  t.dir("ws/.cache/c/objects");
  t.dir("ws/.cache/c/refs");
  t.file("ws/.cache/c/config", "[core]\n\tpager = touch /tmp/pwned\n");
  make_git_dir(t, "ws/hid/.git");
  REQUIRE(::chmod((ws / "hid").c_str(), 0) == 0);
  // What it could not have written is not walked: the hidden and read-only
  // directories (here written by the test, to show they are skipped).
  make_git_dir(t, "ws/secrets/x/.git");
  end = find_git_markers(ws, skip);
  const std::vector<GitMarker> fresh = new_git_markers(start.git_markers, end.markers);
  if (::geteuid() == 0) {
    // root reads the unreadable directory anyway
    CHECK(relatives(fresh) ==
          std::vector<std::string>{"a/b/.git", "c/.git", "hid/.git", "src", "tools", "vendor/lib/.git"});
  } else {
    CHECK(relatives(fresh) == std::vector<std::string>{"a/b/.git", "c/.git", "src", "tools", "vendor/lib/.git"});
    CHECK(end.unchecked == std::vector<std::string>{"hid"});
  }
  REQUIRE(fresh.size() >= 5);
  CHECK(fresh[fresh.size() - 3].kind == Kind::linked_git_dir);
  CHECK(fresh[fresh.size() - 2].kind == Kind::bare_repository);
  CHECK(fresh[0].kind == Kind::git_file);
  CHECK(fresh[1].kind == Kind::git_symlink);
  CHECK(fresh.back().kind == Kind::git_dir);
  ::chmod((ws / "hid").c_str(), 0755);

  // A .git the session replaced at the same path (another inode) is new.
  fs::remove(ws / "wt" / ".git");
  t.file("ws/wt/.git", "gitdir: /elsewhere\n");
  end = find_git_markers(ws, skip);
  const auto replaced = relatives(new_git_markers(start.git_markers, end.markers));
  CHECK(std::find(replaced.begin(), replaced.end(), "wt/.git") != replaced.end());
}

TEST_CASE("git markers: a read-only directory the session replaced at its path is walked at the end") {
  // In the cage docs/ is read-only, but its parent is not: the agent moves
  // the parent aside and makes a new directory of the same name, with a
  // repository in it. Skipped by path, that repository went unnamed.
  TempDir t;
  const fs::path ws = t.dir("ws");
  t.dir("ws/p/docs");
  make_git_dir(t, "ws/p/docs/old/.git");  // there before; moved aside, named at its new path
  t.dir("ws/q/kept");
  const ScanResult start = scan_workspace(ws, {}, {Pattern::parse("p/docs/"), Pattern::parse("q/kept/")});
  const SkipDirs skip = unwritable_directories(ws, start);
  REQUIRE(skip.contains("p/docs"));
  REQUIRE(skip.contains("q/kept"));

  fs::rename(ws / "p", ws / "p-aside");
  make_git_dir(t, "ws/p/docs/.git");
  // The control: q/kept is the same directory, and what the test writes in
  // it (the session could not) is still passed over.
  make_git_dir(t, "ws/q/kept/inner/.git");
  const GitMarkerWalk end = find_git_markers(ws, skip);
  CHECK(relatives(new_git_markers(start.git_markers, end.markers)) ==
        std::vector<std::string>{"p-aside/docs/old/.git", "p/docs/.git"});
}

TEST_CASE("git markers: the end walk on several threads finds what the start scan finds, on generated trees") {
  // Large enough that both walks bring in their helper threads; each run
  // visits the directories in another order, the results must not show it.
  for (unsigned seed = 1; seed <= 3; ++seed) {
    CAPTURE(seed);
    TempDir t;
    const fs::path ws = t.dir("ws");
    std::mt19937 rng(seed);
    std::vector<std::string> dirs{""};
    for (int i = 0; i < 400; ++i) {
      const std::string& parent = dirs[rng() % dirs.size()];
      dirs.push_back((parent.empty() ? "" : parent + "/") + "d" + std::to_string(i));
      t.dir("ws/" + dirs.back());
    }
    for (int i = 0; i < 40; ++i) {
      const std::string at = "ws/" + dirs[1 + rng() % (dirs.size() - 1)];
      const unsigned kind = rng() % 4;
      if (kind == 3) {
        make_git_dir(t, at + "/bare" + std::to_string(i));
        continue;
      }
      std::error_code ec;
      if (fs::exists(fs::symlink_status(t / (at + "/.git"), ec))) continue;  // one .git per directory
      if (kind == 0) make_git_dir(t, at + "/.git");
      if (kind == 1) t.file(at + "/.git", "gitdir: /elsewhere\n");
      if (kind == 2) fs::create_symlink("../.git", t / (at + "/.git"));
    }
    const ScanResult start = scan_workspace(ws, {}, {});
    REQUIRE(start.git_markers.size() >= 20);
    const GitMarkerWalk end = find_git_markers(ws, unwritable_directories(ws, start));
    CHECK(end.markers == start.git_markers);
    CHECK(end.unchecked.empty());
  }
}
