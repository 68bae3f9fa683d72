#pragma once
// Pure rewrites of /etc/passwd and /etc/group text for the uid/gid remap
// (the agent takes the owner of /workspace, so files it writes belong to the
// host user). The executor reads the files, calls these, and replaces them.

#include <sys/types.h>

#include <stdexcept>
#include <string>
#include <string_view>

namespace cagent::cage {

class AccountError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Sets the uid and gid fields of `user`'s line; every other line is kept
// byte for byte. Throws AccountError if the user has no well-formed line.
std::string rewrite_passwd(std::string_view passwd, std::string_view user, uid_t uid, gid_t gid);

// Sets the gid of group `group` if it exists and is the user-private group
// (gid `old_gid`); a shared group (e.g. "users") is left alone — renumbering
// it would move other accounts too. Returns the text unchanged otherwise.
std::string rewrite_group(std::string_view group_file, std::string_view group, gid_t old_gid, gid_t gid);

}  // namespace cagent::cage
