// RecordWriter (dnsguard/record_writer.hpp): decisions.json written off the
// resolver's thread, the newest snapshot winning, the last word at finish().
#include <doctest/doctest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "dnsguard/decisions.hpp"
#include "dnsguard/record_writer.hpp"

using namespace cagent::dnsguard;

namespace {

std::filesystem::path scratch_dir() {
  std::string pattern = (std::filesystem::temp_directory_path() / "record-writer-XXXXXX").string();
  REQUIRE(::mkdtemp(pattern.data()) != nullptr);
  return pattern;
}

Decisions with_total(std::uint64_t denied) {
  Decisions d;
  d.updated = 1'800'000'000;
  d.denied_total = denied;
  d.denied_unlisted = denied;
  return d;
}

Decisions read_back(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return parse_decisions(text.str(), path.string());
}

}  // namespace

TEST_CASE("record writer: the file ends with the last snapshot, whatever waited before it") {
  const auto dir = scratch_dir();
  const auto path = dir / "decisions.json";
  std::string error;
  {
    RecordWriter writer(path);
    for (std::uint64_t i = 1; i <= 200; ++i) writer.submit(with_total(i));
    const Decisions last = with_total(1000);
    CHECK(writer.finish(&last, error));
    CHECK(error.empty());
    CHECK(writer.take_report().failed == 0);
    writer.submit(with_total(5));  // after finish: ignored, nothing writes any more
  }
  CHECK(read_back(path).denied_total == 1000);
  // No temporary left behind by any of the writes.
  std::size_t files = 0;
  for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator(dir)) ++files;
  CHECK(files == 1);
  std::filesystem::remove_all(dir);
}

TEST_CASE("record writer: flush() returns once what was submitted is in the file") {
  const auto dir = scratch_dir();
  const auto path = dir / "decisions.json";
  RecordWriter writer(path);
  for (std::uint64_t i = 1; i <= 50; ++i) {
    writer.submit(with_total(i));
    writer.flush();
    REQUIRE(read_back(path).denied_total == i);
  }
  std::string error;
  CHECK(writer.finish(nullptr, error));
  writer.flush();  // after finish: returns at once
  std::filesystem::remove_all(dir);
}

TEST_CASE("record writer: what waits when it finishes is written before the last word") {
  const auto dir = scratch_dir();
  const auto path = dir / "decisions.json";
  std::string error;
  RecordWriter writer(path);
  writer.submit(with_total(7));
  CHECK(writer.finish(nullptr, error));
  CHECK(read_back(path).denied_total == 7);
  std::filesystem::remove_all(dir);
}

TEST_CASE("record writer: a failed write is reported once, naming the file: the last word's failure too") {
  const auto dir = scratch_dir();
  const auto path = dir / "gone" / "decisions.json";  // its directory does not exist
  RecordWriter writer(path);
  writer.submit(with_total(1));
  std::string error;
  const Decisions last = with_total(2);
  CHECK_FALSE(writer.finish(&last, error));
  CHECK(error.find((dir / "gone").string()) != std::string::npos);
  const RecordWriter::Report background = writer.take_report();
  CHECK(background.failed == 1);
  CHECK(background.first_message.find((dir / "gone").string()) != std::string::npos);
  CHECK(writer.take_report().failed == 0);  // once
  std::filesystem::remove_all(dir);
}

// What DecisionFile did synchronously before the writer had its own thread:
// readable by the host whatever the umask, and every failed write counted in
// the record, which then says it is incomplete and is written again.

TEST_CASE("record writer: the file is readable by the host whatever dnsguard's umask") {
  const auto dir = scratch_dir();
  const auto path = dir / "decisions.json";
  const mode_t old_mask = ::umask(077);
  {
    RecordWriter writer(path);
    writer.submit(with_total(1));
    writer.flush();
    const Decisions last = with_total(2);
    std::string error;
    CHECK(writer.finish(&last, error));
  }
  ::umask(old_mask);
  CHECK((std::filesystem::status(path).permissions() & std::filesystem::perms::others_read) !=
        std::filesystem::perms::none);
  std::filesystem::remove_all(dir);
}

TEST_CASE("record writer: each write is accounted for the resolver thread — successes by ticket, failures by errno and time") {
  const auto dir = scratch_dir();
  // The positive control: where it can write, every submit is written, the
  // newest ticket is the last submitted, nothing failed.
  {
    RecordWriter writer(dir / "decisions.json");
    std::uint64_t ticket = 0;
    for (std::uint64_t i = 1; i <= 3; ++i) {
      ticket = writer.submit(with_total(i));
      writer.flush();
    }
    const RecordWriter::Report ok = writer.take_report();
    CHECK(ok.failed == 0);
    CHECK(ok.written == 3);
    CHECK(ok.written_ticket == ticket);
    // Taken once; the newest ticket written stays known.
    const RecordWriter::Report again = writer.take_report();
    CHECK(again.written == 0);
    CHECK(again.written_ticket == ticket);
  }
  // Where it cannot (its directory is gone), each failure is counted, the
  // first with its errno, its time and a line naming the file.
  RecordWriter writer(dir / "missing" / "decisions.json");
  const auto before = RecordWriter::WallClock::now();
  const std::uint64_t first = writer.submit(with_total(1));
  writer.flush();
  writer.submit(with_total(2));
  writer.flush();
  const auto after = RecordWriter::WallClock::now();
  const RecordWriter::Report failed = writer.take_report();
  CHECK(first == 1);
  CHECK(failed.failed == 2);
  CHECK(failed.written == 0);
  CHECK(failed.written_ticket == 0);
  CHECK(failed.first_error == ENOENT);
  CHECK(failed.first_at >= before);
  CHECK(failed.first_at <= after);
  CHECK(failed.first_message.find((dir / "missing").string()) != std::string::npos);
  CHECK(failed.first_message.find("No such file or directory") != std::string::npos);
  std::string error;
  CHECK(writer.finish(nullptr, error));
  std::filesystem::remove_all(dir);
}

TEST_CASE("record writer: a failed write reaches the record, which is written again, marked incomplete, and final at stop") {
  const auto dir = scratch_dir();
  const DecisionRecord::WallClock::time_point t0{std::chrono::seconds(1'800'000'000)};
  DecisionRecord record;
  record.denied("x.example", 1, t0);
  RecordWriter nowhere(dir / "missing" / "decisions.json");
  // Two attempts, each waited for: a snapshot submitted while another still
  // waits replaces it (one write), which is not what this test counts.
  nowhere.submit(record.snapshot(t0));
  nowhere.flush();
  record.mark_written();  // as Server does once the snapshot is submitted
  nowhere.submit(record.snapshot(t0));
  nowhere.flush();
  CHECK(!record.dirty());
  CHECK(!record.incomplete());
  // The resolver thread's next tick: the failures into the record, which is
  // dirty again, so that tick submits it once more.
  const RecordWriter::Report report = nowhere.take_report();
  record.write_failed(report.first_error, report.first_at, report.failed);
  CHECK(record.dirty());
  REQUIRE(record.incomplete());
  CHECK(record.incomplete()->record_writes_failed == 2);
  CHECK(record.incomplete()->reason == "the decision record: No such file or directory");
  // Where it can be written, it is, with the mark and exact totals; the
  // last write, as dnsguard stops, is final.
  const auto path = dir / "decisions.json";
  RecordWriter writer(path);
  const Decisions last = record.snapshot(t0 + std::chrono::seconds(3), true);
  std::string error;
  REQUIRE(writer.finish(&last, error));
  const Decisions d = read_back(path);
  CHECK(d.final);
  CHECK(d.rewritten_every == kDecisionsRewrittenEvery);
  CHECK(d.denied_total == 1);
  REQUIRE(d.incomplete);
  CHECK(d.incomplete->record_writes_failed == 2);
  CHECK(nowhere.finish(nullptr, error));
  std::filesystem::remove_all(dir);
}

TEST_CASE("record writer: due when changed or forced, and at least every kDecisionsRewrittenEvery seconds unchanged") {
  using Clock = RecordWriter::Clock;
  const Clock::time_point t0{};
  CHECK(RecordWriter::due(false, false, std::nullopt, t0));  // never submitted
  // Unchanged and not yet due: left alone (the control of the next step).
  CHECK(!RecordWriter::due(false, false, t0, t0 + std::chrono::seconds(kDecisionsRewrittenEvery - 2)));
  // Due: rewritten, so a reader can tell "nothing new" from "not written".
  CHECK(RecordWriter::due(false, false, t0, t0 + std::chrono::seconds(kDecisionsRewrittenEvery - 1)));
  CHECK(RecordWriter::due(true, false, t0, t0));
  CHECK(RecordWriter::due(false, true, t0, t0));
}
