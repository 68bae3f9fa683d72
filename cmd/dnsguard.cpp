// dnsguard — the allowlisting stub resolver (see dnsguard/README.md).
//
//   dnsguard --config FILE           serve until SIGTERM/SIGINT
//   dnsguard --config FILE --check   validate FILE; exit 0, or 1 with one line naming the bad key
//
// Wiring only: config from dnsguard/, the set updates from nft/.

#include <cstdio>
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
  NftSink(const dg::Config& config, dg::Logger& log)
      : updater_(config.nft_table, config.nft_set4, config.nft_set6), log_(log) {}

  bool allow(std::span<const dg::AllowedAddress> addresses) noexcept override {
    try {
      elements_.clear();
      for (const auto& a : addresses) {
        nft::SetElement e;
        e.addr.family = a.v6 ? nft::Family::v6 : nft::Family::v4;
        e.addr.bytes = a.bytes;
        e.timeout = std::chrono::seconds(a.timeout_s);
        elements_.push_back(e);
      }
      updater_.add(elements_);
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
};

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
    dg::Logger log(config.log_file, config.log_level);
    NftSink sink(config, log);
    dg::run_daemon(config, sink, log);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "dnsguard: %s\n", e.what());
    return 1;
  }
}
