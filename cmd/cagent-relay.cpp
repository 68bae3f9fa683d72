// cagent-relay — the secret relay (see launcher/relay/relay.hpp).
//
//   cagent-relay [--trust FILE] [--listen-fd N] [--record-fd N]
//
// Started by cage-init as its own uid, without capabilities, with:
//   fd 0  the connection cagent serves the secrets on (read to its end);
//   fd 1  a pipe cage-init reads the session CA's certificate from (PEM);
//         closed once the relay serves, which is cage-init's "ready";
//   fd 3  (--listen-fd) the listener cage-init bound on 127.0.0.1:relay.port;
//   --record-fd  relay.jsonl in the session's log directory, O_APPEND.
// The trust bundle is read before the session CA joins it.
//
// Wiring only; exit 1 with one line on stderr when it cannot start.

#include <sys/prctl.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>

#include <charconv>
#include <cstdio>
#include <iostream>
#include <set>
#include <string>
#include <string_view>

#include "dnsguard/contracts.hpp"
#include "launcher/relay/relay.hpp"
#include "launcher/relay/session_ca.hpp"

namespace {

namespace relay = cagent::relay;

int to_fd(std::string_view flag, std::string_view text) {
  int fd = -1;
  const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), fd);
  if (ec != std::errc() || ptr != text.data() + text.size() || fd < 0) {
    throw std::invalid_argument(std::string(flag) + ": not a descriptor number: '" + std::string(text) + "'");
  }
  return fd;
}

// Everything on fd 0 up to its end (at most 1 MiB: a few secrets).
std::string read_all_stdin() {
  std::string text;
  char buffer[4096];
  for (;;) {
    const ssize_t n = ::read(0, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw std::runtime_error(std::string("reading the secrets: ") + std::strerror(errno));
    if (n == 0) return text;
    text.append(buffer, static_cast<std::size_t>(n));
    if (text.size() > (1u << 20)) throw std::runtime_error("reading the secrets: more than 1 MiB");
  }
}

void write_all(int fd, std::string_view text) {
  while (!text.empty()) {
    const ssize_t n = ::write(fd, text.data(), text.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw std::runtime_error(std::string("writing the CA certificate: ") + std::strerror(errno));
    text.remove_prefix(static_cast<std::size_t>(n));
  }
}

}  // namespace

int main(int argc, char** argv) {
  // Nothing of this process may be read by another of the same uid (there
  // is none, but a core dump or /proc/PID/mem would hold the values).
  ::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  try {
    relay::RelayOptions options;
    int listen_fd = 3;
    for (int i = 1; i < argc; ++i) {
      const std::string_view arg = argv[i];
      if (i + 1 >= argc) throw std::invalid_argument(std::string(arg) + ": needs a value");
      const char* value = argv[++i];
      if (arg == "--trust") options.trust_bundle = value;
      else if (arg == "--listen-fd") listen_fd = to_fd(arg, value);
      else if (arg == "--record-fd") options.record_fd = to_fd(arg, value);
      else throw std::invalid_argument("unknown option " + std::string(arg));
    }
    const auto doc = cagent::dnsguard::parse_secrets(read_all_stdin());
    std::vector<relay::Secret> secrets;
    std::set<std::string> hosts;
    for (const auto& s : doc.secrets) {
      secrets.push_back(relay::Secret{s.name, s.placeholder, s.value, s.hosts});
      hosts.insert(s.hosts.begin(), s.hosts.end());
    }
    const relay::SessionCa ca(std::vector<std::string>(hosts.begin(), hosts.end()));

    boost::asio::io_context io(1);
    boost::asio::ip::tcp::acceptor listener(io);
    listener.assign(boost::asio::ip::tcp::v4(), listen_fd);
    relay::Relay server(io, listener, std::move(secrets), ca, options);
    server.start();
    boost::asio::signal_set stop(io, SIGTERM, SIGINT);
    stop.async_wait([&](const boost::system::error_code&, int) { io.stop(); });

    write_all(1, ca.certificate_pem());
    ::dup2(2, 1);  // closes the pipe: cage-init reads its end, the relay is ready
    io.run();
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "cagent-relay: " << e.what() << "\n";
    return 1;
  }
}
