#include "dnsguard/atomic_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <string>
#include <system_error>

#include "dnsguard/posix.hpp"

namespace cagent::dnsguard {
namespace {

// errno is read by the caller right after the call that failed, before
// any cleanup (close, unlink) can overwrite it.
[[noreturn]] void fail(int error, const char* step, const std::string& file) {
  throw std::system_error(error, std::generic_category(), std::string(step) + " " + file);
}

// The temporary: closed and removed unless it was renamed into place.
class Temporary {
 public:
  explicit Temporary(std::string name) : name_(std::move(name)) {
    fd_.reset(::mkostemp(name_.data(), O_CLOEXEC));
    if (!fd_.valid()) fail(errno, "create", name_);
  }
  ~Temporary() {
    fd_.reset();
    if (!renamed_) ::unlink(name_.c_str());
  }
  Temporary(const Temporary&) = delete;
  Temporary& operator=(const Temporary&) = delete;

  int fd() const noexcept { return fd_.get(); }
  const std::string& name() const noexcept { return name_; }
  void close() {
    // Gone after close(), even when it reports an error.
    if (fd_.close() != 0) fail(errno, "close", name_);
  }
  void rename_to(const std::filesystem::path& path) {
    if (::rename(name_.c_str(), path.c_str()) != 0) fail(errno, "rename onto", path.string());
    renamed_ = true;
  }

 private:
  std::string name_;
  UniqueFd fd_;
  bool renamed_ = false;
};

}  // namespace

void write_file_atomically(const std::filesystem::path& path, std::string_view content,
                           const ReplaceOptions& options) {
  const std::filesystem::path dir = path.has_parent_path() ? path.parent_path() : std::filesystem::path(".");
  // Hidden, and named after the file, so a leftover (a crash between the
  // create and the rename) says whose it is.
  Temporary tmp((dir / ("." + path.filename().string() + ".XXXXXX")).string());
  std::size_t done = 0;
  while (done < content.size()) {
    const ssize_t n = ::write(tmp.fd(), content.data() + done, content.size() - done);
    if (n < 0) {
      const int error = errno;
      if (error == EINTR) continue;
      fail(error, "write", tmp.name());
    }
    if (n == 0) fail(EIO, "write", tmp.name());  // no progress and no error: do not spin
    done += static_cast<std::size_t>(n);
  }
  if (options.uid || options.gid) {
    const uid_t uid = options.uid.value_or(static_cast<uid_t>(-1));
    const gid_t gid = options.gid.value_or(static_cast<gid_t>(-1));
    if (::fchown(tmp.fd(), uid, gid) != 0) fail(errno, "chown", tmp.name());
  }
  // After any chown (which may clear set-id bits) and whatever the umask.
  if (::fchmod(tmp.fd(), options.mode) != 0) fail(errno, "chmod", tmp.name());
  if (options.sync && ::fsync(tmp.fd()) != 0) fail(errno, "fsync", tmp.name());
  tmp.close();
  tmp.rename_to(path);
  if (options.sync) {
    // The rename itself reaches the disk with the directory. Best effort:
    // the new content is in place and visible, so a failure here is not
    // reported as a failed write (some filesystems refuse fsync on a
    // directory).
    const UniqueFd dfd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (dfd.valid()) ::fsync(dfd.get());
  }
}

}  // namespace cagent::dnsguard
