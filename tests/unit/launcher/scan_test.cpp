#include <doctest/doctest.h>

#include <algorithm>

#include <unistd.h>

#include <string>

#include "launcher/host/config.hpp"
#include "launcher/host/mount_plan.hpp"
#include "launcher/host/scan.hpp"
#include "test_util.hpp"

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
  t.file("ws/.git/.env");  // patterns don't apply inside .git
  t.file("ws/docs/readme.md");
  t.file("ws/docs/private.key");   // ignore inside a readonly dir still hides it
  t.file("ws/secrets/a.txt");      // ignored dir: content hidden wholesale
  t.file("ws/secrets/.cagent.yaml");
  t.file("ws/.cagent.yaml", "domains: [x.example]\n");
  t.file("ws/my dir/with space.key");
  const ScanResult scan = scan_workspace(ws, patterns({".env", ".env.*", "*.key", "/secrets/"}),
                                         patterns({".git", ".cagent.yaml", "docs/"}));
  CHECK(scan.ignored == std::vector<ScannedPath>{{".env", false},
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

TEST_CASE("scan: .git file (worktree) mounts the gitdir and its commondir read-only") {
  TempDir t;
  // Main repository with a worktree's private gitdir.
  t.file("repo/.git/HEAD", "ref: refs/heads/main\n");
  t.dir("repo/.git/objects");
  t.file("repo/.git/worktrees/wt/HEAD", "ref: refs/heads/feature\n");
  t.file("repo/.git/worktrees/wt/commondir", "../..\n");
  const fs::path ws = t.dir("wt");
  t.file("wt/.git", "gitdir: " + (t / "repo/.git/worktrees/wt").string() + "\n");
  const ScanResult scan = scan_workspace(ws, {}, patterns({".git"}));
  CHECK(scan.readonly == std::vector<ScannedPath>{{".git", false}});
  REQUIRE(scan.git_dirs.size() == 1);  // the gitdir lies inside the commondir mount
  CHECK(scan.git_dirs[0].host == t / "repo/.git");
  CHECK(scan.git_dirs[0].container == (t / "repo/.git").string());
  const MountPlan plan = plan_mounts(scan, ws, "/ph");
  CHECK(plan.mounts.back() == Mount{t / "repo/.git", (t / "repo/.git").string(), true});
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
