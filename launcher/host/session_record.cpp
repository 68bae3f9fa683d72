#include "launcher/host/session_record.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <stdexcept>
#include <system_error>

#include "launcher/host/mount_plan.hpp"

namespace cagent::launcher::host {

namespace fs = std::filesystem;

namespace {

// A record being made (see SessionRecord) is locked a moment after its
// directory exists; one older than this under its dot-name was abandoned.
constexpr auto kAbandonedAfter = std::chrono::minutes(1);

std::string fresh_name(const fs::path& dir) { return "." + dir.filename().string() + ".new"; }

// The lock is the directory's own: nothing else in it can be swapped.
UniqueFd open_directory(const fs::path& dir) {
  return UniqueFd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
}

void remove_record(const fs::path& dir) {
  std::error_code ec;
  // The placeholder directory is read-only; make it removable first.
  fs::permissions(dir / kEmptyDirName, fs::perms::owner_all, ec);
  fs::remove_all(dir, ec);
}

}  // namespace

SessionRecord::SessionRecord(fs::path dir) : dir_(std::move(dir)) {
  fs::create_directories(dir_.parent_path());
  const fs::path fresh = dir_.parent_path() / fresh_name(dir_);
  fs::create_directory(fresh);
  lock_ = open_directory(fresh);
  if (!lock_.valid() || ::flock(lock_.get(), LOCK_EX | LOCK_NB) != 0) {
    throw_errno("lock ", fresh.native());
  }
  fs::rename(fresh, dir_);
  fs::permissions(dir_, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                            fs::perms::others_read | fs::perms::others_exec);
}

SessionRecord::~SessionRecord() { remove_record(dir_); }

OwnerSocket::OwnerSocket(const fs::path& dir) {
  // Through the directory's descriptor: sun_path holds 107 bytes, a home
  // directory's path may be longer.
  const UniqueFd at(::open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!at.valid()) throw_errno("open ", dir.native());
  const std::string path = "/proc/self/fd/" + std::to_string(at.get()) + "/" + kOwnerSocketName;
  const sockaddr_un address = unix_address(path);
  fd_.reset(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd_.valid()) throw_errno("socket");
  if (::bind(fd_.get(), reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) {
    throw_errno("bind ", (dir / kOwnerSocketName).native());
  }
  if (::fchmodat(at.get(), kOwnerSocketName, 0666, 0) != 0) throw_errno("chmod ", (dir / kOwnerSocketName).native());
  // A backlog of a few: cage-init's one connection, and room for nothing
  // else to matter (a connection nobody accepts costs the host nothing more).
  if (::listen(fd_.get(), 4) != 0) throw_errno("listen");
}

std::vector<std::string> remove_stale_sessions(const fs::path& sessions_dir) {
  std::vector<std::string> removed;
  std::error_code ec;
  for (const fs::directory_entry& entry : fs::directory_iterator(sessions_dir, ec)) {
    const std::string name = entry.path().filename().string();
    std::error_code type_ec;
    if (!entry.is_directory(type_ec) || entry.is_symlink(type_ec)) continue;
    if (name.starts_with(".")) {
      if (!name.ends_with(".new")) continue;
      const auto written = fs::last_write_time(entry.path(), type_ec);
      if (type_ec || fs::file_time_type::clock::now() - written < kAbandonedAfter) continue;
    }
    const UniqueFd dir = open_directory(entry.path());
    // Held: its cagent is alive. Taken: nobody will ever release it.
    if (!dir.valid() || ::flock(dir.get(), LOCK_EX | LOCK_NB) != 0) continue;
    remove_record(entry.path());
    removed.push_back(name);
  }
  return removed;
}

}  // namespace cagent::launcher::host
