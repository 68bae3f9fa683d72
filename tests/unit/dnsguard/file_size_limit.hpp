#pragma once
// A disk that runs out, for one test: RLIMIT_FSIZE makes the kernel cut a
// write short at the limit (and fail the next one with EFBIG), as a full
// file system cuts one short at its last free block; raising the limit
// again is space coming back. SIGXFSZ, which the kernel also sends, is
// ignored meanwhile. Both are restored at the end of the scope.

#include <sys/resource.h>

#include <csignal>

#include <doctest/doctest.h>

namespace cagent::test {

class FileSizeLimit {
 public:
  explicit FileSizeLimit(rlim_t bytes) {
    REQUIRE(::getrlimit(RLIMIT_FSIZE, &saved_) == 0);
    old_handler_ = std::signal(SIGXFSZ, SIG_IGN);
    set(bytes);
  }
  ~FileSizeLimit() {
    ::setrlimit(RLIMIT_FSIZE, &saved_);
    std::signal(SIGXFSZ, old_handler_);
  }
  FileSizeLimit(const FileSizeLimit&) = delete;
  FileSizeLimit& operator=(const FileSizeLimit&) = delete;

  void set(rlim_t bytes) {
    rlimit limit = saved_;
    limit.rlim_cur = bytes;
    REQUIRE(::setrlimit(RLIMIT_FSIZE, &limit) == 0);
  }
  // Space comes back.
  void lift() { REQUIRE(::setrlimit(RLIMIT_FSIZE, &saved_) == 0); }

 private:
  rlimit saved_{};
  void (*old_handler_)(int) = SIG_DFL;
};

}  // namespace cagent::test
