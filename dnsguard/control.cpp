#include "dnsguard/control.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <stdexcept>

#include "dnsguard/posix.hpp"

namespace cagent::dnsguard {

LivePolicy::LivePolicy(std::vector<std::string> base) {
  // Normalized like the additions, so "is this already allowed" compares
  // like with like (the policy was validated at load: nothing throws here).
  for (const auto& p : base) base_.push_back(normalize_pattern(p));
}

AllowList LivePolicy::build() const {
  std::vector<std::string> all = base_;
  all.insert(all.end(), added_.begin(), added_.end());
  return AllowList(all);
}

LivePolicy::Outcome LivePolicy::execute(const ControlRequest& request) {
  Outcome out;
  ControlReply& reply = out.reply;
  reply.op = request.op;
  const auto refuse = [&](std::string why) {
    reply.ok = false;
    reply.error = std::move(why);
    reply.names.clear();
    reply.added.clear();
    return std::move(out);
  };
  if (request.op == ControlOp::list) {
    reply.ok = true;
    reply.names = added_;
    return out;
  }
  if (request.op != ControlOp::allow && request.op != ControlOp::deny)
    return refuse("not a policy change");  // watch and refuse are the server's (server.cpp)
  if (request.patterns.empty()) return refuse("usage: allow PATTERN… | deny PATTERN… | list");
  std::vector<std::string>& names = reply.names;
  for (const std::string& pattern : request.patterns) {
    try {
      std::string n = normalize_pattern(pattern);
      if (std::find(names.begin(), names.end(), n) == names.end()) names.push_back(std::move(n));
    } catch (const PatternError& e) {
      // The pattern is printed only when it is printable ASCII (it came
      // from the host, but keep the reply one clean line anyway); the
      // reason quotes it, so it goes through the same filter.
      const auto printable = [](char c) { return c >= ' ' && c < 0x7f; };
      const bool clean = !pattern.empty() && std::all_of(pattern.begin(), pattern.end(), printable) &&
                         pattern.find(' ') == std::string::npos;
      std::string why = e.what();
      std::replace_if(why.begin(), why.end(), [&](char c) { return !printable(c); }, '?');
      return refuse("invalid pattern " + (clean ? pattern : std::string("(unprintable)")) + ": " + why);
    }
  }
  std::vector<std::string> next_added = added_;
  const auto in_base = [&](const std::string& n) { return std::find(base_.begin(), base_.end(), n) != base_.end(); };
  if (request.op == ControlOp::allow) {
    for (const auto& n : names) {
      if (!in_base(n) && std::find(next_added.begin(), next_added.end(), n) == next_added.end()) {
        next_added.push_back(n);
        reply.added.push_back(n);
      }
    }
  } else {
    for (const auto& n : names) {
      auto it = std::find(next_added.begin(), next_added.end(), n);
      if (it == next_added.end()) {
        return refuse(n + (in_base(n) ? " is in the session's policy file; only run-time additions can be taken back"
                                      : " was not allowed at run time"));
      }
      next_added.erase(it);
    }
  }
  const bool changed = next_added != added_;
  added_ = std::move(next_added);
  if (changed) out.next = build();
  reply.ok = true;
  return out;
}

PeerNamespace peer_network_namespace(int accepted_fd) {
#ifndef SO_NETNS_COOKIE
  constexpr int SO_NETNS_COOKIE = 71;  // Linux 5.14; older headers lack it
#endif
  const auto cookie = [](int fd, std::uint64_t& out) {
    socklen_t len = sizeof out;
    return ::getsockopt(fd, SOL_SOCKET, SO_NETNS_COOKIE, &out, &len) == 0 && len == sizeof out;
  };
  std::uint64_t peer = 0;
  if (!cookie(accepted_fd, peer)) return PeerNamespace::unknown;
  // A socket of our own, made now, is in dnsguard's namespace.
  const UniqueFd own(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!own.valid()) return PeerNamespace::unknown;
  std::uint64_t self = 0;
  if (!cookie(own.get(), self)) return PeerNamespace::unknown;
  return peer == self ? PeerNamespace::same : PeerNamespace::other;
}

namespace {

// The request, whole; throws naming the failure.
void send_request(int fd, const ControlRequest& request) {
  const std::string msg = write_control_request(request);
  std::size_t done = 0;
  while (done < msg.size()) {
    const ssize_t n = ::send(fd, msg.data() + done, msg.size() - done, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw std::runtime_error(std::string("send: ") + std::strerror(errno));
    done += static_cast<std::size_t>(n);
  }
}

bool write_all(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

}  // namespace

ControlReply control_request(const std::string& socket_path, const ControlRequest& request) {
  const UniqueFd owner = connect_unix(socket_path);
  const int fd = owner.get();
  send_request(fd, request);
  std::string reply;
  char buf[4096];
  for (;;) {
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw std::runtime_error(std::string("recv: ") + std::strerror(errno));
    if (n == 0) break;
    reply.append(buf, static_cast<std::size_t>(n));
    if (reply.size() > 1 << 20) break;
  }
  if (reply.empty()) throw std::runtime_error("no reply from dnsguard");
  return parse_control_reply(reply);
}

int control_watch(const std::string& socket_path, int in_fd, int out_fd) {
  const UniqueFd owner = connect_unix(socket_path);
  const int fd = owner.get();
  send_request(fd, ControlRequest{ControlOp::watch, {}});
  // The first line is the reply; a refusal ends the watch with its reason.
  std::string first;
  bool replied = false;
  std::array<pollfd, 2> fds{{{fd, POLLIN, 0}, {in_fd, POLLIN, 0}}};
  std::array<char, 4096> buf;
  for (;;) {
    if (::poll(fds.data(), fds.size(), -1) < 0) {
      if (errno == EINTR) continue;
      throw std::runtime_error(std::string("poll: ") + std::strerror(errno));
    }
    if (fds[1].revents != 0) {
      // Whoever started the watch (the host's docker exec -i) is gone or
      // done: the connection closes and dnsguard stops holding for it.
      const ssize_t n = ::read(in_fd, buf.data(), buf.size());
      if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN)) return 0;
    }
    if (fds[0].revents != 0) {
      const ssize_t n = ::recv(fd, buf.data(), buf.size(), 0);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        if (!replied) throw std::runtime_error("no reply from dnsguard");
        return 1;  // dnsguard ended the session (it stops)
      }
      const std::string_view got(buf.data(), static_cast<std::size_t>(n));
      if (!write_all(out_fd, got)) return 0;  // nobody reads the events any more
      if (!replied) {
        first.append(got);
        const std::size_t eol = first.find('\n');
        if (eol != std::string::npos) {
          replied = true;
          if (!parse_control_reply(std::string_view(first).substr(0, eol + 1)).ok) return 2;
          first.clear();
        } else if (first.size() > 1 << 16) {
          throw std::runtime_error("no reply line from dnsguard");
        }
      }
    }
  }
}

}  // namespace cagent::dnsguard
