// Who wrote the workspace .cagent.yaml: the pure decision as a table, the
// record's text form, and the file inspection.
#include <doctest/doctest.h>

#include <sys/stat.h>
#include <unistd.h>

#include "launcher/host/paths.hpp"
#include "launcher/host/workspace_approval.hpp"
#include "test_util.hpp"

using namespace cagent::launcher::host;
using cagent::launcher::host::test::TempDir;

namespace {

constexpr std::int64_t T = 1'700'000'000;  // some moment; sessions and changes around it

ConfigFileState file(const std::string& hash, std::int64_t ctime = T, bool symlink = false) {
  ConfigFileState f;
  f.content = "domains: [x]\n";
  f.hash = hash;
  f.ctime = ctime;
  f.symlink = symlink;
  return f;
}

ConfigFileState no_file() { return ConfigFileState{}; }

WorkspaceRecord rec(const std::string& accepted, std::optional<std::string> ended, std::int64_t first = 0,
                    std::vector<OpenSession> open = {}, const std::string& path = "/w") {
  return WorkspaceRecord{path, accepted, std::move(ended), first, std::move(open)};
}

struct Row {
  const char* name;
  std::optional<WorkspaceRecord> record;
  ConfigFileState file;
  std::vector<WorkspaceRecord> enclosing;
  bool accept_flag;
  bool can_ask;
  Verdict want;
};

}  // namespace

TEST_CASE("workspace config approval: decision table") {
  const std::vector<Row> rows = {
      // First sight: the user's or the repository's (the seed's contract).
      {"first sight, file present", std::nullopt, file("A"), {}, false, false, Verdict::accept},
      {"first sight, no file", std::nullopt, no_file(), {}, false, false, Verdict::accept},
      // Unchanged.
      {"same as accepted", rec("A", "A", T - 100), file("A"), {}, false, false, Verdict::load},
      {"same as accepted, a session running", rec("A", "A", T - 100, {{"s1", T - 10}}), file("A"), {}, false,
       false, Verdict::load},
      {"still absent", rec(kAbsentConfig, kAbsentConfig, T - 100), no_file(), {}, false, false, Verdict::load},
      // Gone: nothing widens; absent becomes the accepted state.
      {"removed", rec("A", "A", T - 100), no_file(), {}, false, false, Verdict::accept},
      // Changed after the last session ended, with none running: the user's.
      {"user edit after the last session", rec("A", "A", T - 100), file("B"), {}, false, false, Verdict::accept},
      {"user created it after the last session", rec(kAbsentConfig, kAbsentConfig, T - 100), file("B"), {}, false,
       false, Verdict::accept},
      {"changed before any session ran", rec("A", std::nullopt, 0), file("B"), {}, false, false, Verdict::accept},
      // Exactly what the last session left: written during a session.
      {"planted by the last session, no terminal", rec(kAbsentConfig, "B", T - 100), file("B"), {}, false, false,
       Verdict::ignore},
      {"planted by the last session, terminal", rec(kAbsentConfig, "B", T - 100), file("B"), {}, false, true,
       Verdict::ask},
      {"changed by the last session", rec("A", "B", T - 100), file("B"), {}, false, false, Verdict::ignore},
      {"planted, then accepted on the command line", rec(kAbsentConfig, "B", T - 100), file("B"), {}, true, false,
       Verdict::accept},
      // A session running now (or one that never recorded its end).
      {"changed while a session runs", rec("A", "A", T - 100, {{"s1", T - 10}}), file("B"), {}, false, false,
       Verdict::ignore},
      {"changed while a session runs, terminal", rec("A", "A", T - 100, {{"s1", T - 10}}), file("B"), {}, false,
       true, Verdict::ask},
      // A symlink: who changed what it names cannot be told.
      {"symlink whose target changed", rec("A", "A", T - 100), file("B", T, true), {}, false, false,
       Verdict::ignore},
      {"symlink on first sight", std::nullopt, file("B", T, true), {}, false, false, Verdict::accept},
      // Nested: an enclosing workspace's agent can write anywhere below it.
      {"first sight, enclosing sessions began before the change", std::nullopt, file("B", T),
       {rec("A", "A", T - 100, {}, "/p")}, false, false, Verdict::ignore},
      {"first sight, enclosing sessions began before the change, terminal", std::nullopt, file("B", T),
       {rec("A", "A", T - 100, {}, "/p")}, false, true, Verdict::ask},
      {"first sight, file older than any enclosing session", std::nullopt, file("B", T - 1000),
       {rec("A", "A", T - 100, {}, "/p")}, false, false, Verdict::accept},
      {"first sight, changed within the clock slack of the first enclosing session", std::nullopt,
       file("B", T - 100 - kClockSlackSeconds), {rec("A", "A", T - 100, {}, "/p")}, false, false, Verdict::ignore},
      {"first sight, enclosing session running", std::nullopt, file("B", T - 1000),
       {rec("A", "A", 0, {{"s2", T - 5}}, "/p")}, false, false, Verdict::ignore},
      {"first sight, enclosing workspace never had a session", std::nullopt, file("B", T),
       {rec("A", std::nullopt, 0, {}, "/p")}, false, false, Verdict::accept},
      {"own record says user edit, but an enclosing session may have made it", rec("A", "A", T - 100), file("B", T),
       {rec("A", "A", T - 50, {}, "/p")}, false, false, Verdict::ignore},
      {"enclosing suspicion, accepted on the command line", std::nullopt, file("B", T),
       {rec("A", "A", T - 100, {}, "/p")}, true, false, Verdict::accept},
      {"accepted content loads whatever enclosing workspaces did", rec("B", "B", T - 100), file("B", T),
       {rec("A", "A", T - 100, {}, "/p")}, false, false, Verdict::load},
  };
  for (const Row& row : rows) {
    CAPTURE(row.name);
    ApprovalInput in;
    in.record = row.record;
    in.file = row.file;
    in.enclosing = row.enclosing;
    in.accept_flag = row.accept_flag;
    in.can_ask = row.can_ask;
    const ApprovalDecision d = decide_workspace_config(in);
    CHECK(static_cast<int>(d.verdict) == static_cast<int>(row.want));
    if (d.verdict == Verdict::ask || d.verdict == Verdict::ignore) CHECK_FALSE(d.why.empty());
  }
}

TEST_CASE("workspace config approval: the record survives its text form") {
  const WorkspaceRecord r =
      rec(std::string(64, 'a'), std::string(64, 'b'), T, {{"0123456789ab", T + 1}, {"ba9876543210", T + 2}});
  const WorkspaceRecord back = parse_record(render_record(r));
  CHECK(back.accepted == r.accepted);
  CHECK(back.ended == r.ended);
  CHECK(back.first_session == T);
  REQUIRE(back.open.size() == 2);
  CHECK(back.open[1].id == "ba9876543210");
  CHECK(back.open[1].start == T + 2);
  const WorkspaceRecord none = parse_record(render_record(rec(kAbsentConfig, std::nullopt)));
  CHECK(none.accepted == kAbsentConfig);
  CHECK_FALSE(none.ended);
  CHECK(none.open.empty());
  // A line a newer version adds is skipped, not fatal.
  CHECK(parse_record("future-key x\naccepted abc\n").accepted == "abc");
}

TEST_CASE("workspace config approval: inspecting the file") {
  TempDir t;
  const auto ws = t.dir("ws");
  CHECK_FALSE(inspect_config_file(ws / ".cagent.yaml").content);
  CHECK(inspect_config_file(ws / ".cagent.yaml").hash == kAbsentConfig);
  write_file(ws / ".cagent.yaml", "domains: [a.example]\n", 0644);
  const ConfigFileState s = inspect_config_file(ws / ".cagent.yaml");
  REQUIRE(s.content);
  CHECK(*s.content == "domains: [a.example]\n");
  CHECK(s.hash.size() == 64);
  CHECK_FALSE(s.symlink);
  CHECK(s.ctime > 0);
  // A FIFO under the name must neither hang cagent nor count as a file.
  const auto fifo = ws / "fifo";
  REQUIRE(::mkfifo(fifo.c_str(), 0644) == 0);
  CHECK_FALSE(inspect_config_file(fifo).content);
  std::filesystem::create_symlink(".cagent.yaml", ws / "link.yaml");
  const ConfigFileState l = inspect_config_file(ws / "link.yaml");
  CHECK(l.symlink);
  CHECK(l.hash == s.hash);
}

TEST_CASE("workspace config approval: records per workspace, enclosing ones found") {
  TempDir t;
  WorkspaceRecords records(t / "cagent");
  records.lock();
  CHECK_FALSE(records.load("/a/b"));
  records.save(rec("A", "A", T, {}, "/a"));
  records.save(rec("C", std::nullopt, 0, {{"s", T}}, "/a/b/c"));
  const auto c = records.load("/a/b/c");
  REQUIRE(c);
  CHECK(c->accepted == "C");
  CHECK(c->path == "/a/b/c");
  const auto up = records.enclosing("/a/b/c/d");
  REQUIRE(up.size() == 2);
  CHECK(up[0].path == "/a/b/c");
  CHECK(up[1].path == "/a");
  CHECK(records.enclosing("/a").empty());
  records.unlock();
  struct stat st {};
  REQUIRE(::stat((t / "cagent/workspaces").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0700);
}
