// Golden tests of the docker command lines. Each golden file holds one argv
// element per line. To regenerate after an intended change:
//   CAGENT_UPDATE_GOLDEN=1 build/bin/launcher_host_unit_tests -tc='*golden*'
// and review the diff.
#include <doctest/doctest.h>

#include <algorithm>

#include <cstdlib>
#include <sstream>

#include "launcher/host/config.hpp"
#include "launcher/host/docker_argv.hpp"
#include "launcher/host/paths.hpp"
#include "tests/unit/launcher/test_util.hpp"

using namespace cagent::launcher::host;
namespace fs = std::filesystem;

namespace {

void check_golden(const std::string& name, const std::vector<std::string>& argv) {
  std::string text;
  for (const std::string& a : argv) text += a + "\n";
  const fs::path file = fs::path(LAUNCHER_GOLDEN_DIR) / (name + ".argv");
  if (const char* update = std::getenv("CAGENT_UPDATE_GOLDEN"); update != nullptr && update[0] == '1') {
    write_file(file, text, 0644);
  }
  CAPTURE(name);
  CHECK(read_file(file) == text);
}

RunSpec base_spec() {
  RunSpec s;
  s.image = "cagent:latest";
  s.container_name = "cagent-0123456789ab";
  s.session_id = "0123456789ab";
  s.policy_file = "/home/u/.cagent/sessions/0123456789ab/policy.toml";
  s.log_dir = "/home/u/.cagent/logs/session-0123456789ab";
  s.owner_socket = "/home/u/.cagent/sessions/0123456789ab/owner.sock";
  s.home_volume = home_volume_name("cagent-home", "fh1:a422a700a9b055c2.born1796593212.541848995");
  s.workspace = "/home/u/src/proj";
  s.mounts.mounts = {
      {"/home/u/src/proj", "/workspace", false},
      {"/home/u/.cagent/sessions/0123456789ab/empty-file", "/workspace/.env", true},
      {"/home/u/src/proj/.git", "/workspace/.git", true},
  };
  return s;
}

}  // namespace

TEST_CASE("docker run argv golden: pipeline (no TTY) with a command") {
  RunSpec s = base_spec();
  s.command = {"claude", "-p", "fix the tests"};
  check_golden("run_pipe", render_run_argv(s));
}

TEST_CASE("docker run argv golden: TTY, login shell") {
  RunSpec s = base_spec();
  s.tty = true;
  check_golden("run_tty_shell", render_run_argv(s));
}

TEST_CASE("docker run argv golden: sysbox") {
  RunSpec s = base_spec();
  s.sysbox = true;
  s.command = {"docker", "ps"};
  check_golden("run_sysbox", render_run_argv(s));
}

TEST_CASE("docker run argv golden: extra_args and CA bundle") {
  RunSpec s = base_spec();
  s.extra_args = {"-e", "ANTHROPIC_API_KEY", "--cpus=2"};
  s.ca_bundle = "/home/u/.cagent/sessions/0123456789ab/extra-ca.pem";
  s.command = {"curl", "https://github.com"};
  check_golden("run_extra_args_ca", render_run_argv(s));
}

TEST_CASE("docker run argv golden: odd paths use --mount with CSV quoting") {
  RunSpec s = base_spec();
  s.mounts.mounts = {{"/home/u/my proj:v2", "/workspace", false},
                     {"/ph/empty-file", "/workspace/a,b \"c\".key", true}};
  s.command = {"true"};
  check_golden("run_odd_paths", render_run_argv(s));
}

TEST_CASE("docker run argv golden: workspace extra_args only when trusted") {
  const std::vector<ConfigLayer> layers = {
      load_config("domains: [github.com]\nextra_args: ['-v', '~/.gitconfig:/home/agent/.gitconfig:ro']\n",
                  "/home/u/.cagent/config.yaml", LayerKind::base),
      load_config("extra_args: ['--privileged', '-v', '/:/host']\n", "/home/u/src/proj/.cagent.yaml",
                  LayerKind::workspace),
  };
  for (const bool trusted : {false, true}) {
    const Config c = validate(merge_layers(layers, {trusted, "echo …"}), "/home/u");
    RunSpec s = base_spec();
    s.extra_args = c.extra_args;
    s.command = {"true"};
    check_golden(trusted ? "run_trusted" : "run_untrusted", render_run_argv(s));
  }
}

TEST_CASE("docker build argv golden") {
  check_golden("build",
               render_build_argv(BuildSpec{"cagent:latest", "/home/u/.cagent/build/context-1",
                                           "abc123", {{"BASE", "debian:bookworm-slim"},
                                                      {"AGENT_NPM_PACKAGES", "@a/b c"}}}));
}

TEST_CASE("docker run argv: the owner socket is mounted and handed to cage-init: without one, neither") {
  const auto has = [](const std::vector<std::string>& argv, const std::string& word) {
    return std::find(argv.begin(), argv.end(), word) != argv.end();
  };
  RunSpec s = base_spec();
  std::vector<std::string> argv = render_run_argv(s);
  CHECK(has(argv, "/home/u/.cagent/sessions/0123456789ab/owner.sock:/etc/cagent/owner.sock:ro"));
  const auto image = std::find(argv.begin(), argv.end(), "cagent:latest");
  const auto owner = std::find(argv.begin(), argv.end(), "--owner");
  REQUIRE(owner != argv.end());
  CHECK(image < owner);  // cage-init's argument, not docker's
  CHECK(*(owner + 1) == "/etc/cagent/owner.sock");
  s.owner_socket.reset();
  argv = render_run_argv(s);
  CHECK_FALSE(has(argv, "--owner"));
  CHECK_FALSE(has(argv, "/home/u/.cagent/sessions/0123456789ab/owner.sock:/etc/cagent/owner.sock:ro"));
}

TEST_CASE("argv invariants: never a shell string, TTY flag only with a TTY") {
  RunSpec s = base_spec();
  s.command = {"sh", "-c", "echo $HOME; rm -rf /"};
  const auto argv = render_run_argv(s);
  // The command words arrive untouched after "--", never joined.
  REQUIRE(argv.size() >= 4);
  CHECK(argv[argv.size() - 4] == "--");
  CHECK(argv.back() == "echo $HOME; rm -rf /");
  CHECK(std::find(argv.begin(), argv.end(), "-t") == argv.end());
  CHECK(std::find(argv.begin(), argv.end(), "-i") != argv.end());
  s.tty = true;
  const auto tty = render_run_argv(s);
  CHECK(std::find(tty.begin(), tty.end(), "-t") != tty.end());
}

TEST_CASE("home volumes: one per workspace directory, named by its identity, labelled with prefix and path") {
  const std::string id_a = "fh1:a422a700a9b055c2.born1796593212.541848995";
  // The same path, a directory made again there: another identity.
  const std::string id_a_again = "fh1:2120a700fb6a5a3b.born1796593212.541848995";
  const std::string a = home_volume_name("cagent-home", id_a);
  CHECK(a.size() == std::string("cagent-home-").size() + 16);
  CHECK(a.rfind("cagent-home-", 0) == 0);
  CHECK(a == home_volume_name("cagent-home", id_a));  // the same directory keeps its home
  CHECK(a != home_volume_name("cagent-home", id_a_again));
  CHECK(home_volume_name("cagent-e2e-home", id_a).rfind("cagent-e2e-home-", 0) == 0);

  RunSpec s = base_spec();
  s.home_volume = a;
  s.home_volume_prefix = "cagent-home";
  s.workspace = "/home/u/src/a";
  const auto argv = render_run_argv(s);
  const auto mount =
      std::find(argv.begin(), argv.end(),
                "type=volume,source=" + a +
                    ",target=/home/agent,volume-label=cagent.home=cagent-home,volume-label=cagent.workspace=/home/u/src/a");
  REQUIRE(mount != argv.end());
  CHECK(*(mount - 1) == "--mount");
  // The one home shared by every workspace (`cagent-home`) is never mounted.
  CHECK(std::find(argv.begin(), argv.end(), "cagent-home:/home/agent") == argv.end());

  // No identity: an anonymous volume, which docker run --rm removes.
  s.home_volume.reset();
  const auto anonymous = render_run_argv(s);
  CHECK(std::find(anonymous.begin(), anonymous.end(),
                  "type=volume,target=/home/agent,volume-label=cagent.home=cagent-home,"
                  "volume-label=cagent.workspace=/home/u/src/a") != anonymous.end());

  // Any byte of the path: escaped, and CSV-quoted where docker would split.
  s.home_volume = a;
  s.workspace = std::string("/tmp/a,b\nc") + '\x1b';
  const auto odd = render_run_argv(s);
  CHECK(std::find(odd.begin(), odd.end(),
                  "type=volume,source=" + a +
                      ",target=/home/agent,volume-label=cagent.home=cagent-home,"
                      "\"volume-label=cagent.workspace=/tmp/a,b\\nc\\x1b\"") != odd.end());

  for (const char* good : {"cagent-home", "cagent-e2e-home", "x", "a.b_c-d"}) CHECK(valid_home_volume_prefix(good));
  for (const char* bad : {"", "-x", ".x", "a/b", "a,b", "a b", "a:b", "a=b"}) {
    CAPTURE(bad);
    CHECK_FALSE(valid_home_volume_prefix(bad));
  }
}
