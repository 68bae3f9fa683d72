#include "control.hpp"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <stdexcept>

namespace cagent::dnsguard {
namespace {

std::vector<std::string_view> words(std::string_view line) {
  std::vector<std::string_view> out;
  std::size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r' || line[i] == '\n')) ++i;
    std::size_t e = i;
    while (e < line.size() && line[e] != ' ' && line[e] != '\t' && line[e] != '\r' && line[e] != '\n') ++e;
    if (e > i) out.push_back(line.substr(i, e - i));
    i = e;
  }
  return out;
}

std::string joined(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : " ") + x;
  return s;
}

}  // namespace

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

LivePolicy::Outcome LivePolicy::execute(std::string_view line) {
  Outcome out;
  const auto w = words(line);
  if (w.empty()) {
    out.reply = "error empty command";
    return out;
  }
  if (w[0] == "list") {
    out.ok = true;
    out.reply = "ok " + joined(added_);
    return out;
  }
  if ((w[0] != "allow" && w[0] != "deny") || w.size() < 2) {
    out.reply = "error usage: allow PATTERN… | deny PATTERN… | list";
    return out;
  }
  std::vector<std::string> names;
  for (std::size_t i = 1; i < w.size(); ++i) {
    try {
      std::string n = normalize_pattern(w[i]);
      if (std::find(names.begin(), names.end(), n) == names.end()) names.push_back(std::move(n));
    } catch (const PatternError& e) {
      // The pattern is printed only when it is printable ASCII (it came
      // from the host, but keep the reply one clean line anyway).
      const bool clean = std::all_of(w[i].begin(), w[i].end(), [](char c) { return c > ' ' && c < 0x7f; });
      out.reply = "error invalid pattern " + (clean ? std::string(w[i]) : std::string("(unprintable)")) + ": " +
                  e.what();
      return out;
    }
  }
  std::vector<std::string> next_added = added_;
  if (w[0] == "allow") {
    for (const auto& n : names) {
      const bool in_base = std::find(base_.begin(), base_.end(), n) != base_.end();
      if (!in_base && std::find(next_added.begin(), next_added.end(), n) == next_added.end()) {
        next_added.push_back(n);
        out.allowed.push_back(n);
      }
    }
  } else {
    for (const auto& n : names) {
      auto it = std::find(next_added.begin(), next_added.end(), n);
      if (it == next_added.end()) {
        const bool in_base = std::find(base_.begin(), base_.end(), n) != base_.end();
        out.reply = "error " + n +
                    (in_base ? " is in the session's policy file; only run-time additions can be taken back"
                             : " was not allowed at run time");
        return out;
      }
      next_added.erase(it);
      out.denied.push_back(n);
    }
  }
  const bool changed = next_added != added_;
  added_ = std::move(next_added);
  if (changed) out.next = build();
  out.ok = true;
  out.reply = std::string("ok ") + (w[0] == "allow" ? "allowed " : "denied ") + joined(names);
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
  const int own = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (own < 0) return PeerNamespace::unknown;
  std::uint64_t self = 0;
  const bool ok = cookie(own, self);
  ::close(own);
  if (!ok) return PeerNamespace::unknown;
  return peer == self ? PeerNamespace::same : PeerNamespace::other;
}

std::string control_socket_for(const std::string& log_file) {
  if (log_file.empty()) return {};
  return (std::filesystem::path(log_file).parent_path() / "control" / "dnsguard.sock").string();
}

std::string control_request(const std::string& socket_path, std::string_view line) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (socket_path.size() >= sizeof addr.sun_path) throw std::runtime_error("control socket path too long");
  std::memcpy(addr.sun_path, socket_path.c_str(), socket_path.size() + 1);
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error(std::string("socket: ") + std::strerror(errno));
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
    throw std::runtime_error("connect " + socket_path + ": " + std::strerror(errno));
  }
  std::string msg(line);
  msg += '\n';
  std::size_t done = 0;
  while (done < msg.size()) {
    const ssize_t n = ::send(fd, msg.data() + done, msg.size() - done, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw std::runtime_error(std::string("send: ") + std::strerror(errno));
    done += static_cast<std::size_t>(n);
  }
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
  while (!reply.empty() && (reply.back() == '\n' || reply.back() == '\r')) reply.pop_back();
  if (reply.empty()) throw std::runtime_error("no reply from dnsguard");
  return reply;
}

}  // namespace cagent::dnsguard
