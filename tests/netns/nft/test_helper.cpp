// nft-test-helper: drives nft/ from shell-scripted tests (packet_test.sh).
//   nft-test-helper install [--uid N] [--listen-port N] [--upstream ADDR:PORT]... [--cidr ADDR/LEN]... [--onlink6 ADDR/LEN]... [--inbound PORT/PROTO]... [--gate-port N --gated PORT... [--relay PORT,UID]] [--nested LINK,ADDR,BASE/LEN] [--local-resolver ADDR,UID]...
//   nft-test-helper add ADDR SECONDS [ADDR SECONDS]...
// Runs in whatever network namespace it is started in (ip netns exec).
#include <charconv>
#include <cstdint>
#include <exception>
#include <iostream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "nft/nft.hpp"

using namespace cagent::nft;

namespace {

template <typename T>
T number(std::string_view s) {
  T v{};
  const auto r = std::from_chars(s.data(), s.data() + s.size(), v);
  if (r.ec != std::errc{} || r.ptr != s.data() + s.size()) throw std::invalid_argument("bad number: " + std::string(s));
  return v;
}

Address address(std::string_view s) {
  auto a = parse_address(s);
  if (!a) throw std::invalid_argument("bad address: " + std::string(s));
  return *a;
}

int install(const std::vector<std::string_view>& args) {
  RulesetSpec spec;
  for (std::size_t i = 0; i + 1 < args.size(); i += 2) {
    const std::string_view key = args[i];
    const std::string_view val = args[i + 1];
    if (key == "--uid") {
      spec.dnsguard_uid = number<std::uint32_t>(val);
    } else if (key == "--listen-port") {
      spec.listen_port = number<std::uint16_t>(val);
    } else if (key == "--upstream") {
      const auto colon = val.rfind(':');
      if (colon == std::string_view::npos) throw std::invalid_argument("--upstream needs ADDR:PORT");
      spec.upstreams.push_back({address(val.substr(0, colon)), number<std::uint16_t>(val.substr(colon + 1))});
    } else if (key == "--cidr") {
      const auto slash = val.find('/');
      if (slash == std::string_view::npos) throw std::invalid_argument("--cidr needs ADDR/LEN");
      spec.static_cidrs.push_back({address(val.substr(0, slash)), number<std::uint8_t>(val.substr(slash + 1))});
    } else if (key == "--inbound") {  // PORT/tcp|udp
      const auto slash = val.find('/');
      if (slash == std::string_view::npos) throw std::invalid_argument("--inbound needs PORT/PROTO");
      const std::uint16_t port = number<std::uint16_t>(val.substr(0, slash));
      spec.inbound.push_back({static_cast<std::uint8_t>(val.substr(slash + 1) == "udp" ? 17 : 6), port, port});
    } else if (key == "--gate-port") {
      spec.gate_port = number<std::uint16_t>(val);
    } else if (key == "--gated") {  // one gated port per option
      spec.gated_ports.push_back(number<std::uint16_t>(val));
    } else if (key == "--relay") {  // the secret relay: PORT,UID
      const auto comma = val.find(',');
      if (comma == std::string_view::npos) throw std::invalid_argument("--relay needs PORT,UID");
      spec.relay_port = number<std::uint16_t>(val.substr(0, comma));
      spec.relay_uid = number<std::uint32_t>(val.substr(comma + 1));
    } else if (key == "--nested") {  // the cage's end of the nested link: LINK,ADDR,BASE/LEN
      const auto c1 = val.find(',');
      const auto c2 = val.find(',', c1 == std::string_view::npos ? c1 : c1 + 1);
      const auto slash = val.rfind('/');
      if (c1 == std::string_view::npos || c2 == std::string_view::npos || slash == std::string_view::npos || slash < c2)
        throw std::invalid_argument("--nested needs LINK,ADDR,BASE/LEN");
      spec.nested_link = std::string(val.substr(0, c1));
      spec.nested_address = address(val.substr(c1 + 1, c2 - c1 - 1));
      spec.nested_subnet = {address(val.substr(c2 + 1, slash - c2 - 1)), number<std::uint8_t>(val.substr(slash + 1))};
    } else if (key == "--local-resolver") {  // ADDR,UID: an upstream served in this namespace
      const auto comma = val.find(',');
      if (comma == std::string_view::npos) throw std::invalid_argument("--local-resolver needs ADDR,UID");
      spec.local_resolvers.push_back({address(val.substr(0, comma)), number<std::uint32_t>(val.substr(comma + 1))});
    } else if (key == "--onlink6") {
      const auto slash = val.find('/');
      if (slash == std::string_view::npos) throw std::invalid_argument("--onlink6 needs ADDR/LEN");
      spec.onlink6.push_back({address(val.substr(0, slash)), number<std::uint8_t>(val.substr(slash + 1))});
    } else {
      throw std::invalid_argument("unknown option " + std::string(key));
    }
  }
  if (args.size() % 2 != 0) throw std::invalid_argument("option without value");
  install_ruleset(spec);
  return 0;
}

int add(const std::vector<std::string_view>& args) {
  if (args.empty() || args.size() % 2 != 0) throw std::invalid_argument("add ADDR SECONDS...");
  std::vector<SetElement> elements;
  for (std::size_t i = 0; i < args.size(); i += 2) {
    elements.push_back({address(args[i]), std::chrono::seconds(number<std::int64_t>(args[i + 1]))});
  }
  SetUpdater up("cagent", "allow4", "allow6");
  up.add(elements);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const std::vector<std::string_view> args(argv + 1, argv + argc);
    if (args.empty()) throw std::invalid_argument("usage: nft-test-helper install|add ...");
    const std::vector<std::string_view> rest(args.begin() + 1, args.end());
    if (args[0] == "install") return install(rest);
    if (args[0] == "add") return add(rest);
    throw std::invalid_argument("unknown command " + std::string(args[0]));
  } catch (const std::exception& e) {
    std::cerr << "nft-test-helper: " << e.what() << "\n";
    return 1;
  }
}
