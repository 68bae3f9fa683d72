#include "dnsguard/log.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
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
  add("learned", c.learned);
  add("held", c.held);
  add("held_overflow", c.held_overflow);
  add("watch_dropped", c.watch_dropped);
  return s;
}

Logger::Logger(const std::string& path, LogLevel level, LogLimits limits)
    : path_(path), level_(level), limits_(limits) {
  if (path.empty()) return;
  // O_APPEND: a restarted dnsguard goes on after its predecessor's lines.
  // O_CLOEXEC: nothing dnsguard might ever spawn inherits the log.
  file_.reset(::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0666));
  if (!file_.valid()) {
    int err = errno;
    throw std::runtime_error("log.file " + path + ": " + std::strerror(err));
  }
  struct stat st {};
  if (::fstat(file_.get(), &st) == 0 && S_ISREG(st.st_mode)) {
    regular_ = true;
    size_ = static_cast<std::uint64_t>(st.st_size);
  }
}

// One line, stamped, whole in the file or (after a failure) not there at
// all; 0, or the errno of the failure. Nothing counted here.
int Logger::put(std::string_view line) noexcept {
  char stamp[32];
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  const std::size_t n = std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ ", &tm);
  try {
    line_.assign(stamp, n).append(line).push_back('\n');
  } catch (...) {
    return ENOMEM;
  }
  const int fd = file_.valid() ? file_.get() : STDERR_FILENO;
  // A short write is the device running out mid-line (ENOSPC, EDQUOT,
  // EFBIG, EIO).
  std::size_t done = 0;
  const int error = write_all(fd, line_, &done);
  if (error == 0) {
    size_ += done;
    return 0;
  }
  // Cut the partial line off again, so the next line does not run into it.
  if (done > 0 && (!regular_ || ::ftruncate(fd, static_cast<off_t>(size_)) != 0)) size_ += done;
  return error;
}

// The line, or it is lost: counted, and the first loss said on stderr.
void Logger::put_or_count(std::string_view line) noexcept {
  const int error = put(line);
  if (error == 0) return;
  if (lost_.add(error, static_cast<std::int64_t>(std::time(nullptr))) && file_.valid()) {
    // Said once, where the user sees it (cage-init passes dnsguard's
    // stderr on); the log itself is told once it takes lines again.
    try {
      const std::string alarm = "dnsguard: cannot write its log " + path_ + ": " + std::strerror(error) +
                                "; lines are counted and dropped until it can (the decision record says how many)\n";
      [[maybe_unused]] const ssize_t ignored = ::write(STDERR_FILENO, alarm.data(), alarm.size());
    } catch (...) {
    }
  }
}

void Logger::write(std::string_view line, Kind kind) noexcept {
  try {
    const std::uint64_t stamped = 21 + line.size() + 1;
    const auto fits = [&](std::uint64_t bytes, std::uint64_t limit) { return !regular_ || size_ + bytes <= limit; };
    const std::uint64_t hard = limits_.max_bytes + limits_.reserve;
    if (!fits(stamped, kind == Kind::detail ? limits_.max_bytes : hard)) {
      if (capped_++ == 0) {
        const std::string note = "log size cap of " + std::to_string(limits_.max_bytes) +
                                 " bytes reached: detail lines are counted, not written, from now on "
                                 "(counters and the decision record stay exact)";
        if (fits(21 + note.size() + 1, hard)) put_or_count(note);
      }
      return;
    }
    // Notes are not lines of their own: one that fails is tried again
    // before the next line, and not counted.
    if (lost_.count > lost_said_) {
      const std::uint64_t lost = lost_.count;
      if (put("log: " + std::to_string(lost - lost_said_) + " lines could not be written (" +
              std::strerror(lost_.first_error) + "); writing again") == 0)
        lost_said_ = lost;
    }
    if (kind == Kind::always && capped_ > capped_said_ &&
        fits(21 + 64 + stamped, hard) &&
        put("log size cap: " + std::to_string(capped_) + " lines dropped so far") == 0) {
      capped_said_ = capped_;
    }
  } catch (...) {
    // Out of memory for a note: the line itself still goes.
  }
  put_or_count(line);
}

void Logger::always(std::string_view line) noexcept { write(line, Kind::always); }

void Logger::alarm(std::string_view line) noexcept {
  if (file_.valid()) {
    // Not through put(): stderr is no file of ours to truncate or count.
    char prefix[] = "dnsguard: ";
    char newline = '\n';
    iovec parts[3] = {{prefix, sizeof prefix - 1}, {const_cast<char*>(line.data()), line.size()}, {&newline, 1}};
    [[maybe_unused]] const ssize_t ignored = ::writev(STDERR_FILENO, parts, 3);
  }
  write(line, Kind::always);
}

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
    try {
      write("log rate limit: " + std::to_string(suppressed_) + " lines suppressed", Kind::detail);
    } catch (...) {
    }
    suppressed_ = 0;
  }
  write(line, Kind::detail);
}

}  // namespace cagent::dnsguard
