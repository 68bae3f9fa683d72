// RecordWriter (dnsguard/record_writer.hpp): decisions.json written off the
// resolver's thread, the newest snapshot winning, the last word at finish().
#include <doctest/doctest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

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
    CHECK(writer.take_error().empty());
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
  const std::string background = writer.take_error();
  CHECK(background.find((dir / "gone").string()) != std::string::npos);
  CHECK(writer.take_error().empty());  // once
  std::filesystem::remove_all(dir);
}
