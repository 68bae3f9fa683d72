#include <doctest/doctest.h>

#include <algorithm>
#include <functional>

#include <string>

#include "launcher/host/config.hpp"
#include "launcher/host/mount_plan.hpp"
#include "launcher/host/scan.hpp"
#include "tests/unit/launcher/test_util.hpp"

using namespace cagent::launcher::host;
using cagent::launcher::host::test::TempDir;
namespace fs = std::filesystem;

namespace {

std::vector<Pattern> patterns(std::initializer_list<const char*> texts) {
  std::vector<Pattern> out;
  for (const char* t : texts) out.push_back(Pattern::parse(t));
  return out;
}

// A plan rendered with stable names: WS = workspace, PH = placeholder dir.
std::vector<std::string> render(const MountPlan& plan, const fs::path& ws, const fs::path& ph) {
  std::vector<std::string> out;
  for (const Mount& m : plan.mounts) {
    std::string src = m.source.string();
    if (src.rfind(ph.string(), 0) == 0) {
      src = "PH" + src.substr(ph.string().size());
    } else if (src.rfind(ws.string(), 0) == 0) {
      src = "WS" + src.substr(ws.string().size());
    }
    out.push_back(src + " -> " + m.target + (m.readonly ? " ro" : " rw"));
  }
  return out;
}

}  // namespace

TEST_CASE("scan + plan: ignore wins, readonly descends, ignored dirs are not descended") {
  TempDir t;
  const fs::path ws = t.dir("ws");
  t.file("ws/.env");
  t.file("ws/app/.env.local");
  t.file("ws/app/main.py");
  t.file("ws/.git/HEAD", "ref: refs/heads/main\n");
  t.file("ws/.git/config");
  t.file("ws/.git/.env");  // ignore applies inside .git too (readonly does not)
  t.file("ws/docs/readme.md");
  t.file("ws/docs/private.key");   // ignore inside a readonly dir still hides it
  t.file("ws/secrets/a.txt");      // ignored dir: content hidden wholesale
  t.file("ws/secrets/.cagent.yaml");
  t.file("ws/.cagent.yaml", "domains: [x.example]\n");
  t.file("ws/my dir/with space.key");
  const ScanResult scan = scan_workspace(ws, patterns({".env", ".env.*", "*.key", "/secrets/"}),
                                         patterns({".git", ".cagent.yaml", "docs/"}));
  CHECK(scan.ignored == std::vector<ScannedPath>{{".env", false},
                                                  {".git/.env", false},
                                                  {"app/.env.local", false},
                                                  {"docs/private.key", false},
                                                  {"my dir/with space.key", false},
                                                  {"secrets", true}});
  CHECK(scan.readonly ==
        std::vector<ScannedPath>{{".cagent.yaml", false}, {".git", true}, {"docs", true}});
  const MountPlan plan = plan_mounts(scan, ws, "/ph");
  CHECK(render(plan, ws, "/ph") == std::vector<std::string>{
                                       "WS -> /workspace rw",
                                       "WS/.cagent.yaml -> /workspace/.cagent.yaml ro",
                                       "PH/empty-file -> /workspace/.env ro",
                                       "WS/.git -> /workspace/.git ro",
                                       "WS/docs -> /workspace/docs ro",
                                       "PH/empty-dir -> /workspace/secrets ro",
                                       "PH/empty-file -> /workspace/.git/.env ro",
                                       "PH/empty-file -> /workspace/app/.env.local ro",
                                       "PH/empty-file -> /workspace/docs/private.key ro",
                                       "PH/empty-file -> /workspace/my dir/with space.key ro",
                                   });
  CHECK(plan.needs_empty_file);
  CHECK(plan.needs_empty_dir);
}

TEST_CASE("scan: symlinks are never followed out of the workspace") {
  TempDir t;
  const fs::path ws = t.dir("ws");
  t.file("outside/secret.txt", "top secret");
  t.dir("outside/dir");
  t.file("ws/config/prod.env", "PASSWORD=1");
  fs::create_symlink(t / "outside/secret.txt", ws / "leak.key");   // ignored name, target outside
  fs::create_symlink(t / "outside/dir", ws / "outdir");            // not matched, dir outside
  fs::create_symlink("config/prod.env", ws / ".env");              // ignored name, target inside
  fs::create_symlink(t / "outside", ws / "docs");                  // readonly name, target outside
  const ScanResult scan =
      scan_workspace(ws, patterns({".env", "*.key"}), patterns({"docs"}));
  // The link's target inside the workspace is hidden instead of the link;
  // nothing outside is ever mounted or walked.
  CHECK(scan.ignored == std::vector<ScannedPath>{{"config/prod.env", false}});
  CHECK(scan.readonly.empty());
  const MountPlan plan = plan_mounts(scan, ws, "/ph");
  for (const Mount& m : plan.mounts) {
    CAPTURE(m.source);
    CHECK(m.source.string().find((t / "outside").string()) == std::string::npos);
  }
  CHECK(render(plan, ws, "/ph") == std::vector<std::string>{
                                       "WS -> /workspace rw",
                                       "PH/empty-file -> /workspace/config/prod.env ro"});
}

// A main repository as git creates it, at `rel` inside `t`.
void make_repo(const TempDir& t, const std::string& rel) {
  t.file(rel + "/HEAD", "ref: refs/heads/main\n");
  t.dir(rel + "/objects");
  t.dir(rel + "/refs/heads");
  t.file(rel + "/config", "[core]\n\tbare = false\n");
}

// A worktree of repository git dir `repo_git` checked out at `checkout`, as
// `git worktree add` leaves it: the private gitdir with its back-pointer.
void make_worktree(const TempDir& t, const std::string& repo_git, const std::string& name,
                   const std::string& checkout) {
  const std::string gd = repo_git + "/worktrees/" + name;
  t.file(gd + "/HEAD", "ref: refs/heads/" + name + "\n");
  t.file(gd + "/commondir", "../..\n");
  t.file(gd + "/gitdir", (t / checkout).string() + "/.git\n");
  t.file(checkout + "/.git", "gitdir: " + (t / gd).string() + "\n");
}

TEST_CASE("scan: .git file (worktree) mounts the gitdir and its commondir read-only") {
  TempDir t;
  make_repo(t, "repo/.git");
  make_worktree(t, "repo/.git", "wt", "wt");
  const fs::path ws = t / "wt";
  const ScanResult scan = scan_workspace(ws, {}, patterns({".git"}));
  CHECK(scan.readonly == std::vector<ScannedPath>{{".git", false}});
  CHECK(scan.warnings.empty());
  REQUIRE(scan.git_dirs.size() == 1);  // the gitdir lies inside the commondir mount
  CHECK(scan.git_dirs[0].host == t / "repo/.git");
  CHECK(scan.git_dirs[0].container == (t / "repo/.git").string());
  const MountPlan plan = plan_mounts(scan, ws, "/ph");
  CHECK(plan.mounts.back() == Mount{t / "repo/.git", (t / "repo/.git").string(), true});
}

TEST_CASE("scan: planted .git files never mount a directory outside the workspace") {
  // Each case: a workspace ws (itself a real repository) and, outside it,
  // things worth stealing: another repository, a worktree of it, a
  // password store. The agent wrote the .git files inside ws.
  struct Case {
    const char* name;
    std::function<void(const TempDir&)> plant;
  };
  const Case cases[] = {
      {"gitdir: another repository's .git (relative)",
       [](const TempDir& t) { t.file("ws/sub/.git", "gitdir: ../../other/.git\n"); }},
      {"gitdir: another repository's .git (absolute)",
       [](const TempDir& t) { t.file("ws/.git-planted/x/.git", "gitdir: " + (t / "other/.git").string() + "\n"); }},
      {"gitdir: a password store's .git",
       [](const TempDir& t) { t.file("ws/a/b/.git", "gitdir: " + (t / "home/.password-store/.git").string()); }},
      {"gitdir: a real worktree gitdir of another checkout (back-pointer elsewhere)",
       [](const TempDir& t) {
         t.file("ws/sub/.git", "gitdir: " + (t / "other/.git/worktrees/owt").string() + "\n");
       }},
      {"gitdir: another repository's module dir whose core.worktree is elsewhere",
       [](const TempDir& t) { t.file("ws/sub/.git", "gitdir: ../../other/.git/modules/m\n"); }},
      {"gitdir: a fake gitdir in the workspace whose commondir points outside",
       [](const TempDir& t) {
         t.file("ws/fake/HEAD", "ref: refs/heads/main\n");
         t.file("ws/fake/commondir", (t / "home/.password-store/.git").string() + "\n");
         t.file("ws/sub/.git", "gitdir: ../fake\n");
       }},
      {"gitdir: a fake gitdir in the workspace, relative commondir out of it",
       [](const TempDir& t) {
         t.file("ws/fake/HEAD", "ref: refs/heads/main\n");
         t.file("ws/fake/commondir", "../../other/.git\n");
         t.file("ws/sub/.git", "gitdir: ../fake\n");
       }},
      {"gitdir: a fake worktree dir outside made to point back (commondir elsewhere)",
       [](const TempDir& t) {
         // Even a gitdir that names this .git file is refused when it is
         // not <real git dir>/worktrees/<name>.
         t.file("loose/HEAD", "ref: refs/heads/main\n");
         t.file("loose/commondir", "../other/.git\n");
         t.file("loose/gitdir", (t / "ws/sub/.git").string() + "\n");
         t.file("ws/sub/.git", "gitdir: ../../loose\n");
       }},
  };
  for (const Case& c : cases) {
    CAPTURE(c.name);
    TempDir t;
    make_repo(t, "ws/.git");
    make_repo(t, "other/.git");
    make_worktree(t, "other/.git", "owt", "other-wt");
    make_repo(t, "other/.git/modules/m");
    t.file("other/.git/modules/m/config", "[core]\n\tworktree = ../../../m\n");
    make_repo(t, "home/.password-store/.git");
    c.plant(t);
    const ScanResult scan = scan_workspace(t / "ws", {}, patterns({".git"}));
    CHECK(scan.git_dirs.empty());
    REQUIRE(scan.warnings.size() == 1);
    CHECK(scan.warnings[0].find("not mounted") != std::string::npos);
    const MountPlan plan = plan_mounts(scan, t / "ws", "/ph");
    for (const Mount& m : plan.mounts) {
      CAPTURE(m.source);
      CHECK(m.source.string().rfind((t / "ws").string(), 0) == 0);
    }
  }
}

TEST_CASE("scan: a worktree forged inside the workspace cannot remount it without placeholders") {
  // Everything git would check is agent-writable here: the workspace root
  // posing as the repository, a worktrees/ entry pointing back. Mounting
  // the "commondir" (the workspace) elsewhere would show .env unhidden.
  TempDir t;
  make_repo(t, "ws");
  t.file("ws/.env", "SECRET=1");
  t.file("ws/worktrees/x/HEAD", "ref: refs/heads/main\n");
  t.file("ws/worktrees/x/commondir", "../..\n");
  t.file("ws/worktrees/x/gitdir", (t / "ws/sub/.git").string() + "\n");
  t.file("ws/sub/.git", "gitdir: " + (t / "ws/worktrees/x").string() + "\n");
  const ScanResult scan = scan_workspace(t / "ws", patterns({".env"}), {});
  CHECK(scan.git_dirs.empty());
  CHECK_FALSE(scan.warnings.empty());
}

TEST_CASE("scan: a submodule checked out as the workspace mounts its module git dir") {
  TempDir t;
  make_repo(t, "super/.git");
  make_repo(t, "super/.git/modules/sub");
  t.file("super/.git/modules/sub/config", "[core]\n\trepositoryformatversion = 0\n\tworktree = ../../../sub\n");
  t.file("super/sub/.git", "gitdir: ../.git/modules/sub\n");
  t.file("super/sub/file.txt");
  const fs::path ws = t / "super/sub";
  const ScanResult scan = scan_workspace(ws, {}, patterns({".git"}));
  CHECK(scan.warnings.empty());
  REQUIRE(scan.git_dirs.size() == 1);
  CHECK(scan.git_dirs[0].host == t / "super/.git/modules/sub");
  CHECK(scan.git_dirs[0].container == "/.git/modules/sub");
  // The same module dir claimed by a .git file in another directory is refused.
  t.file("super/sub/inner/.git", "gitdir: ../../.git/modules/sub\n");
  const ScanResult scan2 = scan_workspace(ws, {}, patterns({".git"}));
  CHECK(scan2.git_dirs.size() == 1);
  CHECK(scan2.warnings.size() == 1);
}

TEST_CASE("scan: submodule .git file pointing inside the workspace needs no extra mount") {
  TempDir t;
  const fs::path ws = t.dir("ws");
  t.file("ws/.git/HEAD", "ref: refs/heads/main\n");
  t.dir("ws/.git/objects");
  t.file("ws/.git/modules/sub/HEAD", "x\n");
  t.dir("ws/.git/modules/sub/objects");
  t.file("ws/sub/.git", "gitdir: ../.git/modules/sub\n");
  const ScanResult scan = scan_workspace(ws, {}, patterns({".git"}));
  CHECK(scan.git_dirs.empty());
  CHECK(scan.readonly == std::vector<ScannedPath>{{".git", true}, {"sub/.git", false}});
}

// The directories of `scan.readonly`.
std::vector<std::string> readonly_dirs(const ScanResult& scan) {
  std::vector<std::string> out;
  for (const ScannedPath& p : scan.readonly) {
    if (p.directory) out.push_back(p.relative);
  }
  return out;
}

TEST_CASE("scan: with .git read-only, every git directory in the workspace is, whatever its name") {
  // Git directories not named .git: git on the host runs their config
  // (core.fsmonitor, core.pager) and hooks, so the agent must not write
  // them. Each row: a layout, and the directories it must make read-only.
  struct Row {
    const char* name;
    std::function<void(const TempDir&)> make;
    std::vector<std::string> readonly;  // directories, in scan order
    std::vector<std::string> mounted;   // git_dirs' host paths, relative to t
  };
  const std::vector<Row> rows = {
      {"bare repository and worktrees: .git says 'gitdir: ./.bare'",
       [](const TempDir& t) {
         make_repo(t, "ws/.bare");
         t.file("ws/.git", "gitdir: ./.bare\n");
         make_worktree(t, "ws/.bare", "main", "ws/main");
         t.file("ws/main/file.txt");
       },
       {".bare"},
       {"ws/.bare"}},  // for git in the cage: main/.git names it by its host path
      {"git init --separate-git-dir \"$PWD/.gitdata\" (an absolute gitdir)",
       [](const TempDir& t) {
         make_repo(t, "ws/.gitdata");
         t.file("ws/.git", "gitdir: " + (t / "ws/.gitdata").string() + "\n");
       },
       {".gitdata"},
       {"ws/.gitdata"}},
      {"a .git file naming a linked git dir whose commondir is in the workspace",
       [](const TempDir& t) {
         t.file("ws/gd/HEAD", "ref: refs/heads/main\n");
         t.file("ws/gd/commondir", "../cd\n");
         t.dir("ws/cd/objects");
         t.dir("ws/cd/refs");
         t.file("ws/cd/config", "[core]\n\tfsmonitor = x\n");
         t.file("ws/.git", "gitdir: gd\n");
       },
       {"cd", "gd"},
       {}},
      {"a .git symlink to a linked git dir",
       [](const TempDir& t) {
         t.file("ws/gd/HEAD", "ref: refs/heads/main\n");
         t.file("ws/gd/commondir", (t / "ws/cd").string() + "\n");
         t.dir("ws/cd/objects");
         t.dir("ws/cd/refs");
         fs::create_symlink("gd", t / "ws/.git");
       },
       {"gd", "cd"},  // the target by the pattern on the link's name, then its commondir
       {}},
      {"a linked git dir whose commondir is a symlink (git follows it)",
       [](const TempDir& t) {
         t.file("ws/gd/HEAD", "ref: refs/heads/main\n");
         t.file("ws/cd.txt", "../cd\n");
         fs::create_symlink("../cd.txt", t / "ws/gd/commondir");
         t.dir("ws/cd/objects");
         t.dir("ws/cd/refs");
         t.file("ws/cd/config", "[core]\n\tfsmonitor = x\n");
         t.file("ws/.git", "gitdir: gd\n");
       },
       {"cd", "gd"},
       {}},
      {"a commondir naming a directory whose name ends in a space (git keeps it)",
       [](const TempDir& t) {
         t.file("ws/gd/HEAD", "ref: refs/heads/main\n");
         t.file("ws/gd/commondir", "../c \n");
         t.dir("ws/c /objects");
         t.dir("ws/c /refs");
         t.file("ws/c /config", "[core]\n\tfsmonitor = x\n");
         t.file("ws/.git", "gitdir: gd\n");
       },
       {"c ", "gd"},
       {}},
      {"a bare repository anywhere", [](const TempDir& t) { make_repo(t, "ws/vendor/mirror.git"); },
       {"vendor/mirror.git"}, {}},
      {"a linked git dir (HEAD and commondir) whose common dir has no HEAD",
       [](const TempDir& t) {
         t.file("ws/lib/HEAD", "ref: refs/heads/main\n");
         t.file("ws/lib/commondir", "../.cache/c\n");
         t.dir("ws/.cache/c/objects");
         t.dir("ws/.cache/c/refs");
         t.file("ws/.cache/c/config", "[core]\n\tpager = x\n");
       },
       {".cache/c", "lib"},
       {}},
  };
  for (const Row& row : rows) {
    const std::string name = row.name;
    CAPTURE(name);
    TempDir t;
    t.file("ws/src/main.c");
    row.make(t);
    const fs::path ws = t / "ws";
    const ScanResult scan = scan_workspace(ws, {}, patterns({".git", ".envrc"}));
    std::string got;
    for (const std::string& d : readonly_dirs(scan)) got += d + " ";
    CAPTURE(got);
    CHECK(readonly_dirs(scan) == row.readonly);
    CHECK(scan.warnings.empty());
    std::vector<std::string> mounted;
    for (const ExtraMount& m : scan.git_dirs) {
      mounted.push_back(m.host.string().substr(t.path().string().size() + 1));
      CHECK(m.container == m.host.string());  // where the .git file says
    }
    CHECK(mounted == row.mounted);
    // In the plan: read-only in the workspace, the rest of it writable.
    const std::vector<std::string> plan = render(plan_mounts(scan, ws, "/ph"), ws, "/ph");
    CHECK(plan.front() == "WS -> /workspace rw");
    for (const std::string& d : row.readonly) {
      CHECK(std::find(plan.begin(), plan.end(), "WS/" + d + " -> /workspace/" + d + " ro") != plan.end());
    }
    CHECK(std::none_of(plan.begin(), plan.end(),
                       [](const std::string& m) { return m.find("-> /workspace/src") != std::string::npos; }));

    // The control: a user who took .git out of readonly keeps a writable
    // history, in every layout.
    const ScanResult writable = scan_workspace(ws, {}, patterns({".envrc"}));
    CHECK(readonly_dirs(writable).empty());
  }
}

TEST_CASE("scan: protecting git directories follows the readonly patterns, and only git directories") {
  struct Row {
    std::vector<const char*> readonly;
    bool protects;
  };
  const std::vector<Row> rows = {
      {{".git"}, true},          {{".git/"}, true},     {{"/.git"}, true}, {{"**/.git"}, true},
      {{"vendor/", ".git"}, true}, {{}, false},        {{".envrc"}, false}, {{"vendor/.git"}, false},
      {{".gitignore"}, false},
  };
  for (const Row& row : rows) {
    std::vector<Pattern> ps;
    for (const char* p : row.readonly) ps.push_back(Pattern::parse(p));
    CAPTURE(row.readonly.size());
    CHECK(protects_git_dirs(ps) == row.protects);
  }

  TempDir t;
  const fs::path ws = t.dir("ws");
  // A .git directory the pattern's anchoring misses is read-only all the same.
  make_repo(t, "ws/vendor/lib/.git");
  // Not git directories (git would refuse them): left writable, also when a
  // planted .git file names them.
  t.file("ws/notes/HEAD", "x\n");
  t.dir("ws/notes/objects");
  t.dir("ws/build/objects");
  t.dir("ws/build/refs");
  t.file("ws/sub/.git", "gitdir: ../notes\n");
  const ScanResult scan = scan_workspace(ws, {}, patterns({"/.git"}));
  CHECK(scan.readonly == std::vector<ScannedPath>{{"sub/.git", false}, {"vendor/lib/.git", true}});
}

TEST_CASE("scan: a submodule-like gitdir whose objects is a symlink loop refuses the .git file, the scan goes on") {
  TempDir t;
  t.file("ws/fake/HEAD", "ref: refs/heads/main\n");
  t.dir("ws/fake/objects");
  t.dir("ws/fake/refs");
  t.file("ws/fake/modules/m/HEAD", "ref: refs/heads/main\n");
  t.dir("ws/fake/modules/m/refs");
  fs::create_symlink("objects", t / "ws/fake/modules/m/objects");
  t.file("ws/.env", "SECRET=1\n");
  const fs::path ws = t / "ws";
  // The control: without a .git file naming it, nothing to refuse.
  ScanResult scan = scan_workspace(ws, patterns({".env"}), patterns({".git"}));
  CHECK(scan.warnings.empty());
  // Reached by a path that leaves the workspace and comes back in (the
  // cage would see it outside /workspace): it was a "filesystem error"
  // that ended every start.
  t.file("ws/sub/.git", "gitdir: ../../ws/fake/modules/m\n");
  REQUIRE_NOTHROW(scan = scan_workspace(ws, patterns({".env"}), patterns({".git"})));
  REQUIRE(scan.warnings.size() == 1);
  CHECK(scan.warnings[0].find("sub/.git") != std::string::npos);
  CHECK(std::any_of(scan.ignored.begin(), scan.ignored.end(), [](const ScannedPath& p) { return p.relative == ".env"; }));
}

TEST_CASE("scan: a workspace that is itself a git directory is mounted read-only whole") {
  TempDir t;
  make_repo(t, "ws");
  t.file("ws/hooks/post-checkout", "#!/bin/sh\n");
  t.file("ws/.env", "SECRET=1");
  const fs::path ws = t / "ws";
  const ScanResult scan = scan_workspace(ws, patterns({".env"}), patterns({".git"}));
  CHECK(render(plan_mounts(scan, ws, "/ph"), ws, "/ph") ==
        std::vector<std::string>{"WS -> /workspace ro", "PH/empty-file -> /workspace/.env ro"});
  // Control: without .git in readonly it is writable.
  const ScanResult writable = scan_workspace(ws, patterns({".env"}), {});
  CHECK(render(plan_mounts(writable, ws, "/ph"), ws, "/ph").front() == "WS -> /workspace rw");
}

TEST_CASE("scan: a hostile .git file cannot mount system paths or non-git dirs") {
  TempDir t;
  const fs::path ws = t.dir("ws");
  t.file("ws/.git", "gitdir: /etc\n");
  const ScanResult scan = scan_workspace(ws, {}, patterns({".git"}));
  CHECK(scan.git_dirs.empty());
  CHECK_FALSE(scan.warnings.empty());
  TempDir t2;
  const fs::path ws2 = t2.dir("ws");
  t2.file("notgit/file");
  t2.file("ws/.git", "gitdir: " + (t2 / "notgit").string() + "\n");
  CHECK(scan_workspace(ws2, {}, patterns({".git"})).git_dirs.empty());
}

// Runs scan_workspace as the user who runs cagent would: when the tests run
// as root (which reads through any permission bits), in a child process
// switched to uid/gid 65534. Returns the ignored paths ("rel/" for
// directories), then "warnings=N", or "error: ..." if the scan threw.
std::vector<std::string> scan_as_user(const fs::path& ws, const std::vector<Pattern>& ignore) {
  const std::string text = cagent::launcher::host::test::run_unprivileged([&] {
    std::string out;
    try {
      const ScanResult scan = scan_workspace(ws, ignore, {});
      for (const ScannedPath& p : scan.ignored) out += p.relative + (p.directory ? "/" : "") + "\n";
      out += "warnings=" + std::to_string(scan.warnings.size()) + "\n";
    } catch (const std::exception& e) {
      out += std::string("error: ") + e.what() + "\n";
    }
    return out;
  });
  std::vector<std::string> out;
  for (std::size_t pos = 0, eol; (eol = text.find('\n', pos)) != std::string::npos; pos = eol + 1) {
    out.push_back(text.substr(pos, eol - pos));
  }
  return out;
}

TEST_CASE("scan fails closed: a directory the user cannot read is hidden whole") {
  TempDir t;
  fs::permissions(t.path(), fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                                fs::perms::others_read | fs::perms::others_exec);
  const fs::path ws = t.dir("ws");
  t.file("ws/open/readme.md");
  t.file("ws/locked/.env", "SECRET=1");          // ignored, but the walk cannot see it
  t.file("ws/listonly/deep/.env", "SECRET=2");   // listable, not searchable
  t.file("ws/searchonly/.env", "SECRET=3");      // searchable, not listable
  t.file("ws/fine/.env", "SECRET=4");
  fs::permissions(ws / "locked", fs::perms::none);
  fs::permissions(ws / "listonly", fs::perms::owner_read | fs::perms::group_read | fs::perms::others_read);
  fs::permissions(ws / "searchonly", fs::perms::owner_exec | fs::perms::group_exec | fs::perms::others_exec);
  if (::geteuid() == 0) {
    // The child scanning as uid 65534 must own nothing and be "others".
    for (const char* d : {"ws", "ws/open", "ws/fine"}) {
      fs::permissions(t / d, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                                 fs::perms::others_read | fs::perms::others_exec);
    }
  }
  const std::vector<std::string> got = scan_as_user(ws, patterns({".env"}));
  // Skipped with a warning and mounted as they are, the unreadable
  // directories would give the cage (running as the workspace owner, who
  // can chmod them back) every .env inside: they are hidden whole.
  CHECK(got == std::vector<std::string>{"fine/.env", "listonly/", "locked/", "searchonly/",
                                        "warnings=3"});
  // And the plan shadows them with the empty directory.
  ScanResult scan;
  scan.ignored = {{"locked", true}};
  CHECK(render(plan_mounts(scan, ws, "/ph"), ws, "/ph") ==
        std::vector<std::string>{"WS -> /workspace rw", "PH/empty-dir -> /workspace/locked ro"});
}

TEST_CASE("scan fails closed: an unreadable workspace root is an error, not an empty scan") {
  TempDir t;
  fs::permissions(t.path(), fs::perms::owner_all | fs::perms::others_read | fs::perms::others_exec);
  const fs::path ws = t.dir("ws");
  t.file("ws/.env");
  fs::permissions(ws, fs::perms::owner_read | fs::perms::others_read);  // listable, no search
  const std::vector<std::string> got = scan_as_user(ws, patterns({".env"}));
  REQUIRE(got.size() == 1);
  CHECK(got[0].rfind("error: cannot scan the workspace", 0) == 0);
}

TEST_CASE("scan fails closed: directories too deep to scan are hidden, not walked") {
  TempDir t;
  const fs::path ws = t.dir("ws");
  std::string rel = "deep";
  while ((ws / rel).native().size() <= kMaxScanPath + 20) rel += "/0123456789";
  t.file("ws/" + rel + "/id_rsa", "PRIVATE KEY");
  t.file("ws/shallow.txt");
  const ScanResult scan = scan_workspace(ws, patterns({"/nothing"}), {});
  // Without patterns matching id_rsa, the only way it stays out of the cage
  // is the depth guard hiding one of its ancestors.
  REQUIRE(scan.ignored.size() == 1);
  CHECK(scan.ignored[0].directory);
  CHECK(rel.rfind(scan.ignored[0].relative + "/", 0) == 0);
  CHECK((ws / scan.ignored[0].relative).native().size() > kMaxScanPath);
  REQUIRE(scan.warnings.size() == 1);
  CHECK(scan.warnings[0].find("hidden") != std::string::npos);
}

TEST_CASE("scan: ancestors of a path hidden by an ancestor-naming pattern are pinned") {
  TempDir t;
  const fs::path ws = t.dir("ws");
  t.file("ws/secrets/key.pem");
  t.file("ws/config/prod/db.key");
  t.file("ws/docs/private/notes.txt");
  t.file("ws/app/.env");      // basename pattern: the file keeps its name, no pin
  t.file("ws/lib/x/id_rsa");  // matched by a basename and an anchored pattern: no pin
  const ScanResult scan =
      scan_workspace(ws, patterns({"/secrets/key.pem", "config/**/*.key", "docs/private/", ".env",
                                   "id_rsa", "lib/x/id_rsa"}),
                     patterns({"docs/"}));
  CHECK(scan.pinned == std::vector<std::string>{"config", "config/prod", "docs", "secrets"});
  const MountPlan plan = plan_mounts(scan, ws, "/ph");
  // A pin is a self bind mount (a mount point cannot be renamed: EBUSY); it
  // keeps read-only what a readonly pattern made read-only.
  CHECK(render(plan, ws, "/ph") == std::vector<std::string>{
                                       "WS -> /workspace rw",
                                       "WS/config -> /workspace/config rw",
                                       "WS/docs -> /workspace/docs ro",
                                       "WS/secrets -> /workspace/secrets rw",
                                       "PH/empty-file -> /workspace/app/.env ro",
                                       "WS/config/prod -> /workspace/config/prod rw",
                                       "PH/empty-dir -> /workspace/docs/private ro",
                                       "PH/empty-file -> /workspace/secrets/key.pem ro",
                                       "PH/empty-file -> /workspace/config/prod/db.key ro",
                                       "PH/empty-file -> /workspace/lib/x/id_rsa ro",
                                   });
}

TEST_CASE("scan: a hidden file moved into a .git directory stays hidden") {
  // The agent cannot move app/.env (a mount point) but can move app: into a
  // nested .git directory, or rename it to .git. Readonly patterns are not
  // applied in there; ignore patterns must be.
  TempDir t;
  const fs::path ws = t.dir("ws");
  make_repo(t, "ws/.git");
  t.file("ws/sub/.git/app/.env", "SECRET=1");
  t.file("ws/other/.git/deep/server.key", "KEY");
  const ScanResult scan = scan_workspace(ws, patterns({".env", "*.key"}), patterns({".git"}));
  CHECK(scan.ignored == std::vector<ScannedPath>{{"other/.git/deep/server.key", false},
                                                  {"sub/.git/app/.env", false}});
  CHECK(scan.readonly == std::vector<ScannedPath>{{".git", true}, {"other/.git", true},
                                                   {"sub/.git", true}});
}

TEST_CASE("scan: warnings never carry raw control characters from workspace names") {
  TempDir t;
  const fs::path ws = t.dir("ws");
  t.file("ws/evil\x1b]0;owned\x07\n/.git", "gitdir: /tmp/\x1b[2Jx\r\n");
  t.file("ws/bad\xc2\x9b" "1m/.git", "not a gitfile\x1b[5m");
  const ScanResult scan = scan_workspace(ws, {}, {});
  REQUIRE(scan.warnings.size() == 2);
  for (const std::string& w : scan.warnings) {
    CAPTURE(w);
    for (char c : w) CHECK(static_cast<unsigned char>(c) >= 0x20);
    CHECK(w.find("\xc2\x9b") == std::string::npos);
  }
  CHECK(scan.warnings[0].find("bad\\u009b1m/.git") != std::string::npos);
  CHECK(scan.warnings[1].find("evil\\x1b]0;owned\\x07\\n/.git") != std::string::npos);
}

TEST_CASE("plan: paths below an ignored directory are dropped (no mount into a placeholder)") {
  ScanResult scan;
  scan.ignored = {{"secret", true}, {"secret/inner.key", false}};
  scan.readonly = {{"secret/docs", true}, {"docs", true}, {"docs/sub", true}};
  const MountPlan plan = plan_mounts(scan, "/w", "/ph");
  CHECK(render(plan, "/w", "/ph") == std::vector<std::string>{"WS -> /workspace rw",
                                                             "WS/docs -> /workspace/docs ro",
                                                             "PH/empty-dir -> /workspace/secret ro"});
}

TEST_CASE("container path normalization") {
  CHECK(normalize_container_path("/workspace/a/../../repo/.git/./x") == "/repo/.git/x");
  CHECK(normalize_container_path("/../..") == "/");
}
