// The local engine: which socket the docker CLI uses, the engine's identity,
// and the watch that notices the engine going away (against FakeEngine, a
// unix socket in a temporary directory: no Docker).
#include <doctest/doctest.h>

#include <sys/socket.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "launcher/host/engine.hpp"
#include "tests/unit/launcher/fake_engine.hpp"
#include "tests/unit/launcher/test_util.hpp"

using namespace cagent::launcher::host;
using cagent::launcher::host::test::FakeEngine;
using cagent::launcher::host::test::TempDir;
namespace fs = std::filesystem;
using std::chrono::milliseconds;

TEST_CASE("engine: the socket the docker CLI uses, or none for a remote engine or a context") {
  const fs::path standard = "/var/run/docker.sock";
  CHECK(local_engine_socket({}) == standard);
  CHECK(local_engine_socket({"", "default", ""}) == standard);
  CHECK(local_engine_socket({"", "", "default"}) == standard);
  CHECK(local_engine_socket({"unix:///run/user/1000/docker.sock", "", ""}) == fs::path("/run/user/1000/docker.sock"));
  // DOCKER_HOST wins over a context, as in the CLI.
  CHECK(local_engine_socket({"unix:///tmp/d.sock", "rootless", "remote"}) == fs::path("/tmp/d.sock"));
  CHECK_FALSE(local_engine_socket({"tcp://10.0.0.1:2376", "", ""}));
  CHECK_FALSE(local_engine_socket({"ssh://me@host", "", ""}));
  CHECK_FALSE(local_engine_socket({"unix://", "", ""}));
  CHECK_FALSE(local_engine_socket({"", "rootless", ""}));
  CHECK_FALSE(local_engine_socket({"", "", "rootless"}));
  // DOCKER_CONTEXT=default over a config that names another one.
  CHECK(local_engine_socket({"", "default", "rootless"}) == standard);
}

TEST_CASE("engine: the current context from docker's config.json") {
  CHECK(current_context_of(R"({"auths":{},"currentContext":"rootless"})") == "rootless");
  CHECK(current_context_of(R"({"auths":{}})").empty());
  CHECK(current_context_of(R"({"currentContext":7})").empty());
  CHECK(current_context_of("not json").empty());
  CHECK(current_context_of("").empty());
}

TEST_CASE("engine: the key of the engine's socket, only for a socket") {
  TempDir t;
  const fs::path socket = t / "docker.sock";
  CHECK_FALSE(docker_engine_key(socket));           // no socket
  CHECK_FALSE(docker_engine_key(t.file("plain")));  // not a socket
  FakeEngine engine(socket);
  const auto key = docker_engine_key(socket);
  REQUIRE(key);
  CHECK(key->find(':') != std::string::npos);  // "<inode>:<ctime>"
}

TEST_CASE("engine watch: an engine that stays answers, one that goes away does not") {
  TempDir t;
  const fs::path socket = t / "docker.sock";
  const milliseconds timeout{2000};

  SUBCASE("killed: every connection closed, nothing accepts") {
    FakeEngine engine(socket);
    auto watch = EngineWatch::open(socket, timeout);
    REQUIRE(watch);
    CHECK(watch->check(timeout) == EngineCheck::answered);  // control: the same engine, still there
    engine.die();
    CHECK(watch->check(timeout) == EngineCheck::closed);
  }
  SUBCASE("restarted behind a socket that still accepts: the watch closed, a new engine answers") {
    FakeEngine engine(socket);
    auto watch = EngineWatch::open(socket, timeout);
    REQUIRE(watch);
    engine.drop_watches();
    CHECK(watch->check(timeout) == EngineCheck::closed);
  }
  SUBCASE("accepting, but answering nothing") {
    FakeEngine engine(socket);
    auto watch = EngineWatch::open(socket, timeout);
    REQUIRE(watch);
    engine.answer_pings = false;
    CHECK(watch->check(milliseconds(200)) == EngineCheck::silent);
    engine.answer_pings = true;
    CHECK(watch->check(timeout) == EngineCheck::answered);  // control
  }
  SUBCASE("the socket is gone while the watch's connection stays (a listener closed first)") {
    FakeEngine engine(socket);
    auto watch = EngineWatch::open(socket, timeout);
    REQUIRE(watch);
    fs::remove(socket);
    CHECK(watch->check(timeout) == EngineCheck::refused);
  }
}

TEST_CASE("engine watch: nothing to watch without an engine that accepts the subscription") {
  TempDir t;
  const fs::path socket = t / "docker.sock";
  CHECK_FALSE(EngineWatch::open(socket, milliseconds(500)));  // no socket
  FakeEngine engine(socket);
  engine.accept_events = false;
  // An error response ends its connection at once: watched, it would read
  // as the engine going away.
  CHECK_FALSE(EngineWatch::open(socket, milliseconds(2000)));
  engine.accept_events = true;
  CHECK(EngineWatch::open(socket, milliseconds(2000)));  // control
}

namespace {
// An event as the engine writes it (docker events --format '{{json .}}').
std::string event(const std::string& action, const std::string& name) {
  return "{\"status\":\"" + action + "\",\"id\":\"0123abcd\",\"from\":\"cagent:latest\",\"Type\":\"container\",\"Action\":\"" +
         action + "\",\"Actor\":{\"ID\":\"0123abcd\",\"Attributes\":{\"exitCode\":\"0\",\"image\":\"cagent:latest\",\"name\":\"" +
         name + "\"}},\"scope\":\"local\",\"time\":1765000000,\"timeNano\":1765000000000000000}\n";
}
}  // namespace

TEST_CASE("container end: only the die event of exactly that container counts") {
  CHECK(holds_die_of(event("die", "cagent-0a1b2c3d4e5f"), "cagent-0a1b2c3d4e5f"));
  // The engine's name filter passes names that merely begin with the one asked for.
  CHECK_FALSE(holds_die_of(event("die", "cagent-0a1b2c3d4e5f-other"), "cagent-0a1b2c3d4e5f"));
  CHECK_FALSE(holds_die_of(event("start", "cagent-0a1b2c3d4e5f"), "cagent-0a1b2c3d4e5f"));
  CHECK_FALSE(holds_die_of("", "cagent-0a1b2c3d4e5f"));
  const std::string request = container_die_request("cagent-0a1b2c3d4e5f");
  CHECK(request.rfind("GET /events?filters=", 0) == 0);
  CHECK(request.find("%22die%22") != std::string::npos);
  CHECK(request.find("%22cagent-0a1b2c3d4e5f%22") != std::string::npos);
  // Whatever a name holds, it cannot end the request line or add a filter.
  const std::string odd = container_die_request("a\r\nb\"c&d ");
  CHECK(odd.find("a%0D%0Ab%22c%26d%20") != std::string::npos);
  CHECK(odd.find("\r\n") == odd.find(" HTTP/1.1\r\n") + 9);
}

TEST_CASE("container end: the watch says died once the engine reports the container's die") {
  TempDir t;
  const fs::path socket = t / "docker.sock";
  FakeEngine engine(socket);
  auto watch = ContainerEndWatch::open(socket, "cagent-0a1b2c3d4e5f", milliseconds(2000));
  REQUIRE(watch);
  REQUIRE(engine.subscriptions().size() == 1);
  CHECK(engine.subscriptions()[0] == container_die_request("cagent-0a1b2c3d4e5f").substr(0, container_die_request("cagent-0a1b2c3d4e5f").find("\r\n")));
  CHECK_FALSE(watch->died());  // nothing yet
  engine.send_event(event("die", "cagent-0a1b2c3d4e5f-other"));
  ::poll(nullptr, 0, 50);
  CHECK_FALSE(watch->died());  // another container's
  CHECK_FALSE(watch->closed());
  engine.send_event(event("die", "cagent-0a1b2c3d4e5f"));
  pollfd p{watch->fd(), POLLIN, 0};
  REQUIRE(::poll(&p, 1, 2000) == 1);
  CHECK(watch->died());
  SUBCASE("the engine going away is no death of the container") {
    auto second = ContainerEndWatch::open(socket, "cagent-ffffffffffff", milliseconds(2000));
    REQUIRE(second);
    engine.die();
    pollfd q{second->fd(), POLLIN, 0};
    REQUIRE(::poll(&q, 1, 2000) == 1);
    CHECK_FALSE(second->died());
    CHECK(second->closed());
  }
}
