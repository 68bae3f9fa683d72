#pragma once
// A tree walk on several threads: each thread walks a stack of directories
// of its own, depth first, and hands the shallower half of it to a shared
// stack only while another thread waits for work (see work()).
//
// Used by the workspace scan at the start (scan.cpp) and by the walk for new
// git repositories at the end (git_markers.cpp). Both spend their time in
// the kernel (open, getdents), one directory at a time, so a second core
// nearly halves them on a big tree. The calling thread works too and brings
// in the helpers only once the tree proved larger than a few directories:
// a small workspace is done before a thread would have started.
//
// The order in which directories are visited is free: each user makes its
// result independent of it (the scan replays its records in name order, the
// git walk sorts what it found).

#include <sched.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <exception>
#include <mutex>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

namespace cagent::launcher::host {

// The CPUs this process may run on (its affinity mask, as taskset sets it).
inline unsigned usable_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (::sched_getaffinity(0, sizeof set, &set) == 0) return static_cast<unsigned>(CPU_COUNT(&set));
  return std::thread::hardware_concurrency();
}

template <typename Item>
class ParallelWalk {
 public:
  // `max_threads` counts the calling thread; helpers start once
  // `items_before_helpers` items were visited and more are waiting.
  ParallelWalk(unsigned max_threads, std::size_t items_before_helpers)
      : max_threads_(max_threads), items_before_helpers_(items_before_helpers) {}

  // Visits `first` and everything the visits find. `make_visitor()` is
  // called once per thread (its scratch space stays on that thread) and
  // returns a callable `void(Item&, std::vector<Item>& found)`, where
  // `found` comes empty and takes the items to visit next, first in order
  // first. Returns once every item is visited and every helper joined. The
  // first exception a visit throws ends the walk (what is waiting is
  // dropped) and is thrown here.
  template <typename MakeVisitor>
  void run(Item first, MakeVisitor make_visitor) {
    pending_.push_back(std::move(first));
    std::vector<std::jthread> helpers;
    work(make_visitor, &helpers);
    // Joined before `failure_` is read (and on the way out of an exception
    // by jthread's destructor).
    for (std::jthread& t : helpers) t.join();
    if (failure_) std::rethrow_exception(failure_);
  }

 private:
  // Each thread walks a stack of its own, depth first, and takes the lock
  // only to get work when its stack ran dry, or to hand over the shallower
  // half of its stack (the larger subtrees) while another thread waits for
  // work: a visit that costs a few microseconds (a listing kept from the
  // last walk) would otherwise spend more on the lock than on itself.
  template <typename MakeVisitor>
  void work(MakeVisitor& make_visitor, std::vector<std::jthread>* helpers) {
    std::vector<Item> local, found;
    std::size_t visited = 0;
    bool started = false;
    // (Made before the lock is taken: it may allocate.)
    auto visit = make_visitor();
    for (;;) {
      if (local.empty()) {
        std::unique_lock lock(mutex_);
        ++idle_;
        wake_.wait(lock, [&] { return !pending_.empty() || busy_ == 0; });
        --idle_;
        if (pending_.empty()) break;  // nothing left, nobody walking: done
        local.push_back(std::move(pending_.back()));
        pending_.pop_back();
        ++busy_;
      }
      Item item = std::move(local.back());
      local.pop_back();
      found.clear();
      try {
        visit(item, found);
      } catch (...) {
        const std::lock_guard lock(mutex_);
        if (!failure_) failure_ = std::current_exception();
        failed_ = true;
        pending_.clear();
      }
      if (failed_) local.clear();  // the walk ends: what waits is dropped
      // Reversed, so that the first found is taken next: depth first,
      // which keeps the stack short.
      for (auto it = found.rbegin(); it != found.rend(); ++it) local.push_back(std::move(*it));
      if (failed_) local.clear();
      // The helpers, once the tree proved larger than a few items and there
      // is work to hand over.
      const bool start = helpers != nullptr && !started && ++visited >= items_before_helpers_ && local.size() > 1;
      started = started || start;
      if (local.empty() || start || (idle_.load(std::memory_order_relaxed) > 0 && local.size() > 1)) {
        const std::lock_guard lock(mutex_);
        if (local.empty()) {
          --busy_;
        } else if (!failed_) {
          // The bottom of the stack: the shallowest items, the most work each.
          const std::size_t half = local.size() / 2;
          for (std::size_t i = 0; i < half; ++i) pending_.push_back(std::move(local[i]));
          local.erase(local.begin(), local.begin() + static_cast<std::ptrdiff_t>(half));
        }
        if (start) start_helpers(make_visitor, *helpers);
        wake_.notify_all();
      }
    }
  }

  template <typename MakeVisitor>
  void start_helpers(MakeVisitor& make_visitor, std::vector<std::jthread>& helpers) {
    const unsigned threads = std::clamp(usable_cpus(), 1U, std::max(max_threads_, 1U));
    try {
      for (unsigned i = 1; i < threads; ++i) {
        helpers.emplace_back([this, &make_visitor] { work(make_visitor, nullptr); });
      }
    } catch (const std::system_error&) {
      // No thread to be had: the threads there are finish the walk.
    }
  }

  const unsigned max_threads_;
  const std::size_t items_before_helpers_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::vector<Item> pending_;  // shared: handed over by a thread with more than it needs
  std::size_t busy_ = 0;       // threads with a stack of their own that is not empty
  std::atomic<unsigned> idle_{0};  // threads waiting for work (read without the lock)
  std::atomic<bool> failed_{false};
  std::exception_ptr failure_;
};

}  // namespace cagent::launcher::host
