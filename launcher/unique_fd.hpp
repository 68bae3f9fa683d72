#pragma once
// launcher/'s one owner of a file descriptor, for both halves: a
// header-only leaf that depends on nothing, so sharing it does not mix the
// host side with the container side (launcher/CMakeLists.txt) — neither
// gains a dependency through it.
//
// Closing never changes errno, so an error path can read errno after an
// owner went out of scope; close() reports a failed close (lost data on
// a file just written).

#include <unistd.h>

#include <cerrno>

namespace cagent::launcher {

class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) noexcept : fd_(fd) {}
  UniqueFd(UniqueFd&& other) noexcept : fd_(other.release()) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    if (this != &other) reset(other.release());
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() { reset(); }

  int get() const noexcept { return fd_; }
  bool valid() const noexcept { return fd_ >= 0; }
  // Hands the descriptor over; the caller owns it now.
  int release() noexcept {
    const int fd = fd_;
    fd_ = -1;
    return fd;
  }
  void reset(int fd = -1) noexcept {
    if (fd_ >= 0) {
      const int saved = errno;
      ::close(fd_);
      errno = saved;
    }
    fd_ = fd;
  }
  // close(2)'s own result: 0, or -1 with errno set.
  int close() noexcept {
    const int fd = release();
    return fd < 0 ? 0 : ::close(fd);
  }

 private:
  int fd_ = -1;
};

}  // namespace cagent::launcher
