#include "dnsguard/record_writer.hpp"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>

#include <cerrno>
#include <exception>
#include <system_error>
#include <utility>

#include "dnsguard/atomic_file.hpp"

namespace cagent::dnsguard {

namespace {
UniqueFd open_spare() noexcept { return UniqueFd(::open("/dev/null", O_RDONLY | O_CLOEXEC)); }
}  // namespace

RecordWriter::RecordWriter(std::filesystem::path path) : path_(std::move(path)), spare_(open_spare()) {
  // Signals go to the resolver thread (its signal_set); none to this one.
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &old);
  try {
    thread_ = std::thread([this] { run(); });
  } catch (...) {
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
    throw;
  }
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
}

RecordWriter::~RecordWriter() {
  std::string ignored;
  finish(nullptr, ignored);
}

std::uint64_t RecordWriter::submit(Decisions snapshot) {
  std::uint64_t ticket = 0;
  {
    const std::lock_guard lock(mutex_);
    if (stopping_) return 0;
    pending_ = std::move(snapshot);
    ticket = pending_ticket_ = next_ticket_++;
  }
  wake_.notify_one();
  return ticket;
}

void RecordWriter::flush() {
  std::unique_lock lock(mutex_);
  idle_.wait(lock, [this] { return (!pending_ && !writing_) || !thread_.joinable(); });
}

bool RecordWriter::finish(const Decisions* last, std::string& error) noexcept {
  {
    const std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_one();
  if (thread_.joinable()) thread_.join();
  int ignored = 0;
  return last == nullptr || write(*last, ignored, error);
}

RecordWriter::Report RecordWriter::take_report() {
  const std::lock_guard lock(mutex_);
  Report taken = std::move(report_);
  report_ = Report{};
  report_.written_ticket = taken.written_ticket;  // "ever": kept across takes
  return taken;
}

bool RecordWriter::due(bool dirty, bool force, std::optional<Clock::time_point> last_submit,
                       Clock::time_point now) noexcept {
  return dirty || force || !last_submit || now - *last_submit >= std::chrono::seconds(kDecisionsRewrittenEvery - 1);
}

bool RecordWriter::write(const Decisions& decisions, int& error, std::string& message) noexcept {
  spare_.reset();  // its slot is the temporary file's
  bool ok = true;
  try {
    // Readable by the host user whatever the umask (cagent ps/log read it
    // during the session; names, no secrets), and no fsync — the record
    // matters while the session runs and right after it, not across a
    // crash of the machine.
    ReplaceOptions options;
    options.mode = 0644;
    options.sync = false;
    write_file_atomically(path_, write_decisions(decisions), options);
  } catch (const std::system_error& e) {
    error = e.code().value() != 0 ? e.code().value() : EIO;
    message = e.what();
    ok = false;
  } catch (const std::exception& e) {
    error = ENOMEM;  // the JSON's allocation: nothing else here throws otherwise
    message = e.what();
    ok = false;
  }
  spare_ = open_spare();
  return ok;
}

void RecordWriter::run() noexcept {
  for (;;) {
    Decisions next;
    std::uint64_t ticket = 0;
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [this] { return stopping_ || pending_.has_value(); });
      if (!pending_) {  // stopping, nothing left to write
        idle_.notify_all();
        return;
      }
      next = std::move(*pending_);
      ticket = pending_ticket_;
      pending_.reset();
      writing_ = true;
    }
    int error = 0;
    std::string message;
    const bool ok = write(next, error, message);
    const auto at = WallClock::now();
    {
      const std::lock_guard lock(mutex_);
      if (ok) {
        ++report_.written;
        report_.written_ticket = ticket;
      } else if (report_.failed++ == 0) {
        report_.first_error = error;
        report_.first_at = at;
        report_.first_message = std::move(message);
      }
      writing_ = false;
    }
    idle_.notify_all();
  }
}

}  // namespace cagent::dnsguard
