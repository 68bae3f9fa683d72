#include "dnsguard/binding_journal.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
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
  try {
    const std::string line = line_of(name, addr);
    // One write of a short line with O_APPEND: whole, or cut short by a
    // crash (the reader skips such a line).
    const ssize_t n = ::write(fd_.get(), line.data(), line.size());
    if (n != static_cast<ssize_t>(line.size())) return false;
    size_ += line.size();
    return true;
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
