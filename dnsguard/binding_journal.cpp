#include "dnsguard/binding_journal.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <ctime>
#include <fstream>
#include <system_error>

#include "dnsguard/atomic_file.hpp"

namespace cagent::dnsguard {

namespace {

using Clock = std::chrono::steady_clock;

// "<address> <expiry ms> <name>\n": the address and the expiry first, so a
// name can never be taken for part of them.
std::string line_of(std::string_view name, const IpAddress& addr, Clock::time_point until) {
  std::string line = to_string(addr);
  line.push_back(' ');
  line += std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(until.time_since_epoch()).count());
  line.push_back(' ');
  line.append(name);
  line.push_back('\n');
  return line;
}

}  // namespace

BindingJournal::BindingJournal(std::filesystem::path path, bool fresh, std::size_t max_bytes)
    : path_(std::move(path)), max_bytes_(max_bytes) {
  const int flags = O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW | (fresh ? O_TRUNC : 0);
  fd_.reset(::open(path_.c_str(), flags, 0644));
  if (!fd_.valid()) throw_errno("open ", path_.native());
  struct stat st {};
  if (::fstat(fd_.get(), &st) == 0) size_ = static_cast<std::size_t>(st.st_size);
}

bool BindingJournal::append(std::string_view name, const IpAddress& addr, Clock::time_point until) noexcept {
  if (full() || name.empty() || name.size() > 253) return false;
  if (broken_) {
    lost_.add(EIO, static_cast<std::int64_t>(std::time(nullptr)));
    return false;
  }
  try {
    const std::string line = line_of(name, addr, until);
    // A short line with O_APPEND: whole, or cut short by a crash (the
    // reader skips such a line) or by the device running out mid-line (the
    // next call says why: ENOSPC, EDQUOT, EIO).
    std::size_t done = 0;
    const int error = write_all(fd_.get(), line, &done);
    if (error == 0) {
      size_ += line.size();
      return true;
    }
    // The part written must go: the next pair would run into it and read
    // as another address ("2001:db8:1:" + "2001:db8::5 b.test" is an
    // address too). If it cannot go, nothing more is appended this session
    // (only a restart reads the journal, and it skips a last line without
    // its newline).
    if (done > 0 && ::ftruncate(fd_.get(), static_cast<off_t>(size_)) != 0) broken_ = true;
    lost_.add(error, static_cast<std::int64_t>(std::time(nullptr)));
    return false;
  } catch (...) {
    return false;
  }
}

void BindingJournal::rewrite(const std::vector<JournalEntry>& entries) {
  std::string text;
  for (const auto& e : entries) text += line_of(e.name, e.addr, e.until);
  ReplaceOptions options;
  options.mode = 0644;
  write_file_atomically(path_, text, options);
  fd_.reset(::open(path_.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC | O_NOFOLLOW));
  if (!fd_.valid()) throw_errno("open ", path_.native());
  size_ = text.size();
  broken_ = false;
}

std::vector<JournalEntry> read_binding_journal(const std::filesystem::path& path) {
  std::vector<JournalEntry> entries;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (in.eof()) break;  // no newline: cut short by the crash
    const std::size_t first = line.find(' ');
    const std::size_t second = first == std::string::npos ? first : line.find(' ', first + 1);
    if (second == std::string::npos || second + 1 >= line.size()) continue;
    const auto addr = parse_ip(std::string_view(line).substr(0, first));
    const std::string_view ms = std::string_view(line).substr(first + 1, second - first - 1);
    std::int64_t count = 0;
    const auto [end, ec] = std::from_chars(ms.data(), ms.data() + ms.size(), count);
    if (!addr || ec != std::errc() || end != ms.data() + ms.size()) continue;
    entries.push_back({line.substr(second + 1), *addr, Clock::time_point(std::chrono::milliseconds(count))});
  }
  return entries;
}

std::filesystem::path binding_journal_path(const std::filesystem::path& log_dir) {
  return log_dir / "gate-bindings.journal";
}

}  // namespace cagent::dnsguard
