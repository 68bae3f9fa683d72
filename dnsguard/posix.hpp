#pragma once
// The small POSIX helpers every cagent binary shares (header-only, in the
// leaf every side links — dnsguard's cagent_policy — so no folder gains a
// dependency through them): the one owner of a file descriptor, the one
// way to report a failed system call, and unix socket addresses.

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
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

// Writes all of `bytes` to `fd`, through EINTR and short writes. Returns 0,
// or the errno that stopped it (EIO when a write made no progress and set
// none: never spins); `*written` says how much went out either way, so a
// caller can cut a partial line off again.
inline int write_all(int fd, std::string_view bytes, std::size_t* written) noexcept {
  std::size_t done = 0;
  int error = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n > 0) {
      done += static_cast<std::size_t>(n);
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else {
      error = n < 0 ? errno : EIO;
      break;
    }
  }
  *written = done;
  return error;
}

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

// The address of the unix socket at `path`; throws std::runtime_error when
// the path does not fit (sun_path holds 107 bytes and the NUL).
inline sockaddr_un unix_address(std::string_view path) {
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  if (path.size() >= sizeof address.sun_path) throw std::runtime_error("socket path too long: " + std::string(path));
  std::memcpy(address.sun_path, path.data(), path.size());
  return address;
}

// A close-on-exec stream socket connected to the unix socket at `path`;
// throws std::system_error ("connect PATH: …") when it cannot connect.
inline UniqueFd connect_unix(const std::string& path) {
  const sockaddr_un address = unix_address(path);
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) throw_errno("socket");
  if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) {
    throw_errno("connect ", path);
  }
  return fd;
}

}  // namespace cagent
