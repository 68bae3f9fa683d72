#pragma once
// What tells a directory (or file) apart from another one that later sits at
// the same path.
//
// Approvals of a workspace .cagent.yaml and the agent's home volume belong
// to one directory, not to a path: a project deleted and replaced by another
// at the same path (a new clone, a reused CI or temporary directory) must
// never inherit either. Inode numbers alone cannot tell: ext4 hands a
// directory removed and made again the very same number at once. The birth
// time (statx STATX_BTIME) cannot tell either: it comes from the kernel's
// coarse clock, one tick (1-10 ms), and measured on this project's build
// machine, 57 % (ext4) and 77 % (overlayfs) of rmdir+mkdir pairs in a tight
// loop got the same inode number *and* the same birth time. What can tell:
//
//   the file handle (name_to_handle_at; AT_HANDLE_FID where the kernel has
//   it, so overlayfs answers too): made for NFS, where a handle must never
//   name a later file — ext4, xfs, btrfs, tmpfs put the inode generation in
//   it, a number drawn anew (at random on ext4 and tmpfs) for every inode;
//
//   else the inode number with that generation (FS_IOC_GETVERSION).
//
// The birth time is added when the filesystem has one (it costs nothing and
// covers a filesystem whose generation is weak). A filesystem that offers
// neither a handle nor a generation gives no identity (nullopt): cagent then
// remembers nothing for the directory — every session asks about its
// .cagent.yaml again and gets an empty home that goes with the container.
//
// The device number is left out on purpose: it is not the directory's but
// the mount's, and changes across reboots for btrfs subvolumes, NFS,
// device-mapper and USB disks, which would cost the user their approvals
// and the agent's logins. A handle is unique within its filesystem, so
// leaving the device out lets only a block-level copy of the same
// filesystem (a disk image, an LVM snapshot) share an identity with the
// original — a copy the user made, of the very same directory. A copy made
// file by file (cp -a, rsync, tar, git clone) is a new inode: a new
// identity. Renaming or moving within the filesystem keeps it.
//
// Nothing in the workspace can change or forge it: the kernel sets all of
// it when the inode is made.

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

namespace cagent::launcher::host {

// What the filesystem said about one inode.
struct IdentityParts {
  std::uint64_t inode = 0;
  std::optional<std::string> handle;  // "<type>:<hex bytes>" from name_to_handle_at
  std::optional<std::uint32_t> generation;
  std::optional<std::pair<std::int64_t, std::uint32_t>> birth;  // seconds, nanoseconds
};

// The identity string, or nullopt when the parts cannot tell this inode from
// a later one at the same inode number (neither a handle nor a generation).
std::optional<std::string> compose_identity(const IdentityParts& parts);

// The identity of what `path` names (a final symlink is not followed), or
// nullopt when it does not exist or its filesystem gives none.
std::optional<std::string> file_identity(const std::filesystem::path& path);

}  // namespace cagent::launcher::host
