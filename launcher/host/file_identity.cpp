#include "launcher/host/file_identity.hpp"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>

#include <array>
#include <cerrno>
#include <cstddef>

#include "dnsguard/posix.hpp"

namespace cagent::launcher::host {
namespace {

// AT_HANDLE_FID (Linux 6.5): a handle that only identifies, which overlayfs
// gives too. Older kernels refuse the flag (EINVAL); the plain call follows.
constexpr int kAtHandleFid = 0x200;

std::string hex(const unsigned char* data, std::size_t size) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(size * 2);
  for (std::size_t i = 0; i < size; ++i) {
    out += kDigits[data[i] >> 4];
    out += kDigits[data[i] & 15];
  }
  return out;
}

std::optional<std::string> file_handle_of(const std::filesystem::path& path) {
  // MAX_HANDLE_SZ bytes after the header, aligned for struct file_handle.
  alignas(file_handle) std::array<unsigned char, sizeof(file_handle) + MAX_HANDLE_SZ> buf{};
  auto* handle = reinterpret_cast<file_handle*>(buf.data());
  int mount_id = 0;
  for (const int flags : {kAtHandleFid, 0}) {
    handle->handle_bytes = MAX_HANDLE_SZ;
    if (::name_to_handle_at(AT_FDCWD, path.c_str(), handle, &mount_id, flags) == 0) {
      return std::to_string(handle->handle_type) + ":" + hex(handle->f_handle, handle->handle_bytes);
    }
    if (errno != EINVAL) break;  // EOPNOTSUPP: the filesystem has none
  }
  return std::nullopt;
}

std::optional<std::uint32_t> generation_of(const std::filesystem::path& path) {
  // O_NONBLOCK | O_NOCTTY: only directories and regular files get here, but
  // what sits at the path may have changed since statx looked.
  const UniqueFd fd(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC));
  if (!fd.valid()) return std::nullopt;
  int generation = 0;  // the kernel writes an int, whatever the ioctl's size says
  if (::ioctl(fd.get(), FS_IOC_GETVERSION, &generation) != 0) return std::nullopt;
  return static_cast<std::uint32_t>(generation);
}

}  // namespace

std::optional<std::string> compose_identity(const IdentityParts& parts) {
  std::string id;
  if (parts.handle) {
    id = "fh" + *parts.handle;
  } else if (parts.generation) {
    id = "ino" + std::to_string(parts.inode) + ".gen" + std::to_string(*parts.generation);
  } else {
    return std::nullopt;  // an inode number (and a coarse birth time) can be handed out again
  }
  if (parts.birth) id += ".born" + std::to_string(parts.birth->first) + "." + std::to_string(parts.birth->second);
  return id;
}

std::optional<std::string> file_identity(const std::filesystem::path& path) {
  struct statx st {};
  if (::statx(AT_FDCWD, path.c_str(), AT_SYMLINK_NOFOLLOW, STATX_TYPE | STATX_INO | STATX_BTIME, &st) != 0) {
    return std::nullopt;
  }
  IdentityParts parts;
  parts.inode = st.stx_ino;
  if ((st.stx_mask & STATX_BTIME) != 0) parts.birth = {st.stx_btime.tv_sec, st.stx_btime.tv_nsec};
  parts.handle = file_handle_of(path);
  if (!parts.handle && (S_ISDIR(st.stx_mode) || S_ISREG(st.stx_mode))) parts.generation = generation_of(path);
  return compose_identity(parts);
}

}  // namespace cagent::launcher::host
