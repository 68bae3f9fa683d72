#include "dnsguard/accept_backoff.hpp"

#include <boost/asio/use_awaitable.hpp>

#include <cerrno>

#include "dnsguard/asio_glue.hpp"

namespace cagent::dnsguard {

bool AcceptBackoff::out_of_resources(const boost::system::error_code& ec) noexcept {
  if (ec.category() != boost::system::system_category() && ec.category() != boost::system::generic_category())
    return false;
  const int e = ec.value();
  return e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM;
}

boost::asio::awaitable<void> AcceptBackoff::pause(const boost::system::error_code& ec) {
  ++failures_;
  ++episode_failures_;
  if (!in_episode_) {
    in_episode_ = true;
    episode_start_ = std::chrono::steady_clock::now();
    log_.always(what_ + ": cannot accept (" + ec.message() + "); trying again every " +
                std::to_string(kPause.count()) + " ms");
  }
  timer_.expires_after(kPause);
  co_await timer_.async_wait(use_tuple);
}

void AcceptBackoff::accepted() {
  if (!in_episode_) return;
  in_episode_ = false;
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - episode_start_);
  log_.always(what_ + ": accepting again after " + std::to_string(episode_failures_) + " failed tries in " +
              std::to_string(ms.count()) + " ms");
  episode_failures_ = 0;
}

}  // namespace cagent::dnsguard
