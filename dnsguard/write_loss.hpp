#pragma once
// What one writer into the session's log directory could not write — the
// log, the gate binding journal, the decision record — so the decision
// record can say what is missing (contracts.hpp: Incomplete). A write that
// fails (disk full, quota, I/O error) never stops dnsguard: the line or
// pair is counted here and dropped, and the next one is tried as usual.

#include <cstdint>

namespace cagent::dnsguard {

struct WriteLoss {
  std::uint64_t count = 0;    // lines, pairs or rewrites not written
  int first_error = 0;        // errno of the first failure
  std::int64_t first_at = 0;  // unix seconds of it

  // True for the first loss: the caller says so, once.
  bool add(int error, std::int64_t now) noexcept {
    if (count++ != 0) return false;
    first_error = error;
    first_at = now;
    return true;
  }
};

}  // namespace cagent::dnsguard
