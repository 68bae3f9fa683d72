// dnsguard — the allowlisting stub resolver (see dnsguard/README.md).
//
//   dnsguard --config FILE           serve until SIGTERM/SIGINT
//   dnsguard --config FILE --check   validate FILE; exit 0, or 1 with one line naming the bad key
//
// Wiring only: config from dnsguard/, the set updates from nft/.

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <exception>
#include <string>
#include <string_view>
#include <vector>

#include "answer_sink.hpp"
#include "config.hpp"
#include "log.hpp"
#include "nft/nft.hpp"
#include "server.hpp"

namespace {

namespace dg = cagent::dnsguard;
namespace nft = cagent::nft;

// AnswerSink over nft::SetUpdater: add() returns after the kernel ACKed the
// batch, which is the synchronous contract AnswerSink promises the server.
class NftSink final : public dg::AnswerSink {
 public:
  NftSink(const dg::Config& config, dg::Logger& log, nft::SetUpdater::RefreshMode mode)
      : updater_(config.nft_table, config.nft_set4, config.nft_set6), log_(log) {
    updater_.set_refresh_mode(mode);
  }

  bool allow(std::span<const dg::AllowedAddress> addresses) noexcept override {
    held_.resize(addresses.size());
    return hold(addresses, held_);
  }

  // Floors go to the updater as min_timeout; what it reports as held (ms)
  // goes back rounded down to whole seconds.
  bool hold(std::span<const dg::AllowedAddress> addresses,
            std::span<std::uint32_t> held_s) noexcept override {
    try {
      elements_.clear();
      for (const auto& a : addresses) {
        nft::SetElement e;
        e.addr.family = a.v6 ? nft::Family::v6 : nft::Family::v4;
        e.addr.bytes = a.bytes;
        e.timeout = std::chrono::seconds(a.timeout_s);
        e.min_timeout = std::chrono::seconds(a.min_timeout_s);
        elements_.push_back(e);
      }
      held_ms_.resize(elements_.size());
      updater_.add(elements_, held_ms_);
      for (std::size_t i = 0; i < held_ms_.size() && i < held_s.size(); ++i)
        held_s[i] = static_cast<std::uint32_t>(std::min<std::int64_t>(held_ms_[i].count() / 1000, 0xFFFFFFFF));
      return true;
    } catch (const std::exception& e) {
      log_.event(dg::LogLevel::error, std::string("nft: ") + e.what());
      return false;
    }
  }

 private:
  nft::SetUpdater updater_;
  dg::Logger& log_;
  std::vector<nft::SetElement> elements_;
  std::vector<std::chrono::milliseconds> held_ms_;
  std::vector<std::uint32_t> held_;
};

// CAGENT_NFT_REFRESH=delete_add|expiration|automatic (default) forces how
// set elements are refreshed; the tests use it to run the pre-6.12 path
// (most users' kernels) on a newer one.
nft::SetUpdater::RefreshMode refresh_mode_from(const char* value) {
  const std::string_view v = value == nullptr ? "" : value;
  if (v.empty() || v == "automatic") return nft::SetUpdater::RefreshMode::automatic;
  if (v == "delete_add") return nft::SetUpdater::RefreshMode::delete_add;
  if (v == "expiration") return nft::SetUpdater::RefreshMode::expiration;
  throw std::invalid_argument("CAGENT_NFT_REFRESH: expected automatic, delete_add or expiration, got '" +
                              std::string(v) + "'");
}

int usage() {
  std::fputs("usage: dnsguard --config FILE [--check]\n", stderr);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
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
    const auto mode = refresh_mode_from(std::getenv("CAGENT_NFT_REFRESH"));
    dg::Logger log(config.log_file, config.log_level);
    NftSink sink(config, log, mode);
    dg::run_daemon(config, sink, log);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "dnsguard: %s\n", e.what());
    return 1;
  }
}
