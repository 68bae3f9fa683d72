#include "cmd/nft_sink.hpp"

#include <algorithm>
#include <exception>
#include <stdexcept>
#include <string>

#include "dnsguard/gate_bindings.hpp"

namespace cagent::cmd {

// The gate's bindings must live exactly as long as the set elements that
// justify them: dnsguard/ cannot see nft's constant, so the one place that
// sees both checks they agree.
static_assert(dnsguard::kBindingGrace == nft::set_grace, "gate bindings and set elements must expire together");

nft::SetElement to_set_element(const dnsguard::AllowedAddress& address) noexcept {
  nft::SetElement e;
  e.addr.family = address.v6 ? nft::Family::v6 : nft::Family::v4;
  e.addr.bytes = address.bytes;
  e.timeout = std::chrono::seconds(address.timeout_s);
  e.min_timeout = std::chrono::seconds(address.min_timeout_s);
  return e;
}

std::uint32_t held_seconds(std::chrono::milliseconds held) noexcept {
  const std::int64_t s = std::chrono::duration_cast<std::chrono::seconds>(held).count();
  return static_cast<std::uint32_t>(std::clamp<std::int64_t>(s, 0, 0xFFFFFFFF));
}

nft::SetUpdater::RefreshMode refresh_mode_from(std::string_view value) {
  if (value.empty() || value == "automatic") return nft::SetUpdater::RefreshMode::automatic;
  if (value == "delete_add") return nft::SetUpdater::RefreshMode::delete_add;
  if (value == "expiration") return nft::SetUpdater::RefreshMode::expiration;
  throw std::invalid_argument("CAGENT_NFT_REFRESH: expected automatic, delete_add or expiration, got '" +
                              std::string(value) + "'");
}

NftSink::NftSink(const dnsguard::Config& config, dnsguard::Logger& log, nft::SetUpdater::RefreshMode mode)
    : updater_(config.nft_table, config.nft_set4, config.nft_set6), log_(log) {
  updater_.set_refresh_mode(mode);
}

bool NftSink::allow(std::span<const dnsguard::AllowedAddress> addresses) noexcept {
  try {
    held_.resize(addresses.size());
  } catch (const std::exception&) {
    return false;
  }
  return hold(addresses, held_);
}

bool NftSink::hold(std::span<const dnsguard::AllowedAddress> addresses,
                   std::span<std::uint32_t> held_s) noexcept {
  try {
    elements_.clear();
    for (const auto& a : addresses) elements_.push_back(to_set_element(a));
    held_ms_.resize(elements_.size());
    updater_.add(elements_, held_ms_);
    for (std::size_t i = 0; i < held_ms_.size() && i < held_s.size(); ++i) held_s[i] = held_seconds(held_ms_[i]);
    return true;
  } catch (const std::exception& e) {
    log_.event(dnsguard::LogLevel::error, std::string("nft: ") + e.what());
    return false;
  }
}

bool NftSink::evict(std::span<const dnsguard::IpAddress> addresses) noexcept {
  std::vector<nft::Address> out;
  try {
    out.reserve(addresses.size());
    for (const auto& a : addresses) out.push_back(nft::Address{a.v6 ? nft::Family::v6 : nft::Family::v4, a.bytes});
    updater_.remove(out);
  } catch (const std::exception& e) {
    log_.event(dnsguard::LogLevel::error, std::string("nft: ") + e.what());
    return false;
  }
  // Out of the sets first, then their tracked connections: a packet of one
  // is then judged as new and refused (never re-admitted in between). The
  // sets are what every new connection is judged by, so a failure here
  // only leaves open connections open — said in the log, not hidden.
  try {
    const std::size_t ended = nft::end_connections_to(out);
    if (ended > 0) log_.always("control: ended " + std::to_string(ended) + " open connections to addresses taken back");
  } catch (const std::exception& e) {
    log_.always(std::string("control: open connections to addresses taken back stay open (") + e.what() + ")");
  }
  return true;
}

std::vector<std::pair<dnsguard::IpAddress, std::chrono::milliseconds>> NftSink::held_now() noexcept {
  std::vector<std::pair<dnsguard::IpAddress, std::chrono::milliseconds>> held;
  try {
    for (const nft::Family family : {nft::Family::v4, nft::Family::v6}) {
      for (const nft::ListedElement& e : updater_.list(family)) {
        dnsguard::IpAddress addr;
        addr.v6 = e.addr.family == nft::Family::v6;
        addr.bytes = e.addr.bytes;
        held.emplace_back(addr, e.expires);
      }
    }
  } catch (const std::exception& e) {
    // Nothing is bound again: connections to addresses resolved before the
    // restart are refused until their names are looked up again (closed).
    log_.always(std::string("nft: cannot list the sets: ") + e.what());
    held.clear();
  }
  return held;
}

nft::RulesetSpec NftFirewallCounters::names(const dnsguard::Config& config) {
  nft::RulesetSpec spec;  // the refused_* names are the ruleset's defaults
  spec.table = config.nft_table;
  return spec;
}

NftFirewallCounters::NftFirewallCounters(const dnsguard::Config& config) : reader_(names(config)) {}

bool NftFirewallCounters::read(std::uint64_t& total, std::vector<dnsguard::FirewallFlow>& flows) noexcept {
  try {
    const nft::Refusals r = reader_.read();
    total = r.total;
    for (const nft::RefusedFlow& f : r.flows)
      flows.push_back(dnsguard::FirewallFlow{dnsguard::IpAddress{f.addr.family == nft::Family::v6, f.addr.bytes},
                                             f.l4proto, f.port, f.packets});
    return true;
  } catch (const std::exception&) {
    return false;
  }
}

}  // namespace cagent::cmd
