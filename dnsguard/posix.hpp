#pragma once
// The small POSIX helpers every cagent binary shares (header-only, in the
// leaf every side links — dnsguard's cagent_policy — so no folder gains a
// dependency through them): the one owner of a file descriptor, and the one
// way to report a failed system call.

#include <unistd.h>

#include <cerrno>
#include <string>
#include <string_view>
#include <system_error>

namespace cagent {

// Closing never changes errno, so an error path can read errno after an
// owner went out of scope; close() reports a failed close (lost data on a
// file just written).
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

// Throws std::system_error with the errno of the call that just failed and
// a message joined from `parts`. errno is read before anything else runs:
// the parts are bound by reference (pass path.native(), not path.string()),
// so no allocation happens between the failing call and that read.
template <typename... Parts>
[[noreturn]] void throw_errno(const Parts&... parts) {
  const int error = errno;
  std::string message;
  (message.append(std::string_view(parts)), ...);
  throw std::system_error(error, std::generic_category(), message);
}

}  // namespace cagent
