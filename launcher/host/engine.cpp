#include "launcher/host/engine.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <cctype>
#include <cerrno>

namespace cagent::launcher::host {
namespace fs = std::filesystem;
namespace {

using Clock = std::chrono::steady_clock;

// The engine's own events only (reload, …): the subscription carries
// nothing while a session runs, it only has to stay open.
constexpr std::string_view kEventsRequest =
    "GET /events?filters=%7B%22type%22%3A%5B%22daemon%22%5D%7D HTTP/1.1\r\n"
    "Host: docker\r\nUser-Agent: cagent\r\n\r\n";
constexpr std::string_view kPingRequest =
    "GET /_ping HTTP/1.1\r\nHost: docker\r\nUser-Agent: cagent\r\nConnection: close\r\n\r\n";

int left_ms(Clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return left > 0 ? static_cast<int>(left) : 0;
}

// Non-blocking from the start: a unix socket whose listener's queue is full
// (an engine that stopped accepting) fails at once with EAGAIN instead of
// blocking in connect().
struct Connected {
  UniqueFd fd;
  EngineCheck failure = EngineCheck::refused;  // when !fd.valid()
};
Connected connect_engine(const fs::path& socket) {
  Connected c;
  sockaddr_un address{};
  try {
    address = unix_address(socket.native());
  } catch (const std::exception&) {
    return c;  // a path no socket address can hold: nothing to reach
  }
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd.valid()) return c;
  if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) {
    if (errno == EAGAIN) c.failure = EngineCheck::silent;
    return c;
  }
  c.fd = std::move(fd);
  return c;
}

bool send_all(int fd, std::string_view data, Clock::time_point deadline) {
  while (!data.empty()) {
    const ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n > 0) {
      data.remove_prefix(static_cast<std::size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno != EAGAIN) return false;
    pollfd p{fd, POLLOUT, 0};
    if (::poll(&p, 1, left_ms(deadline)) == 0) return false;
  }
  return true;
}

// The response's first line ("HTTP/1.1 200 OK"), or "" when none came in time.
std::string status_line(int fd, Clock::time_point deadline) {
  std::string got;
  char buf[512];
  while (got.find("\r\n") == std::string::npos && got.size() < 4096) {
    pollfd p{fd, POLLIN, 0};
    const int ready = ::poll(&p, 1, left_ms(deadline));
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) return "";
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n <= 0) return "";
    got.append(buf, static_cast<std::size_t>(n));
  }
  return got.substr(0, got.find("\r\n"));
}

}  // namespace

std::optional<fs::path> local_engine_socket(const DockerClientEnv& env) {
  // The docker CLI's own order: DOCKER_HOST wins over any context.
  if (!env.docker_host.empty()) {
    constexpr std::string_view kUnix = "unix://";
    if (env.docker_host.rfind(kUnix, 0) != 0 || env.docker_host.size() == kUnix.size()) return std::nullopt;
    return fs::path(env.docker_host.substr(kUnix.size()));
  }
  const std::string& context = env.docker_context.empty() ? env.current_context : env.docker_context;
  if (!context.empty() && context != "default") return std::nullopt;
  return fs::path("/var/run/docker.sock");
}

std::string current_context_of(std::string_view config_json) {
  boost::system::error_code ec;
  const boost::json::value config = boost::json::parse(config_json, ec);
  if (ec || !config.is_object()) return "";
  const boost::json::value* current = config.as_object().if_contains("currentContext");
  if (current == nullptr || !current->is_string()) return "";
  return std::string(current->as_string());
}

std::optional<std::string> docker_engine_key(const fs::path& socket) {
  struct stat st {};
  if (::stat(socket.c_str(), &st) != 0 || !S_ISSOCK(st.st_mode)) return std::nullopt;
  return std::to_string(st.st_ino) + ":" + std::to_string(st.st_ctim.tv_sec) + "." +
         std::to_string(st.st_ctim.tv_nsec);
}

std::string_view describe(EngineCheck check) {
  switch (check) {
    case EngineCheck::answered: return "it answers";
    case EngineCheck::closed: return "its connection to cagent closed";
    case EngineCheck::refused: return "it accepts no connections";
    case EngineCheck::silent: return "it does not answer";
  }
  return "";
}

std::optional<EngineWatch> EngineWatch::open(const fs::path& socket, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  Connected c = connect_engine(socket);
  if (!c.fd.valid() || !send_all(c.fd.get(), kEventsRequest, deadline)) return std::nullopt;
  // Only a subscription the engine accepted can be watched: an error
  // response ends the connection at once and would read as the engine
  // going away.
  const std::string status = status_line(c.fd.get(), deadline);
  if (status.rfind("HTTP/1.1 200", 0) != 0 && status.rfind("HTTP/1.0 200", 0) != 0) return std::nullopt;
  return EngineWatch(socket, std::move(c.fd));
}

bool EngineWatch::closed() const {
  char buf[512];
  while (true) {
    pollfd p{fd_.get(), POLLIN, 0};
    if (::poll(&p, 1, 0) <= 0) return false;
    const ssize_t n = ::read(fd_.get(), buf, sizeof buf);
    if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN)) return true;
  }
}

std::string container_die_request(const std::string& name) {
  // {"type":["container"],"event":["die"],"container":["NAME"]}; a session's
  // container name is "cagent-" and hex, nothing to escape — anything else
  // is escaped all the same.
  std::string escaped;
  for (const char ch : name) {
    const auto c = static_cast<unsigned char>(ch);
    if (std::isalnum(c) != 0 || c == '-' || c == '_' || c == '.') {
      escaped += static_cast<char>(c);
    } else {
      static constexpr char kHex[] = "0123456789ABCDEF";
      escaped += '%';
      escaped += kHex[c >> 4];
      escaped += kHex[c & 15];
    }
  }
  return "GET /events?filters=%7B%22type%22%3A%5B%22container%22%5D%2C%22event%22%3A%5B%22die%22%5D%2C"
         "%22container%22%3A%5B%22" +
         escaped + "%22%5D%7D HTTP/1.1\r\nHost: docker\r\nUser-Agent: cagent\r\n\r\n";
}

bool holds_die_of(std::string_view events, std::string_view name) {
  // Each event is a JSON object; the container's name is an attribute of
  // its actor: "name":"<name>". The stream is chunked, so an object may be
  // cut by a chunk header: only the name and the action are looked for, and
  // each is short enough never to be cut when the engine writes one event
  // per chunk.
  const std::string needle = "\"name\":\"" + std::string(name) + "\"";
  return events.find(needle) != std::string_view::npos &&
         (events.find("\"Action\":\"die\"") != std::string_view::npos ||
          events.find("\"status\":\"die\"") != std::string_view::npos);
}

std::optional<ContainerEndWatch> ContainerEndWatch::open(const fs::path& socket, const std::string& name,
                                                         std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  Connected c = connect_engine(socket);
  if (!c.fd.valid() || !send_all(c.fd.get(), container_die_request(name), deadline)) return std::nullopt;
  const std::string status = status_line(c.fd.get(), deadline);
  if (status.rfind("HTTP/1.1 200", 0) != 0 && status.rfind("HTTP/1.0 200", 0) != 0) return std::nullopt;
  return ContainerEndWatch(std::move(c.fd), name);
}

bool ContainerEndWatch::died() {
  char buf[4096];
  while (true) {
    const ssize_t n = ::recv(fd_.get(), buf, sizeof buf, MSG_DONTWAIT);
    if (n < 0 && errno == EINTR) continue;
    if (n == 0 || (n < 0 && errno != EAGAIN)) closed_ = true;
    if (n <= 0) break;
    seen_.append(buf, static_cast<std::size_t>(n));
    // Only this container's events pass the filter: a few, each well
    // under this bound.
    if (seen_.size() > 64 * 1024) seen_.erase(0, seen_.size() - 16 * 1024);
  }
  return holds_die_of(seen_, name_);
}

EngineCheck EngineWatch::check(std::chrono::milliseconds timeout) const {
  const auto deadline = Clock::now() + timeout;
  // Already closed (a killed engine): that says more than a refused ping.
  if (closed()) return EngineCheck::closed;
  Connected ping = connect_engine(socket_);
  if (!ping.fd.valid()) return ping.failure;
  if (!send_all(ping.fd.get(), kPingRequest, deadline)) return EngineCheck::refused;
  char buf[512];
  while (true) {
    pollfd fds[2] = {{fd_.get(), POLLIN, 0}, {ping.fd.get(), POLLIN, 0}};
    const int ready = ::poll(fds, 2, left_ms(deadline));
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) return EngineCheck::silent;
    // The watch first: when both are ready, the engine that served the
    // session is gone and whatever answered the ping is another one.
    if (fds[0].revents != 0) {
      const ssize_t n = ::read(fd_.get(), buf, sizeof buf);
      if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN)) return EngineCheck::closed;
    }
    if (fds[1].revents != 0) {
      const ssize_t n = ::read(ping.fd.get(), buf, sizeof buf);
      if (n > 0) return EngineCheck::answered;
      if (n == 0 || (errno != EINTR && errno != EAGAIN)) return EngineCheck::refused;
    }
  }
}

}  // namespace cagent::launcher::host
