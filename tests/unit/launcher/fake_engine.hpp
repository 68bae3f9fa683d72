#pragma once
// A stand-in for the Docker engine's API socket, for the engine watch
// (launcher/host/engine.hpp): it answers `GET /events` with a response that
// never ends and `GET /_ping` with "OK", on a unix socket in a test's
// directory. The test then makes it go away in the ways an engine does.

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "dnsguard/posix.hpp"

namespace cagent::launcher::host::test {

class FakeEngine {
 public:
  // What `GET /events` gets: "200 OK" (a subscription), else "400 Bad Request".
  std::atomic<bool> accept_events{true};
  std::atomic<bool> answer_pings{true};

  explicit FakeEngine(std::filesystem::path socket) : socket_(std::move(socket)) {
    const sockaddr_un address = unix_address(socket_.native());
    listener_.reset(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!listener_.valid() ||
        ::bind(listener_.get(), reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0 ||
        ::listen(listener_.get(), 16) != 0) {
      throw_errno("fake engine at ", socket_.native());
    }
    thread_ = std::thread([this] { serve(); });
  }
  ~FakeEngine() { die(); }
  FakeEngine(const FakeEngine&) = delete;
  FakeEngine& operator=(const FakeEngine&) = delete;

  // Closes the event streams it holds, and only those (the engine process
  // behind a socket that systemd holds is gone; the socket still accepts).
  void drop_watches() {
    const std::lock_guard<std::mutex> lock(mutex_);
    watches_.clear();
  }
  // Writes `text` to every event stream it holds, as one chunk of the
  // engine's chunked response.
  void send_event(const std::string& text) {
    const std::lock_guard<std::mutex> lock(mutex_);
    char size[32];
    std::snprintf(size, sizeof size, "%zx\r\n", text.size());
    const std::string chunk = size + text + "\r\n";
    for (const UniqueFd& w : watches_) (void)!::write(w.get(), chunk.data(), chunk.size());
  }
  // The request line of every event subscription so far.
  std::vector<std::string> subscriptions() {
    const std::lock_guard<std::mutex> lock(mutex_);
    return subscriptions_;
  }

  // As a killed engine: every connection closed, nothing accepts any more.
  void die() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    const std::lock_guard<std::mutex> lock(mutex_);
    watches_.clear();
    silent_.clear();
    listener_.reset();
    std::error_code ec;
    std::filesystem::remove(socket_, ec);
  }

 private:
  void serve() {
    while (!stop_) {
      pollfd p{listener_.get(), POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0) continue;
      UniqueFd conn(::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
      if (!conn.valid()) continue;
      std::string request;
      char buf[1024];
      while (request.find("\r\n\r\n") == std::string::npos) {
        const ssize_t n = ::read(conn.get(), buf, sizeof buf);
        if (n <= 0) break;
        request.append(buf, static_cast<std::size_t>(n));
      }
      const std::lock_guard<std::mutex> lock(mutex_);
      if (request.rfind("GET /events?", 0) == 0) {
        subscriptions_.push_back(request.substr(0, request.find("\r\n")));
        const bool ok = accept_events;
        const std::string head = std::string("HTTP/1.1 ") + (ok ? "200 OK" : "400 Bad Request") +
                                 "\r\nContent-Type: application/json\r\n\r\n";
        (void)!::write(conn.get(), head.data(), head.size());
        if (ok) watches_.push_back(std::move(conn));
      } else if (request.rfind("GET /_ping ", 0) == 0 && answer_pings) {
        const std::string reply = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK";
        (void)!::write(conn.get(), reply.data(), reply.size());
      } else {
        silent_.push_back(std::move(conn));  // accepted, never answered
      }
    }
  }

  std::filesystem::path socket_;
  UniqueFd listener_;
  std::mutex mutex_;
  std::vector<UniqueFd> watches_;
  std::vector<UniqueFd> silent_;
  std::vector<std::string> subscriptions_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace cagent::launcher::host::test
