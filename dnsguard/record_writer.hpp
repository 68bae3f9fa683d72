#pragma once
// RecordWriter: decisions.json written off the resolver's thread.
//
// Turning a full record (4096 + 1024 + 4096 entries, ~400 KB of JSON) into
// text and replacing the file took 18–33 ms on a busy 2-core machine — once
// a second, on the one thread that answers DNS, all through a flood of
// random denied names (the flood that fills the record). Every other
// client's lookup waited for it. So the resolver thread only takes the
// snapshot (a consistent copy, DecisionRecord::snapshot) and hands it over;
// this thread serialises it and replaces the file. At most one snapshot
// waits: a newer one replaces it, so the file is never older than the last
// snapshot and never written by two threads at once.
//
//   resolver thread: snapshot() ──submit()──▶ [one waiting] ──▶ writer thread:
//                                                write_decisions() + write_file_atomically()
//   next tick:       write_failed() ◀──take_report()── failures (errno, time), successes
//   at exit: finish(last) — the waiting one written, the thread joined, then
//            the last snapshot written on the caller's thread: the last word.
//
// The write keeps one descriptor of its own (a spare, closed just before
// each write and taken again after it), so a flood that used every other
// descriptor the budget did not foresee does not stop the record.
//
// A failed write (disk full, quota, I/O error) must reach the record, which
// then says it is incomplete (DecisionRecord::write_failed) — but the record
// and the Logger belong to the resolver thread. So this thread only counts:
// each failure with its errno and wall time, each success with the ticket
// of the snapshot it wrote, and the resolver thread takes that account on
// its next once-a-second tick (take_report()). There it marks the record,
// which is then dirty again, so that same tick submits the record again,
// now saying it is incomplete: a failure costs at most a tick of delay, and
// none goes uncounted. The ticket tells the resolver thread when a snapshot
// that carries the mark is in the file ("written again").

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "dnsguard/contracts.hpp"
#include "dnsguard/posix.hpp"

namespace cagent::dnsguard {

class RecordWriter {
 public:
  using Clock = std::chrono::steady_clock;
  using WallClock = std::chrono::system_clock;

  // Starts the writer thread. Throws std::system_error when it cannot.
  explicit RecordWriter(std::filesystem::path path);
  ~RecordWriter();
  RecordWriter(const RecordWriter&) = delete;
  RecordWriter& operator=(const RecordWriter&) = delete;

  // Resolver thread: write this snapshot (replaces one still waiting). Its
  // ticket: 1, 2, … in the order of submission (0 after finish()).
  std::uint64_t submit(Decisions snapshot);
  // Waits until what was submitted is in the file (or failed): for a
  // run-time allowlist change, whose reply to the host must not come before
  // the record holds it. Blocks the caller for at most one write.
  void flush();
  // Writes what waits, ends the thread, then writes `last` (when given) on
  // this thread. False, with the reason in `error`, when that write failed.
  // May be called again after it returned (the thread is gone by then).
  bool finish(const Decisions* last, std::string& error) noexcept;

  // What became of the writer thread's writes since the last take.
  struct Report {
    std::uint64_t failed = 0;              // writes that failed
    int first_error = 0;                   // errno of the first of them
    WallClock::time_point first_at{};      // when it failed
    std::string first_message;             // its one line, naming the file
    std::uint64_t written = 0;             // writes that succeeded
    std::uint64_t written_ticket = 0;      // newest snapshot ever written (0: none)
  };
  Report take_report();

  // Whether a tick submits the record: when it changed (`dirty`), when
  // `force`d, or when the last submit is kDecisionsRewrittenEvery - 1 s old
  // (the file promises a rewrite at least every kDecisionsRewrittenEvery
  // seconds, `rewritten_every`, so the host can tell a record that stopped
  // being written — a full disk, a dead dnsguard — from one with nothing
  // new; - 1: the caller ticks once a second, and a tick may come late by
  // most of one). A failed write needs no rule of its own: the record is
  // marked (write_failed) and so dirty again.
  static bool due(bool dirty, bool force, std::optional<Clock::time_point> last_submit,
                  Clock::time_point now) noexcept;

  const std::filesystem::path& path() const noexcept { return path_; }

 private:
  // False with the errno (EIO when the failure had none, ENOMEM for the
  // serialisation's allocation) and one line naming the file.
  bool write(const Decisions& decisions, int& error, std::string& message) noexcept;
  void run() noexcept;

  std::filesystem::path path_;
  UniqueFd spare_;  // used only by whichever thread writes (never both)
  std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable idle_;  // nothing waits and nothing is being written
  std::optional<Decisions> pending_;
  std::uint64_t pending_ticket_ = 0;
  std::uint64_t next_ticket_ = 1;
  Report report_;
  bool writing_ = false;
  bool stopping_ = false;
  std::thread thread_;  // last: started once everything above exists
};

}  // namespace cagent::dnsguard
