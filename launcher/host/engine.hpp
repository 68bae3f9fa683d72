#pragma once
// The local Docker engine as cagent sees it from the host: which unix socket
// the docker CLI talks to, which engine process answers there, and a watch
// that notices that process going away during a session (`systemctl restart
// docker`, dockerd killed) without polling.
//
// The watch is one connection to the engine's API held for the session's
// life: a subscription to the engine's own events (`GET /events`, filtered to
// type=daemon, so nothing arrives in normal operation). The engine never ends
// that response while it runs; the connection closes when the engine process
// that served it is gone (killed, or exiting at the end of a graceful stop),
// and then the kernel closes it whatever the docker CLI does. Its descriptor
// joins the poll of the foreground session (ProcessRunner::run_foreground's
// Hangup): no timer, no request while the session runs.
//
// A graceful stop ends the cage before the engine exits (it stops the
// containers first), so docker run can return the cage's status while the
// watch is still open. After docker run, check() asks once: does the engine
// answer `GET /_ping` on a new connection before the watch closes?
//
// Only a local engine is watched: the unix socket the docker CLI uses
// (local_engine_socket()). With a remote engine or a docker context there is
// no watch, and docker run's own exit is all cagent sees.

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "dnsguard/posix.hpp"

namespace cagent::launcher::host {

// What decides which engine the docker CLI talks to, as the CLI reads it.
struct DockerClientEnv {
  std::string docker_host;      // $DOCKER_HOST ("" when unset)
  std::string docker_context;   // $DOCKER_CONTEXT ("" when unset)
  std::string current_context;  // "currentContext" of the CLI's config.json ("" when none)
};

// The unix socket the docker CLI would use: DOCKER_HOST=unix://PATH, or the
// default /var/run/docker.sock when neither DOCKER_HOST nor a context other
// than "default" is chosen. nullopt: a remote engine or a context (cagent
// does not read contexts' endpoints).
std::optional<std::filesystem::path> local_engine_socket(const DockerClientEnv& env);

// "currentContext" of the docker CLI's config.json; "" when absent, not a
// string, or the text is not JSON.
std::string current_context_of(std::string_view config_json);

// "<inode>:<ctime>" of the engine's unix socket, which dockerd recreates
// whenever it starts (e.g. after a runtime such as sysbox-runc was added to
// its config); nullopt when there is no socket there.
std::optional<std::string> docker_engine_key(const std::filesystem::path& socket);

// The answer of EngineWatch::check().
enum class EngineCheck {
  answered,  // the engine that served the watch is still there
  closed,    // the watch closed: that engine process is gone
  refused,   // nothing accepts connections on the socket
  silent,    // connected, but no answer within the time given
};

// For messages: "its connection closed", "it refuses connections", ...
std::string_view describe(EngineCheck check);

class EngineWatch {
 public:
  // Subscribes at `socket`; nullopt when the engine does not accept the
  // subscription within `timeout` (then there is nothing to watch: docker
  // run will say why it cannot start).
  static std::optional<EngineWatch> open(const std::filesystem::path& socket, std::chrono::milliseconds timeout);

  // Readable when the engine sent something (read and drop it) or the
  // connection closed (read returns 0 or fails): see Hangup in process.hpp.
  int fd() const { return fd_.get(); }

  // After the session: is the engine that served the watch still there? A
  // `GET /_ping` on a new connection, answered while the watch is still
  // open; the watch closing first (a restart behind systemd's socket, which
  // queues the ping until the next engine) means it is not.
  EngineCheck check(std::chrono::milliseconds timeout) const;

 private:
  // Reads what is waiting on the watch; true when it closed.
  bool closed() const;
  EngineWatch(std::filesystem::path socket, UniqueFd fd) : socket_(std::move(socket)), fd_(std::move(fd)) {}
  std::filesystem::path socket_;
  UniqueFd fd_;
};

// The moment a container's main process has ended, as the engine reports
// it (its `die` event), before the engine has removed the container. A
// second subscription, separate from EngineWatch's: the engine ANDs the
// kinds of filter, so one subscription cannot ask for its own events and a
// container's. Used to start the end-of-session walk (git_markers.hpp)
// while the engine still removes the container: by then no process of the
// cage is left — the kernel ends every process of a PID namespace before
// the exit of its first one is reported — so nothing in it can still write
// to the workspace.
class ContainerEndWatch {
 public:
  // Subscribes to the `die` events of the container named `name` (which
  // need not exist yet); nullopt when the engine does not accept it within
  // `timeout`.
  static std::optional<ContainerEndWatch> open(const std::filesystem::path& socket, const std::string& name,
                                               std::chrono::milliseconds timeout);

  int fd() const { return fd_.get(); }

  // Reads what is waiting; true once the container's `die` event came. The
  // connection closing says nothing about the container (false; closed()).
  bool died();
  // Whether the engine ended the subscription (nothing more will come).
  bool closed() const { return closed_; }

 private:
  ContainerEndWatch(UniqueFd fd, std::string name) : fd_(std::move(fd)), name_(std::move(name)) {}
  UniqueFd fd_;
  std::string name_;
  std::string seen_;  // what came, up to a bound
  bool closed_ = false;
};

// The events request for the `die` events of the container `name`
// (exposed for tests).
std::string container_die_request(const std::string& name);

// Whether the event stream text `events` holds a `die` event of the
// container named exactly `name` (the engine's name filter also passes
// names that merely begin with it).
bool holds_die_of(std::string_view events, std::string_view name);

}  // namespace cagent::launcher::host
