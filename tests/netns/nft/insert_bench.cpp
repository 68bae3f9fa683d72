// nft-insert-bench: what one SetUpdater::add() transaction costs, by batch
// size, for addresses the kernel has never seen (each call really reaches
// the kernel), plus the cost of the cache-hit path (nothing sent).
//   nft-insert-bench [--quick]
// Runs in a private network namespace of its own (needs root).
#include <sched.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <iostream>
#include <string_view>
#include <vector>

#include "nft/nft.hpp"

using namespace cagent::nft;
using Clock = std::chrono::steady_clock;

namespace {

// 2001:db8:bb::<n>, documentation addresses, each one new.
Address next_address(std::uint32_t& n) {
  Address a = *parse_address("2001:db8:bb::");
  ++n;
  a.bytes[12] = static_cast<std::uint8_t>(n >> 24);
  a.bytes[13] = static_cast<std::uint8_t>(n >> 16);
  a.bytes[14] = static_cast<std::uint8_t>(n >> 8);
  a.bytes[15] = static_cast<std::uint8_t>(n);
  return a;
}

double percentile(std::vector<double>& v, double p) {
  std::sort(v.begin(), v.end());
  const auto i = static_cast<std::size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

}  // namespace

int main(int argc, char** argv) {
  const bool quick = argc > 1 && std::string_view(argv[1]) == "--quick";
  if (unshare(CLONE_NEWNET) != 0) {
    std::cout << "skipped: needs root (CAP_NET_ADMIN) to create a network namespace\n";
    return 77;
  }
  try {
    RulesetSpec spec;
    spec.set_size = 1u << 22;  // room for every element of the run
    install_ruleset(spec);
    SetUpdater up(spec.table, spec.set4, spec.set6);
    std::uint32_t n = 0;
    struct Case {
      std::size_t batch;
      std::size_t rounds;
    };
    const std::vector<Case> cases = quick ? std::vector<Case>{{1, 20}, {8, 20}, {1000, 2}}
                                          : std::vector<Case>{{1, 2000}, {8, 2000}, {1000, 200}};
    std::printf("%-10s %8s %10s %10s %10s %14s\n", "elements", "rounds", "p50_us", "p99_us", "mean_us", "elements/s");
    std::vector<SetElement> batch;
    for (const Case& c : cases) {
      std::vector<double> us;
      us.reserve(c.rounds);
      for (std::size_t r = 0; r < c.rounds; ++r) {
        batch.clear();
        for (std::size_t i = 0; i < c.batch; ++i) batch.push_back({next_address(n), std::chrono::seconds(3600)});
        const auto t0 = Clock::now();
        up.add(batch);
        const auto t1 = Clock::now();
        us.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
      }
      double sum = 0;
      for (double x : us) sum += x;
      const double mean = sum / static_cast<double>(us.size());
      std::printf("%-10zu %8zu %10.1f %10.1f %10.1f %14.0f\n", c.batch, c.rounds, percentile(us, 0.5),
                  percentile(us, 0.99), mean, static_cast<double>(c.batch) / mean * 1e6);
    }
    // Cache hit: an address already held for longer than requested.
    const std::size_t hits = quick ? 1000 : 1000000;
    const SetElement held[] = {{next_address(n), std::chrono::seconds(3600)}};
    up.add(held);
    const SetElement again[] = {{held[0].addr, std::chrono::seconds(60)}};
    const auto t0 = Clock::now();
    for (std::size_t i = 0; i < hits; ++i) up.add(again);
    const auto t1 = Clock::now();
    std::printf("cache hit (nothing sent): %.0f ns per add() over %zu calls\n",
                std::chrono::duration<double, std::nano>(t1 - t0).count() / static_cast<double>(hits), hits);
    const auto listed = up.list(Family::v6).size();
    if (listed != n) {
      std::cerr << "nft-insert-bench: kernel holds " << listed << " elements, expected " << n << "\n";
      return 1;
    }
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "nft-insert-bench: " << e.what() << "\n";
    return 1;
  }
}
