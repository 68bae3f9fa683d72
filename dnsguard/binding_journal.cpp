#include "dnsguard/binding_journal.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <ctime>
#include <fstream>
#include <system_error>

#include "dnsguard/atomic_file.hpp"

namespace cagent::dnsguard {

namespace {

// "<address> <name>\n": the address first, so a name can never be taken
// for part of it.
std::string line_of(std::string_view name, const IpAddress& addr) {
  std::string line = to_string(addr);
  line.push_back(' ');
  line.append(name);
  line.push_back('\n');
  return line;
}

}  // namespace

BindingJournal::BindingJournal(std::filesystem::path path, bool fresh) : path_(std::move(path)) {
  const int flags = O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW | (fresh ? O_TRUNC : 0);
  fd_.reset(::open(path_.c_str(), flags, 0644));
  if (!fd_.valid()) throw_errno("open ", path_.native());
  struct stat st {};
  if (::fstat(fd_.get(), &st) == 0) size_ = static_cast<std::size_t>(st.st_size);
}

bool BindingJournal::append(std::string_view name, const IpAddress& addr) noexcept {
  if (full() || name.empty() || name.size() > 253) return false;
  if (broken_) {
    lost_.add(EIO, static_cast<std::int64_t>(std::time(nullptr)));
    return false;
  }
  try {
    const std::string line = line_of(name, addr);
    // A short line with O_APPEND: whole, or cut short by a crash (the
    // reader skips such a line) or by the device running out mid-line (the
    // next call says why: ENOSPC, EDQUOT, EIO).
    std::size_t done = 0;
    int error = 0;
    while (done < line.size()) {
      const ssize_t n = ::write(fd_.get(), line.data() + done, line.size() - done);
      if (n > 0) {
        done += static_cast<std::size_t>(n);
      } else if (n < 0 && errno == EINTR) {
        continue;
      } else {
        error = n < 0 ? errno : EIO;  // no progress and no error: do not spin
        break;
      }
    }
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

void BindingJournal::rewrite(const std::vector<std::pair<std::string, IpAddress>>& pairs) {
  std::string text;
  for (const auto& [name, addr] : pairs) text += line_of(name, addr);
  ReplaceOptions options;
  options.mode = 0644;
  write_file_atomically(path_, text, options);
  fd_.reset(::open(path_.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC | O_NOFOLLOW));
  if (!fd_.valid()) throw_errno("open ", path_.native());
  size_ = text.size();
  broken_ = false;
}

std::vector<std::pair<std::string, IpAddress>> read_binding_journal(const std::filesystem::path& path) {
  std::vector<std::pair<std::string, IpAddress>> pairs;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (in.eof()) break;  // no newline: cut short by the crash
    const std::size_t space = line.find(' ');
    if (space == std::string::npos || space + 1 >= line.size()) continue;
    const auto addr = parse_ip(std::string_view(line).substr(0, space));
    if (!addr) continue;
    pairs.emplace_back(line.substr(space + 1), *addr);
  }
  return pairs;
}

std::filesystem::path binding_journal_path(const std::filesystem::path& log_dir) {
  return log_dir / "gate-bindings.journal";
}

}  // namespace cagent::dnsguard
