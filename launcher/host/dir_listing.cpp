#include "launcher/host/dir_listing.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>

#include <cerrno>
#include <string_view>

namespace cagent::launcher::host {
namespace fs = std::filesystem;

fs::file_type file_type_of_dirent(unsigned char d_type) {
  switch (d_type) {
    case DT_REG: return fs::file_type::regular;
    case DT_DIR: return fs::file_type::directory;
    case DT_LNK: return fs::file_type::symlink;
    case DT_FIFO: return fs::file_type::fifo;
    case DT_SOCK: return fs::file_type::socket;
    case DT_CHR: return fs::file_type::character;
    case DT_BLK: return fs::file_type::block;
    default: return fs::file_type::none;  // DT_UNKNOWN
  }
}

fs::file_type file_type_of_mode(mode_t mode) {
  if (S_ISREG(mode)) return fs::file_type::regular;
  if (S_ISDIR(mode)) return fs::file_type::directory;
  if (S_ISLNK(mode)) return fs::file_type::symlink;
  if (S_ISFIFO(mode)) return fs::file_type::fifo;
  if (S_ISSOCK(mode)) return fs::file_type::socket;
  if (S_ISCHR(mode)) return fs::file_type::character;
  if (S_ISBLK(mode)) return fs::file_type::block;
  return fs::file_type::unknown;
}

DirLister::DirLister() : buffer_(new char[kBufferSize]) {}

std::optional<DirLister::Failure> DirLister::list(int dir_fd, std::vector<ListedEntry>& out) {
  out.clear();
  bool first = true;
  for (;;) {
    const ssize_t got = ::getdents64(dir_fd, buffer_.get(), kBufferSize);
    if (got < 0) return Failure{"", errno};
    if (got == 0) return std::nullopt;
    for (ssize_t offset = 0; offset < got;) {
      const auto* e = reinterpret_cast<const dirent64*>(buffer_.get() + offset);
      offset += e->d_reclen;
      const std::string_view name = e->d_name;
      if (name == "." || name == "..") continue;
      fs::file_type type = file_type_of_dirent(e->d_type);
      if (first || type == fs::file_type::none) {
        struct stat st {};
        if (::fstatat(dir_fd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) return Failure{std::string(name), errno};
        type = file_type_of_mode(st.st_mode);
        first = false;
      }
      out.push_back({std::string(name), type});
    }
  }
}

}  // namespace cagent::launcher::host
