#pragma once
// The container side's one way to report a failed system call, and its fd
// owner (launcher/'s UniqueFd).

#include <cerrno>
#include <string>
#include <string_view>
#include <system_error>

#include "launcher/unique_fd.hpp"

namespace cagent::cage {

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

// The container side uses launcher/'s fd owner (launcher/unique_fd.hpp).
using launcher::UniqueFd;

}  // namespace cagent::cage
