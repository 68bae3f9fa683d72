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
//   at exit: finish(last) — the waiting one written, the thread joined, then
//            the last snapshot written on the caller's thread: the last word.
//
// The write keeps one descriptor of its own (a spare, closed just before
// each write and taken again after it), so a flood that used every other
// descriptor the budget did not foresee does not stop the record. A failed
// write is reported once through take_error() (the writer thread never
// logs: the Logger belongs to the resolver thread).

#include <condition_variable>
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
  // Starts the writer thread. Throws std::system_error when it cannot.
  explicit RecordWriter(std::filesystem::path path);
  ~RecordWriter();
  RecordWriter(const RecordWriter&) = delete;
  RecordWriter& operator=(const RecordWriter&) = delete;

  // Resolver thread: write this snapshot (replaces one still waiting).
  void submit(Decisions snapshot);
  // Waits until what was submitted is in the file (or failed): for a
  // run-time allowlist change, whose reply to the host must not come before
  // the record holds it. Blocks the caller for at most one write.
  void flush();
  // Writes what waits, ends the thread, then writes `last` (when given) on
  // this thread. False, with the reason in `error`, when that write failed.
  bool finish(const Decisions* last, std::string& error) noexcept;
  // Why the last failed write failed (one line), once; empty when none did.
  std::string take_error();

  const std::filesystem::path& path() const noexcept { return path_; }

 private:
  bool write(const Decisions& decisions, std::string& error) noexcept;
  void run() noexcept;

  std::filesystem::path path_;
  UniqueFd spare_;  // used only by whichever thread writes (never both)
  std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable idle_;  // nothing waits and nothing is being written
  std::optional<Decisions> pending_;
  std::string error_;
  bool writing_ = false;
  bool stopping_ = false;
  std::thread thread_;  // last: started once everything above exists
};

}  // namespace cagent::dnsguard
