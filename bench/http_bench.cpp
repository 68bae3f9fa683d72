#include "bench/http_bench.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <thread>

#include "bench/sockaddr.hpp"
#include "dnsguard/posix.hpp"

namespace cagent::bench {
namespace {

using Clock = std::chrono::steady_clock;

// One socket, closed with its owner.
using Socket = cagent::UniqueFd;

// Many held connections need many descriptors (the gate: six per relayed
// connection); use what the hard limit allows.
void raise_fd_limit() {
  rlimit r{};
  if (::getrlimit(RLIMIT_NOFILE, &r) == 0 && r.rlim_cur < r.rlim_max) {
    r.rlim_cur = r.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &r);
  }
}

bool send_all(int fd, const char* data, std::size_t n) {
  while (n > 0) {
    const ssize_t w = ::send(fd, data, n, MSG_NOSIGNAL);
    if (w <= 0) {
      if (w < 0 && errno == EINTR) continue;
      return false;
    }
    data += w;
    n -= static_cast<std::size_t>(w);
  }
  return true;
}

// ---- server -------------------------------------------------------------

void serve_connection(Socket s) {
  static const std::vector<char> pattern(64 * 1024, 'x');
  std::string head;
  std::array<char, 4096> buf{};
  while (head.find("\r\n\r\n") == std::string::npos) {
    const ssize_t n = ::recv(s.get(), buf.data(), buf.size(), 0);
    if (n <= 0) return;
    head.append(buf.data(), static_cast<std::size_t>(n));
    if (head.size() > 65536) return;
  }
  const std::size_t sp = head.find(' ');
  const std::string path = head.substr(sp + 1, head.find(' ', sp + 1) - sp - 1);
  if (path == "/hold") {
    const char reply[] = "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx";
    if (!send_all(s.get(), reply, sizeof reply - 1)) return;
    while (::recv(s.get(), buf.data(), buf.size(), 0) > 0) {
    }
    return;
  }
  std::uint64_t n = 2;
  if (path.rfind("/bytes/", 0) == 0) n = std::strtoull(path.c_str() + 7, nullptr, 10);
  const std::string header = "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(n) + "\r\nConnection: close\r\n\r\n";
  if (!send_all(s.get(), header.data(), header.size())) return;
  while (n > 0) {
    const std::size_t chunk = static_cast<std::size_t>(std::min<std::uint64_t>(n, pattern.size()));
    if (!send_all(s.get(), pattern.data(), chunk)) return;
    n -= chunk;
  }
  ::shutdown(s.get(), SHUT_WR);
  while (::recv(s.get(), buf.data(), buf.size(), 0) > 0) {
  }
}

// ---- client -------------------------------------------------------------

Socket connect_to(const HostPort& target) {
  sockaddr_storage ss{};
  const socklen_t len = to_sockaddr(target.host, target.port, ss);
  Socket s(::socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (s.get() < 0) return s;
  const int one = 1;
  ::setsockopt(s.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (::connect(s.get(), reinterpret_cast<const sockaddr*>(&ss), len) != 0) return Socket();
  return s;
}

std::string request(const std::string& path, const std::string& host) {
  return "GET " + path + " HTTP/1.1\r\nHost: " + host + "\r\nUser-Agent: cagent-bench\r\n\r\n";
}

// Reads the response to its end; returns the body bytes (0 on failure).
std::uint64_t read_response(int fd) {
  std::vector<char> buf(256 * 1024);
  std::uint64_t total = 0;
  std::size_t header_end = std::string::npos;
  std::string head;
  while (true) {
    const ssize_t n = ::recv(fd, buf.data(), buf.size(), 0);
    if (n <= 0) break;
    if (header_end == std::string::npos) {
      head.append(buf.data(), static_cast<std::size_t>(n));
      header_end = head.find("\r\n\r\n");
      if (header_end != std::string::npos) total = head.size() - header_end - 4;
      continue;
    }
    total += static_cast<std::uint64_t>(n);
  }
  return header_end == std::string::npos ? 0 : total;
}

}  // namespace

void http_serve(const HttpServeOptions& options) {
  raise_fd_limit();
  sockaddr_storage ss{};
  const socklen_t len = to_sockaddr(options.listen.host, options.listen.port, ss);
  Socket listener(::socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0));
  const int one = 1;
  ::setsockopt(listener.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (listener.get() < 0 || ::bind(listener.get(), reinterpret_cast<const sockaddr*>(&ss), len) != 0 ||
      ::listen(listener.get(), 4096) != 0)
    throw std::runtime_error("http-serve: cannot listen on " + options.listen.host + ": " + std::strerror(errno));
  std::printf("ready http=%u\n", static_cast<unsigned>(bound_port(listener.get())));
  std::fflush(stdout);
  while (true) {
    Socket c(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (c.get() < 0) {
      if (errno == EINTR || errno == ECONNABORTED || errno == EMFILE) continue;
      throw std::runtime_error(std::string("http-serve: accept: ") + std::strerror(errno));
    }
    std::thread(serve_connection, std::move(c)).detach();
  }
}

HttpReport run_http(const HttpOptions& o) {
  raise_fd_limit();
  HttpReport report;
  report.label = o.label;
  // Latency: connect → first byte of the response, one connection at a time.
  for (std::uint32_t i = 0; i < o.latency; ++i) {
    const auto t0 = Clock::now();
    Socket s = connect_to(o.target);
    const std::string req = request("/bytes/1", o.host);
    char first = 0;
    if (s.get() < 0 || !send_all(s.get(), req.data(), req.size()) || ::recv(s.get(), &first, 1, 0) != 1) {
      ++report.failures;
      continue;
    }
    const auto t1 = Clock::now();
    report.latency_us.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
    read_response(s.get());
  }
  std::sort(report.latency_us.begin(), report.latency_us.end());
  // Bulk: one download per round.
  for (std::uint32_t r = 0; o.bulk > 0 && r < o.rounds; ++r) {
    const auto t0 = Clock::now();
    Socket s = connect_to(o.target);
    const std::string req = request("/bytes/" + std::to_string(o.bulk), o.host);
    if (s.get() < 0 || !send_all(s.get(), req.data(), req.size()) || read_response(s.get()) != o.bulk) {
      ++report.failures;
      continue;
    }
    const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
    report.bulk_mbps.push_back(static_cast<double>(o.bulk) / secs / 1e6);
  }
  // Hold: N connections open at once.
  if (o.hold > 0) {
    std::vector<Socket> held;
    held.reserve(o.hold);
    const std::string req = request("/hold", o.host);
    for (std::uint32_t i = 0; i < o.hold; ++i) {
      Socket s = connect_to(o.target);
      char buf[128];
      if (s.get() < 0 || !send_all(s.get(), req.data(), req.size()) || ::recv(s.get(), buf, sizeof buf, 0) <= 0) {
        ++report.failures;
        continue;
      }
      held.push_back(std::move(s));
    }
    report.held = static_cast<std::uint32_t>(held.size());
    std::printf("holding %u\n", report.held);
    std::fflush(stdout);
    std::this_thread::sleep_for(std::chrono::duration<double>(o.hold_seconds));
  }
  return report;
}

std::string format_http_report(const HttpReport& r) {
  const auto pct = [](const std::vector<double>& v, double p) {
    if (v.empty()) return 0.0;
    return v[std::min(v.size() - 1, static_cast<std::size_t>(p * static_cast<double>(v.size())))];
  };
  std::vector<double> mbps = r.bulk_mbps;
  std::sort(mbps.begin(), mbps.end());
  char buf[512];
  std::snprintf(buf, sizeof buf,
                "{\"label\": \"%s\", \"connections\": %zu, \"latency_p50_us\": %.1f, \"latency_p90_us\": %.1f, "
                "\"latency_p99_us\": %.1f, \"bulk_rounds\": %zu, \"bulk_median_mbps\": %.1f, \"bulk_best_mbps\": %.1f, "
                "\"held\": %u, \"failures\": %u}\n",
                r.label.c_str(), r.latency_us.size(), pct(r.latency_us, 0.5), pct(r.latency_us, 0.9),
                pct(r.latency_us, 0.99), mbps.size(), pct(mbps, 0.5), mbps.empty() ? 0.0 : mbps.back(), r.held,
                r.failures);
  return buf;
}

}  // namespace cagent::bench
