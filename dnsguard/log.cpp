#include "dnsguard/log.hpp"

#include <cerrno>
#include <cstring>
#include <ctime>
#include <stdexcept>

namespace cagent::dnsguard {

std::string format_counters(const Counters& c) {
  std::string s = "counters";
  auto add = [&](const char* name, std::uint64_t v) {
    s += ' ';
    s += name;
    s += '=';
    s += std::to_string(v);
  };
  add("queries", c.queries);
  add("allowed", c.allowed);
  add("denied", c.denied);
  add("refused", c.refused);
  add("malformed", c.malformed);
  add("overload", c.overload);
  add("cache_hits", c.cache_hits);
  add("upstream_errors", c.upstream_errors);
  add("servfail", c.servfail);
  add("inserts", c.inserts);
  add("insert_failures", c.insert_failures);
  add("filtered", c.filtered);
  add("stripped", c.stripped);
  add("binding_failures", c.binding_failures);
  add("refreshes", c.refreshes);
  return s;
}

Logger::Logger(const std::string& path, LogLevel level) : level_(level) {
  if (path.empty()) {
    file_.reset(stderr);
    return;
  }
  // "e": O_CLOEXEC, so nothing dnsguard might ever spawn inherits the log.
  file_.reset(std::fopen(path.c_str(), "ae"));
  if (!file_) {
    int err = errno;
    throw std::runtime_error("log.file " + path + ": " + std::strerror(err));
  }
}

void Logger::write(std::string_view line) noexcept {
  char stamp[32];
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  std::size_t n = std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ ", &tm);
  std::fwrite(stamp, 1, n, file_.get());
  std::fwrite(line.data(), 1, line.size(), file_.get());
  std::fputc('\n', file_.get());
  std::fflush(file_.get());
}

void Logger::always(std::string_view line) noexcept { write(line); }

void Logger::event(LogLevel level, std::string_view line) noexcept {
  if (!enabled(level)) return;
  auto now = std::chrono::steady_clock::now();
  double secs = std::chrono::duration<double>(now - refilled_).count();
  refilled_ = now;
  tokens_ = std::min(kBurst, tokens_ + secs * kPerSecond);
  if (tokens_ < 1) {
    ++suppressed_;
    return;
  }
  tokens_ -= 1;
  if (suppressed_ != 0) {
    write("log rate limit: " + std::to_string(suppressed_) + " lines suppressed");
    suppressed_ = 0;
  }
  write(line);
}

}  // namespace cagent::dnsguard
