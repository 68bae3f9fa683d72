#pragma once
// A tree walk on several threads: one stack of directories waiting to be
// read, each thread takes one, reads it and puts back what it found below.
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
  template <typename MakeVisitor>
  void work(MakeVisitor& make_visitor, std::vector<std::jthread>* helpers) {
    std::vector<Item> found;
    std::size_t visited = 0;
    // (Made before the lock is taken: it may allocate.)
    auto visit = make_visitor();
    std::unique_lock lock(mutex_);
    for (;;) {
      wake_.wait(lock, [&] { return !pending_.empty() || busy_ == 0; });
      if (pending_.empty()) break;  // nothing left, nobody visiting: done
      Item item = std::move(pending_.back());
      pending_.pop_back();
      ++busy_;
      lock.unlock();
      found.clear();
      std::exception_ptr failed;
      try {
        visit(item, found);
      } catch (...) {
        failed = std::current_exception();
      }
      lock.lock();
      --busy_;
      if (failed) {
        if (!failure_) failure_ = failed;
        pending_.clear();
      } else if (!failure_) {
        // Reversed, so that the first found is taken next: depth first,
        // which keeps the stack short.
        for (auto it = found.rbegin(); it != found.rend(); ++it) pending_.push_back(std::move(*it));
      }
      if (helpers != nullptr && ++visited == items_before_helpers_ && !pending_.empty()) {
        start_helpers(make_visitor, *helpers);
      }
      wake_.notify_all();
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
  std::vector<Item> pending_;
  std::size_t busy_ = 0;
  std::exception_ptr failure_;
};

}  // namespace cagent::launcher::host
