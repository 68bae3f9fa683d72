// The work stack both tree walks share: every item visited exactly once,
// whatever thread took it, and a visit's exception ends the walk and
// reaches the caller after every helper is joined.
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <chrono>
#include <numeric>
#include <set>
#include <thread>
#include <stdexcept>
#include <vector>

#include "launcher/host/parallel_walk.hpp"

using cagent::launcher::host::ParallelWalk;

namespace {

// A complete tree of `fanout` children per node, `depth` levels below the
// root: node n's children are n * fanout + 1 ... n * fanout + fanout.
struct Tree {
  unsigned fanout, depth;
  unsigned size() const {
    unsigned total = 1, level = 1;
    for (unsigned d = 0; d < depth; ++d) total += (level *= fanout);
    return total;
  }
};

}  // namespace

TEST_CASE("parallel walk: every item is visited once, on up to the threads allowed") {
  const Tree tree{4, 6};  // 5461 items: the helpers start
  for (unsigned threads : {1U, 2U, 4U}) {
    CAPTURE(threads);
    std::mutex m;
    std::vector<unsigned> seen;
    ParallelWalk<unsigned>(threads, 16).run(0U, [&] {
      return [&](unsigned n, std::vector<unsigned>& found) {
        {
          const std::lock_guard lock(m);
          seen.push_back(n);
        }
        if (n * tree.fanout + tree.fanout < tree.size()) {
          for (unsigned c = 1; c <= tree.fanout; ++c) found.push_back(n * tree.fanout + c);
        }
      };
    });
    std::sort(seen.begin(), seen.end());
    std::vector<unsigned> want(tree.size());
    std::iota(want.begin(), want.end(), 0U);
    CHECK(seen == want);
  }
}

TEST_CASE("parallel walk: the first exception of a visit ends the walk and is thrown to the caller") {
  const Tree tree{4, 6};
  std::atomic<unsigned> visits{0};
  CHECK_THROWS_WITH_AS(ParallelWalk<unsigned>(4, 16).run(0U, [&] {
    return [&](unsigned n, std::vector<unsigned>& found) {
      ++visits;
      if (n == 100) throw std::runtime_error("cannot read 100");
      if (n * tree.fanout + tree.fanout < tree.size()) {
        for (unsigned c = 1; c <= tree.fanout; ++c) found.push_back(n * tree.fanout + c);
      }
    };
  }), "cannot read 100", std::runtime_error);
  // What waited when it failed was dropped (visits in flight on other
  // threads end first).
  CHECK(visits.load() < tree.size());
}

TEST_CASE("parallel walk: cheap visits still spread over the threads allowed") {
  // Visits of a few microseconds (a listing reused from the last walk):
  // each thread walks its own stack and hands work over only to a thread
  // that waits, so both threads visit — where the machine has two CPUs.
  if (cagent::launcher::host::usable_cpus() < 2) {
    MESSAGE("skipped: this process may run on one CPU only");
    return;
  }
  const Tree tree{4, 7};  // 21845 items
  std::mutex m;
  std::set<std::thread::id> threads;
  std::atomic<unsigned> visits{0};
  ParallelWalk<unsigned>(2, 16).run(0U, [&] {
    return [&, mine = false](unsigned n, std::vector<unsigned>& found) mutable {
      if (!mine) {
        const std::lock_guard lock(m);
        threads.insert(std::this_thread::get_id());
        mine = true;
      }
      ++visits;
      const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(20);
      while (std::chrono::steady_clock::now() < until) {
      }
      if (n * tree.fanout + tree.fanout < tree.size()) {
        for (unsigned c = 1; c <= tree.fanout; ++c) found.push_back(n * tree.fanout + c);
      }
    };
  });
  CHECK(visits.load() == tree.size());
  CHECK(threads.size() == 2);
}
