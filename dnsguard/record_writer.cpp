#include "dnsguard/record_writer.hpp"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>

#include <exception>
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

void RecordWriter::submit(Decisions snapshot) {
  {
    const std::lock_guard lock(mutex_);
    if (stopping_) return;
    pending_ = std::move(snapshot);
  }
  wake_.notify_one();
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
  return last == nullptr || write(*last, error);
}

std::string RecordWriter::take_error() {
  const std::lock_guard lock(mutex_);
  return std::exchange(error_, std::string());
}

bool RecordWriter::write(const Decisions& decisions, std::string& error) noexcept {
  spare_.reset();  // its slot is the temporary file's
  bool ok = true;
  try {
    // As DecisionFile::write: readable by the host user whatever the umask
    // (cagent ps/log read it during the session; names, no secrets), and
    // no fsync — the record matters while the session runs and right after
    // it, not across a crash of the machine.
    ReplaceOptions options;
    options.mode = 0644;
    options.sync = false;
    write_file_atomically(path_, write_decisions(decisions), options);
  } catch (const std::exception& e) {
    error = e.what();
    ok = false;
  }
  spare_ = open_spare();
  return ok;
}

void RecordWriter::run() noexcept {
  for (;;) {
    Decisions next;
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [this] { return stopping_ || pending_.has_value(); });
      if (!pending_) {  // stopping, nothing left to write
        idle_.notify_all();
        return;
      }
      next = std::move(*pending_);
      pending_.reset();
      writing_ = true;
    }
    std::string error;
    const bool ok = write(next, error);
    {
      const std::lock_guard lock(mutex_);
      if (!ok) error_ = std::move(error);
      writing_ = false;
    }
    idle_.notify_all();
  }
}

}  // namespace cagent::dnsguard
