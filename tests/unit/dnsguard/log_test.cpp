// dnsguard's log (log.hpp): bounded in size per session, and a write the
// disk does not take costs a counted line, never dnsguard.
#include "dnsguard/log.hpp"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "../common/temp_dir.hpp"
#include "file_size_limit.hpp"

using namespace cagent::dnsguard;
namespace fs = std::filesystem;

namespace {

std::vector<std::string> lines_of(const fs::path& file) {
  std::ifstream in(file);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

std::size_t count_containing(const std::vector<std::string>& lines, const std::string& what) {
  std::size_t n = 0;
  for (const std::string& l : lines) n += l.find(what) != std::string::npos;
  return n;
}

// Every line whole: a stamp, then text (a line cut short by a full disk
// would run into the next one).
bool whole_lines(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  const std::string text = s.str();
  if (!text.empty() && text.back() != '\n') return false;
  for (const std::string& l : lines_of(file))
    if (l.size() < 21 || l[4] != '-' || l[10] != 'T' || l[19] != 'Z' || l.find("Z ", 21) != std::string::npos)
      return false;
  return true;
}

// Captures what is written to stderr (fd 2) in its scope.
class StderrCapture {
 public:
  explicit StderrCapture(const fs::path& file) : file_(file) {
    saved_ = ::dup(STDERR_FILENO);
    const int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    REQUIRE(fd >= 0);
    ::dup2(fd, STDERR_FILENO);
    ::close(fd);
  }
  ~StderrCapture() { restore(); }
  std::string text() {
    restore();
    std::ifstream in(file_);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }

 private:
  void restore() {
    if (saved_ < 0) return;
    ::dup2(saved_, STDERR_FILENO);
    ::close(saved_);
    saved_ = -1;
  }
  fs::path file_;
  int saved_ = -1;
};

}  // namespace

TEST_CASE("log: past its size cap detail lines are counted, not written, and the count is said before the last lines") {
  cagent::test::TempDir dir;
  const fs::path file = dir / "dnsguard.log";
  const LogLimits limits{2000, 400};
  std::size_t written = 0;
  {
    Logger log(file.string(), LogLevel::info, limits);
    // 90 lines of ~60 bytes: within the rate limiter's burst (100), far
    // past 2000 bytes.
    for (int i = 0; i < 90; ++i) log.event(LogLevel::info, "denied name=n" + std::to_string(i) + ".flood.test type=1");
    CHECK(log.size() <= limits.max_bytes + limits.reserve);
    const auto lines = lines_of(file);
    written = count_containing(lines, "flood.test");
    // The positive control: lines were written up to the cap.
    CHECK(written >= 20);
    CHECK(written + log.capped() == 90);
    CHECK(count_containing(lines, "log size cap of 2000 bytes reached") == 1);
    // The lines that are always written go into the reserve, after the
    // count of what was dropped.
    log.always("counters queries=90");
    const auto after = lines_of(file);
    REQUIRE(after.size() >= 2);
    CHECK(after[after.size() - 2].ends_with("log size cap: " + std::to_string(90 - written) + " lines dropped so far"));
    CHECK(after.back().ends_with("counters queries=90"));
    CHECK(fs::file_size(file) <= limits.max_bytes + limits.reserve);
    CHECK(log.lost().count == 0);  // dropped by the cap, not lost
  }
  // A restarted dnsguard counts what its predecessor wrote: the cap is per
  // session, not per process.
  Logger again(file.string(), LogLevel::info, limits);
  again.event(LogLevel::info, "denied name=late.flood.test type=1");
  CHECK(again.capped() == 1);
  CHECK(count_containing(lines_of(file), "late.flood.test") == 0);
  CHECK(whole_lines(file));
}

TEST_CASE("log: a disk that takes nothing costs counted lines, said once on stderr, and dnsguard goes on") {
  REQUIRE(fs::exists("/dev/full"));  // Linux's device that refuses every write with ENOSPC
  cagent::test::TempDir dir;
  StderrCapture err(dir / "stderr");
  Logger log("/dev/full", LogLevel::info);  // every write: ENOSPC
  for (int i = 0; i < 3; ++i) log.event(LogLevel::info, "denied name=x.test type=1");
  log.always("counters queries=3");
  CHECK(log.lost().count == 4);
  CHECK(log.lost().first_error == ENOSPC);
  CHECK(log.lost().first_at > 0);
  const std::string said = err.text();
  CHECK(said == "dnsguard: cannot write its log /dev/full: No space left on device; lines are counted and dropped "
                "until it can (the decision record says how many)\n");
}

TEST_CASE("log: a line the disk cuts short is cut off again, and the log says what was lost once space returns") {
  cagent::test::TempDir dir;
  const fs::path file = dir / "dnsguard.log";
  StderrCapture err(dir / "stderr");
  Logger log(file.string(), LogLevel::info);
  log.event(LogLevel::info, "before the disk ran out");
  {
    // Room for part of the next line only: the kernel writes that part.
    cagent::test::FileSizeLimit limit(fs::file_size(file) + 10);
    log.event(LogLevel::info, "lost one");
    log.event(LogLevel::info, "lost two");
    CHECK(log.lost().count == 2);
    CHECK(log.lost().first_error == EFBIG);
    CHECK(whole_lines(file));
    limit.lift();  // space comes back
    log.event(LogLevel::info, "after the disk came back");
  }
  const auto lines = lines_of(file);
  REQUIRE(lines.size() == 3);
  CHECK(lines[0].ends_with("before the disk ran out"));
  CHECK(lines[1].ends_with("log: 2 lines could not be written (File too large); writing again"));
  CHECK(lines[2].ends_with("after the disk came back"));
  CHECK(whole_lines(file));
  CHECK(count_containing({err.text()}, "cannot write its log") == 1);
}
