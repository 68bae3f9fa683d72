// dnsguard — the allowlisting stub resolver (see dnsguard/README.md).
//
//   dnsguard --config FILE           serve until SIGTERM/SIGINT
//   dnsguard --config FILE --check   validate FILE; exit 0, or 1 with one line naming the bad key
//   dnsguard --control SOCKET allow|deny|refuse PATTERN… | list | watch
//                                    one command to a running dnsguard (root only, see
//                                    dnsguard/control.hpp); prints its reply, the control
//                                    protocol's JSON line (dnsguard/contracts.hpp), which
//                                    the host reads; exit 0 ok, 2 refused (invalid
//                                    pattern…), 1 unreachable or an unreadable reply.
//                                    watch: the reply and then every watch event line
//                                    until stdin ends (ask mode; contracts.hpp)
//
// Wiring only: config from dnsguard/, the set updates through NftSink
// (cmd/nft_sink.hpp, the one place dnsguard/ and nft/ meet).

#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <stdexcept>
#include <string>
#include <string_view>

#include "cmd/nft_sink.hpp"
#include "dnsguard/config.hpp"
#include "dnsguard/control.hpp"
#include "dnsguard/log.hpp"
#include "dnsguard/server.hpp"

namespace {

namespace dg = cagent::dnsguard;

// A whole number of seconds, 1 to a day; anything else is an error naming
// the variable.
long parse_seconds(const char* what, std::string_view text) {
  long value = 0;
  const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || ptr != text.data() + text.size() || value < 1 || value > 86400)
    throw std::invalid_argument(std::string(what) + ": expected whole seconds from 1 to 86400, got '" +
                                std::string(text) + "'");
  return value;
}

int usage() {
  std::fputs("usage: dnsguard --config FILE [--check]\n"
             "       dnsguard --control SOCKET allow|deny|refuse PATTERN... | list | watch\n", stderr);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 4 && std::string_view(argv[1]) == "--control") {
    const auto op = dg::parse_control_op(argv[3]);
    if (!op) return usage();
    dg::ControlRequest request{*op, {argv + 4, argv + argc}};
    try {
      if (*op == dg::ControlOp::watch) return dg::control_watch(argv[2], 0, 1);
      const dg::ControlReply reply = dg::control_request(argv[2], request);
      std::fputs(dg::write_control_reply(reply).c_str(), stdout);
      return reply.ok ? 0 : 2;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "dnsguard: %s\n", e.what());
      return 1;
    }
  }
  std::string config_path;
  bool check = false;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--config" && i + 1 < argc) config_path = argv[++i];
    else if (arg.starts_with("--config=")) config_path = arg.substr(9);
    else if (arg == "--check") check = true;
    else return usage();
  }
  if (config_path.empty()) return usage();
  try {
    dg::Config config = dg::load_config(config_path);
    if (check) {
      std::printf("%s: ok\n", config_path.c_str());
      return 0;
    }
    // The environment is read here, once; the library takes plain values.
    const char* refresh = std::getenv("CAGENT_NFT_REFRESH");
    const auto mode = cagent::cmd::refresh_mode_from(refresh == nullptr ? "" : refresh);
    dg::ServerTuning tuning;
    // Tests only: the gate's relay idle timeout, in seconds (default 900).
    if (const char* idle = std::getenv("CAGENT_GATE_IDLE_TIMEOUT"); idle != nullptr) {
      tuning.relay_idle_timeout = std::chrono::seconds(parse_seconds("CAGENT_GATE_IDLE_TIMEOUT", idle));
    }
    dg::Logger log(config.log_file, config.log_level);
    cagent::cmd::NftSink sink(config, log, mode);
    cagent::cmd::NftFirewallCounters firewall(config);
    dg::run_daemon(config, sink, log, &firewall, tuning);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "dnsguard: %s\n", e.what());
    return 1;
  }
}
