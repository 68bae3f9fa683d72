#pragma once
// Replacing a file so that a reader never sees half of it: the content goes
// to a new temporary file in the same directory (same filesystem, so the
// rename is atomic), every byte of it (write() may take less than asked),
// then the temporary is renamed over the name. A reader opens either the
// old file or the new one.
//
// The temporary is created with O_EXCL under a random name (mkostemp): it
// never follows a link someone placed in the directory, and two writers of
// the same file at once do not write into one temporary. It is removed
// again on every failure.
//
// Every side's one way to replace a file: dnsguard's decision record (read
// by the host while it changes), `cagent allow --save`'s config files, the
// host's approval records and other files (launcher/host write_file), and
// cage-init's system files.

#include <sys/types.h>

#include <filesystem>
#include <optional>
#include <string_view>

namespace cagent::dnsguard {

struct ReplaceOptions {
  // The file's mode, set on the open file whatever the umask.
  mode_t mode = 0644;
  // Owner to set on the temporary before it is renamed (root's files in
  // the cage); nullopt: the writer's.
  std::optional<uid_t> uid;
  std::optional<gid_t> gid;
  // fsync the file before the rename and the directory after it, so that
  // after a crash the name holds the old content or the new, never an
  // empty file. Off only for a file rewritten often, whose last version
  // matters only while its writer runs.
  bool sync = true;
};

// Throws std::system_error naming the step and the file ("write
// /x/.decisions.json.Ab12Cd: No space left on device"); on failure the
// file keeps its old content and no temporary is left behind.
void write_file_atomically(const std::filesystem::path& path, std::string_view content,
                           const ReplaceOptions& options = {});

}  // namespace cagent::dnsguard
