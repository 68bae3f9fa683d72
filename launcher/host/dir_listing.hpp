#pragma once
// A directory's entries with their types, as the kernel lists them.
//
// getdents64(2) gives each name with its type (d_type) on ext4, xfs, btrfs,
// tmpfs and overlayfs alike, so a walk that needs only names and types needs
// no lstat per entry: on a tree like node_modules that lstat is most of the
// cost. A filesystem may say "unknown" (DT_UNKNOWN: some network and FUSE
// filesystems, old ones): then the entry is lstat'ed after all.

#include <sys/types.h>

#include <cstddef>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace cagent::launcher::host {

// The type d_type gives; file_type::none for DT_UNKNOWN (ask lstat).
std::filesystem::file_type file_type_of_dirent(unsigned char d_type);

// The type of an lstat/fstatat st_mode.
std::filesystem::file_type file_type_of_mode(mode_t mode);

struct ListedEntry {
  std::string name;
  std::filesystem::file_type type = std::filesystem::file_type::none;
};

// Reads whole directories with getdents64 into one reused buffer (one per
// thread: it is not shared).
class DirLister {
 public:
  // Why an entry could not be typed, or the listing failed.
  struct Failure {
    std::string entry;  // the entry that could not be lstat'ed; "" when listing itself failed
    int error = 0;      // errno
  };

  DirLister();

  // Every entry of the open directory `dir_fd` but "." and "..", in the
  // kernel's order, into `out`. Each entry whose type the listing does not
  // give is lstat'ed, and so is the first entry whatever its type: an lstat
  // in a directory needs search permission on it, which listing does not,
  // and a directory that can be listed but not searched must fail here as
  // it did when every entry was lstat'ed (its first entry first). The first
  // failure ends the listing.
  std::optional<Failure> list(int dir_fd, std::vector<ListedEntry>& out);

 private:
  static constexpr std::size_t kBufferSize = 64 * 1024;
  std::unique_ptr<char[]> buffer_;
};

}  // namespace cagent::launcher::host
