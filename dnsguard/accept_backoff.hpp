#pragma once
// What an accept loop does when accept() fails for want of resources.
//
// EMFILE/ENFILE (no descriptor left, in the process or the system) and
// ENOBUFS/ENOMEM leave the pending connection in the listen backlog, so the
// listener stays readable and a loop that simply tries again spins at
// 100 % CPU on failing accept() calls — taking the one thread that also
// answers DNS and writes the decision record. Instead the loop pauses
// (kPause) before the next try, and says so once per episode: when the
// first accept fails and when one succeeds again, with how many tries
// failed in between. Other errors (the peer reset the connection before it
// was accepted) consumed that connection and are retried at once.
//
// Used by the gate's, the DNS-over-TCP and the control listeners.

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/system/error_code.hpp>

#include <chrono>
#include <cstdint>
#include <string>

#include "dnsguard/log.hpp"

namespace cagent::dnsguard {

class AcceptBackoff {
 public:
  // 100 ms: long enough that a starved loop costs nothing measurable (ten
  // failed accept() calls a second), short enough that a connection waiting
  // in the backlog is taken within a tenth of a second of a descriptor
  // coming free.
  static constexpr std::chrono::milliseconds kPause{100};

  AcceptBackoff(boost::asio::any_io_executor exec, Logger& log, std::string what)
      : timer_(std::move(exec)), log_(log), what_(std::move(what)) {}

  // Whether accept() failed for want of resources (then pause() before the
  // next try), as opposed to a failure that consumed the connection.
  static bool out_of_resources(const boost::system::error_code& ec) noexcept;

  // After such a failure: counts it, logs the start of an episode, and
  // waits kPause (or until cancel()).
  boost::asio::awaitable<void> pause(const boost::system::error_code& ec);
  // After an accept that succeeded: ends an episode (logged).
  void accepted();
  void cancel() noexcept { timer_.cancel(); }

  // Failed accepts for want of resources, since start.
  std::uint64_t failures() const noexcept { return failures_; }

 private:
  boost::asio::steady_timer timer_;
  Logger& log_;
  std::string what_;
  bool in_episode_ = false;
  std::uint64_t episode_failures_ = 0;
  std::uint64_t failures_ = 0;
  std::chrono::steady_clock::time_point episode_start_{};
};

}  // namespace cagent::dnsguard
