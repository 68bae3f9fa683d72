#pragma once
// The nft-backed AnswerSink: dnsguard's allowed answers → nft::SetUpdater.
//
// Why it lives here, in a small library next to the mains: it is the one
// piece that joins two dependency islands. dnsguard/ never includes nft
// headers (cmd/README.md, "Folders"), and nft/ knows nothing of DNS, so the
// adaptor can sit in neither; cmd/ is the layer allowed to see both. It
// stays a library (not code in cmd/dnsguard.cpp) so the conversion is
// unit-tested and the main stays wiring. The conversions are free functions over plain values; the
// class only holds the updater and the scratch vectors (no allocation per
// answer once warm).
//
//   AllowedAddress{v6, bytes, timeout_s, min_timeout_s}
//     ─to_set_element()─▶ nft::SetElement ─SetUpdater::add()─▶ kernel (ACKed)
//     held (ms) ─held_seconds()─▶ held_s (whole seconds, rounded down)

#include <chrono>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "dnsguard/answer_sink.hpp"
#include "dnsguard/decisions.hpp"
#include "dnsguard/config.hpp"
#include "dnsguard/log.hpp"
#include "nft/nft.hpp"

namespace cagent::cmd {

// One address as the set updater takes it: same bytes, seconds as durations.
nft::SetElement to_set_element(const dnsguard::AllowedAddress& address) noexcept;

// What the updater reports as held, in whole seconds rounded down (a client
// may never be told a TTL the set does not cover), saturated at 2^32-1.
std::uint32_t held_seconds(std::chrono::milliseconds held) noexcept;

// CAGENT_NFT_REFRESH=delete_add|expiration|automatic (empty/unset:
// automatic) forces how set elements are refreshed; the tests use it to run
// the pre-6.12 path (most users' kernels) on a newer one. Throws
// std::invalid_argument naming the variable for anything else.
nft::SetUpdater::RefreshMode refresh_mode_from(std::string_view value);

// AnswerSink over nft::SetUpdater: hold() returns after the kernel ACKed the
// batch, which is the synchronous contract AnswerSink promises the server.
// A netlink failure is logged and reported as false (the client gets
// SERVFAIL: fail closed); nothing throws out of hold()/allow().
class NftSink final : public dnsguard::AnswerSink {
 public:
  NftSink(const dnsguard::Config& config, dnsguard::Logger& log, nft::SetUpdater::RefreshMode mode);

  bool allow(std::span<const dnsguard::AllowedAddress> addresses) noexcept override;
  // Floors go to the updater as min_timeout; what it reports as held goes
  // back through held_seconds().
  bool hold(std::span<const dnsguard::AllowedAddress> addresses,
            std::span<std::uint32_t> held_s) noexcept override;
  bool evict(std::span<const dnsguard::IpAddress> addresses) noexcept override;
  std::vector<std::pair<dnsguard::IpAddress, std::chrono::milliseconds>> held_now() noexcept override;

 private:
  nft::SetUpdater updater_;
  dnsguard::Logger& log_;
  std::vector<nft::SetElement> elements_;
  std::vector<std::chrono::milliseconds> held_ms_;
  std::vector<std::uint32_t> held_;
};

// The firewall's own refusals for dnsguard's decision record: the ruleset's
// counters (nft::RefusalReader) as dnsguard::FirewallFlow values.
class NftFirewallCounters final : public dnsguard::FirewallCounters {
 public:
  explicit NftFirewallCounters(const dnsguard::Config& config);
  bool read(std::uint64_t& total, std::vector<dnsguard::FirewallFlow>& flows) noexcept override;

 private:
  static nft::RulesetSpec names(const dnsguard::Config& config);
  nft::RefusalReader reader_;
};

}  // namespace cagent::cmd
