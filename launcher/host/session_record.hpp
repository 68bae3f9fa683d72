#pragma once
// A session's record on the host, <cagent_home>/sessions/<id> (the policy,
// the CA bundle, the placeholders and the owner socket the container
// mounts), and the tie between the cage and the cagent process that owns it.
//
// Ownership is held by the kernel, not by a process that must survive to
// clean up:
//   - the record is locked (flock) by its cagent for the session's life; a
//     record nobody holds belongs to a cagent that is gone (SIGKILL, a lost
//     terminal, a crash) and the next cagent or `cagent ps` removes it;
//   - the owner socket listens and is never accepted on. cage-init connects
//     at its start (launcher/cage: step WatchOwner); when the process that
//     holds the listening socket is gone, the kernel resets that pending
//     connection, and cage-init ends the session. Both descriptors are
//     close-on-exec, so the `docker run` child — left running as an orphan
//     when cagent is killed — holds neither.

#include <filesystem>
#include <string>
#include <vector>

#include "dnsguard/posix.hpp"

namespace cagent::launcher::host {

inline constexpr const char* kOwnerSocketName = "owner.sock";
inline constexpr const char* kSecretsSocketName = "secrets.sock";

// Makes <sessions>/<id> (private to this process until it is complete: made
// under a dot-name, locked, then renamed into place) and removes it, with
// everything in it, when destroyed.
class SessionRecord {
 public:
  explicit SessionRecord(std::filesystem::path dir);
  ~SessionRecord();
  SessionRecord(const SessionRecord&) = delete;
  SessionRecord& operator=(const SessionRecord&) = delete;
  const std::filesystem::path& path() const { return dir_; }

 private:
  std::filesystem::path dir_;
  UniqueFd lock_;
};

// Listens on <dir>/owner.sock (mode 0666: under sysbox the cage's root is
// not the host user; the directory is the user's). Never accepts.
class OwnerSocket {
 public:
  explicit OwnerSocket(const std::filesystem::path& dir);
  OwnerSocket(const OwnerSocket&) = delete;
  OwnerSocket& operator=(const OwnerSocket&) = delete;

 private:
  UniqueFd fd_;
};

// Removes the records in `sessions_dir` that no process holds; returns their
// names. Best effort: what cannot be read or removed is left for next time.
std::vector<std::string> remove_stale_sessions(const std::filesystem::path& sessions_dir);

}  // namespace cagent::launcher::host
