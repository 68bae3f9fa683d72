// A workspace .cagent.yaml applies only by the user's word: the pure
// decision as a table, the approvals' text form, what the question shows,
// the file inspection and the store under CAGENT_HOME.
#include <doctest/doctest.h>

#include <sys/stat.h>
#include <unistd.h>

#include "launcher/host/paths.hpp"
#include "launcher/host/sha256.hpp"
#include "launcher/host/workspace_approval.hpp"
#include "tests/unit/launcher/test_util.hpp"

using namespace cagent::launcher::host;
using cagent::launcher::host::test::TempDir;
namespace fs = std::filesystem;

namespace {

ConfigFileState file(const std::string& hash) {
  ConfigFileState f;
  f.content = "domains: [x]\n";
  f.hash = hash;
  return f;
}

WorkspaceApprovals approved(std::vector<std::string> contents, const std::string& path = "/w",
                            const std::string& identity = "fh1:aa") {
  return WorkspaceApprovals{path, identity, std::move(contents)};
}

struct Row {
  const char* name;
  std::optional<std::string> identity;  // of the workspace /w now
  ConfigFileState file;
  std::optional<WorkspaceApprovals> approvals;
  bool accept_flag;
  bool can_ask;
  Verdict want;
};

}  // namespace

TEST_CASE("workspace config approval: decision table") {
  const std::vector<Row> rows = {
      {"no file: nothing to load", "fh1:aa", ConfigFileState{}, std::nullopt, false, false, Verdict::none},
      {"no file, flag: still nothing", "fh1:aa", ConfigFileState{}, std::nullopt, true, true, Verdict::none},
      // The approved exact content of this directory at this path.
      {"approved content", "fh1:aa", file("A"), approved({"A"}), false, false, Verdict::load},
      {"one of several approved contents", "fh1:aa", file("A"), approved({"B", "A", "C"}), false, false,
       Verdict::load},
      // Never approved here: a new file, a clone, a planted one.
      {"never approved, no terminal", "fh1:aa", file("A"), std::nullopt, false, false, Verdict::ignore},
      {"never approved, terminal", "fh1:aa", file("A"), std::nullopt, false, true, Verdict::ask},
      // The content changed (a session wrote it, or the user edited it).
      {"changed content, no terminal", "fh1:aa", file("B"), approved({"A"}), false, false, Verdict::ignore},
      {"changed content, terminal", "fh1:aa", file("B"), approved({"A"}), false, true, Verdict::ask},
      // The same content, but another directory: what was approved is not
      // this workspace's.
      {"other identity (rm + mkdir, cp -a, fresh clone)", "fh1:bb", file("A"), approved({"A"}), false, false,
       Verdict::ignore},
      {"renamed path (approved at /old)", "fh1:aa", file("A"), approved({"A"}, "/old"), false, false,
       Verdict::ignore},
      {"copied directory (other path, other identity)", "fh1:cc", file("A"), approved({"A"}, "/old", "fh1:aa"),
       false, true, Verdict::ask},
      // No identity: nothing can be remembered, nothing loads unasked.
      {"no identity, approvals of the path", std::nullopt, file("A"), approved({"A"}), false, false,
       Verdict::ignore},
      {"no identity, terminal", std::nullopt, file("A"), std::nullopt, false, true, Verdict::ask},
      // The user's word on the host's command line.
      {"flag, never approved", "fh1:aa", file("A"), std::nullopt, true, false, Verdict::accept},
      {"flag, changed content", "fh1:aa", file("B"), approved({"A"}), true, true, Verdict::accept},
      {"flag, other identity", "fh1:bb", file("A"), approved({"A"}), true, false, Verdict::accept},
      {"flag, no identity", std::nullopt, file("A"), std::nullopt, true, false, Verdict::accept},
      {"flag, already approved: just load", "fh1:aa", file("A"), approved({"A"}), true, false, Verdict::load},
  };
  for (const Row& row : rows) {
    CAPTURE(row.name);
    ApprovalInput in;
    in.workspace = "/w";
    in.identity = row.identity;
    in.file = row.file;
    in.approvals = row.approvals;
    in.accept_flag = row.accept_flag;
    in.can_ask = row.can_ask;
    const ApprovalDecision d = decide_workspace_config(in);
    CHECK(static_cast<int>(d.verdict) == static_cast<int>(row.want));
    if (d.verdict == Verdict::ask || d.verdict == Verdict::ignore) CHECK_FALSE(d.why.empty());
  }
}

TEST_CASE("workspace config approval: the reason says what happened") {
  ApprovalInput in;
  in.workspace = "/w";
  in.identity = "fh1:aa";
  in.file = file("B");
  in.approvals = approved({"A"});
  CHECK(decide_workspace_config(in).why == "it changed since you approved it");
  in.approvals.reset();
  CHECK(decide_workspace_config(in).why.find("not approved it in this directory") != std::string::npos);
  in.identity.reset();
  CHECK(decide_workspace_config(in).why.find("no identity") != std::string::npos);
}

TEST_CASE("workspace config approval: the approvals survive their text form: the list is bounded") {
  const WorkspaceApprovals a = approved({std::string(64, 'a'), std::string(64, 'b')}, "/home/u/p\nq");
  const WorkspaceApprovals back = parse_approvals(render_approvals(a));
  CHECK(back.workspace == "/home/u/p\\nq");  // stored escaped: one line, safe to cat
  CHECK(back.identity == a.identity);
  CHECK(back.contents == a.contents);
  // A line a newer version adds is skipped, not fatal.
  CHECK(parse_approvals("future-key x\napproved abc\n").contents == std::vector<std::string>{"abc"});

  WorkspaceApprovals many = approved({});
  for (std::size_t i = 0; i < kMaxApprovedContents + 3; ++i) many = with_approved(many, std::to_string(i));
  REQUIRE(many.contents.size() == kMaxApprovedContents);
  CHECK(many.contents.front() == "3");
  CHECK(many.contents.back() == std::to_string(kMaxApprovedContents + 2));
  // Approving again moves it to the newest place, once.
  many = with_approved(many, "5");
  CHECK(many.contents.size() == kMaxApprovedContents);
  CHECK(many.contents.back() == "5");
  CHECK(std::count(many.contents.begin(), many.contents.end(), "5") == 1);
}

TEST_CASE("workspace config approval: what the question shows it adds over the global config") {
  const ConfigLayer base = load_config("domains: [github.com, pypi.org]\nignore: [.env]\nreadonly: [.git]\n",
                                       "/home/u/.cagent/config.yaml", LayerKind::base);
  const ConfigLayer ws = load_config(
      "domains: [GitHub.com., evil.example, \"\\e[2Jx.example\"]\nignore: [.env, secrets/]\nreadonly: [docs/]\n"
      "extra_args: [--privileged]\ndns_resolvers: ['203.0.113.5']\nconnection_gate: false\n",
      "/w/.cagent.yaml", LayerKind::workspace);
  const std::vector<std::string> untrusted = describe_additions(base, ws, false);
  REQUIRE(untrusted.size() == 6);
  // github.com is already there (case and trailing dot do not matter); the
  // escape sequence reaches no terminal.
  CHECK(untrusted[0] == "domains the cage may reach: evil.example, \\x1b[2Jx.example");
  CHECK(untrusted[1] == "ignore (hidden from the agent): secrets/");
  CHECK(untrusted[2] == "readonly: docs/");
  CHECK(untrusted[3] == "extra_args: --privileged (ignored: this workspace is not trusted)");
  CHECK(untrusted[4] == "dns_resolvers: 203.0.113.5 (ignored: this workspace is not trusted)");
  CHECK(untrusted[5] == "connection_gate: false (ignored: this workspace is not trusted)");
  const std::vector<std::string> trusted = describe_additions(base, ws, true);
  CHECK(trusted[3] == "extra_args: --privileged (applies: this workspace is in ~/.cagent/trusted)");
  // Asking for more protection needs no trust.
  CHECK(describe_additions(base, load_config("connection_gate: true\n", "w", LayerKind::workspace), false) ==
        std::vector<std::string>{"connection_gate: true (applies)"});
  CHECK(describe_additions(base, load_config("domains: [pypi.org]\n", "w", LayerKind::workspace), false).empty());
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
  CHECK(s.hash == sha256_hex("domains: [a.example]\n"));
  CHECK_FALSE(s.symlink);
  // A FIFO under the name must neither hang cagent nor count as a file.
  const auto fifo = ws / "fifo";
  REQUIRE(::mkfifo(fifo.c_str(), 0644) == 0);
  CHECK_FALSE(inspect_config_file(fifo).content);
  fs::create_symlink(".cagent.yaml", ws / "link.yaml");
  const ConfigFileState l = inspect_config_file(ws / "link.yaml");
  CHECK(l.symlink);
  CHECK(l.hash == s.hash);
}

TEST_CASE("workspace config approval: the store keys approvals by path and identity, under CAGENT_HOME only") {
  TempDir t;
  const ApprovalStore store(t / "cagent");
  CHECK_FALSE(store.load("/a", "fh1:aa"));
  store.approve("/a", "fh1:aa", "A");
  store.approve("/a", "fh1:aa", "B");
  const auto a = store.load("/a", "fh1:aa");
  REQUIRE(a);
  CHECK(a->workspace == "/a");
  CHECK(a->contents == std::vector<std::string>{"A", "B"});
  CHECK_FALSE(store.load("/a", "fh1:bb"));  // the same path, another directory
  CHECK_FALSE(store.load("/b", "fh1:aa"));  // the same directory, renamed
  // One file per workspace directory, private, and no temporary left.
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(t / "cagent/approvals")) files.push_back(e.path());
  REQUIRE(files.size() == 1);
  struct stat st {};
  REQUIRE(::stat(files[0].c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  REQUIRE(::stat((t / "cagent/approvals").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0700);
  // A record whose path or identity line does not match its name is no
  // approval (a file copied over another's name).
  write_file(files[0], render_approvals(approved({"A"}, "/elsewhere", "fh1:aa")), 0600);
  CHECK_FALSE(store.load("/a", "fh1:aa"));
}

TEST_CASE("workspace config approval: what a session wrote is taken back, what the user approved in it is kept") {
  // The agent writes back an older content the user once approved (for
  // another branch, say): without this the next session loads it unasked.
  CHECK(content_to_withdraw("B", {"A", "B"}, "A") == std::optional<std::string>("A"));
  // Control: content nobody approved has nothing to take back; neither has
  // an unchanged file, nor one approved only during the session
  // (cagent allow --save approves its own edit).
  CHECK_FALSE(content_to_withdraw("B", {"A", "B"}, "C"));
  CHECK_FALSE(content_to_withdraw("B", {"A", "B"}, "B"));
  CHECK_FALSE(content_to_withdraw("B", {"B"}, "C"));

  TempDir t;
  const ApprovalStore store(t / "cagent");
  store.approve("/a", "fh1:aa", "A");
  store.approve("/a", "fh1:aa", "B");
  store.withdraw("/a", "fh1:aa", "A");
  REQUIRE(store.load("/a", "fh1:aa"));
  CHECK(store.load("/a", "fh1:aa")->contents == std::vector<std::string>{"B"});
  store.withdraw("/a", "fh1:aa", "C");  // not approved: nothing changes
  CHECK(store.load("/a", "fh1:aa")->contents == std::vector<std::string>{"B"});
  store.withdraw("/b", "fh1:aa", "B");  // nothing approved there: no record made
  CHECK_FALSE(store.load("/b", "fh1:aa"));
}
