#include "launcher/host/workspace_approval.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <sstream>
#include <stdexcept>
#include <system_error>

#include "launcher/host/paths.hpp"
#include "launcher/host/sha256.hpp"
#include "launcher/host/text.hpp"

namespace cagent::launcher::host {
namespace fs = std::filesystem;
namespace {

std::int64_t to_int(std::string_view s) {
  std::int64_t v = 0;
  const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || ptr != s.data() + s.size()) return 0;
  return v;
}

// Why the file may have been written by an agent, if it may.
std::optional<std::string> suspicion(const ApprovalInput& in) {
  const ConfigFileState& f = in.file;
  // An enclosing workspace's agent could write anywhere below it, this
  // file included, and nothing in this workspace's own record saw it. ctime
  // is set by the kernel at every change; the agent can forge mtime, not it.
  for (const WorkspaceRecord& e : in.enclosing) {
    if (!e.open.empty()) {
      return "a session of the enclosing workspace " + printable(e.path) + " is running (or never recorded its end)";
    }
    if (e.first_session != 0 && f.ctime + kClockSlackSeconds >= e.first_session) {
      return "it changed after sessions of the enclosing workspace " + printable(e.path) + " began";
    }
  }
  if (!in.record) return std::nullopt;  // first sight: the user's or the repository's
  const WorkspaceRecord& r = *in.record;
  if (!r.open.empty()) {
    return "a session of this workspace is running (or never recorded its end), and it changed";
  }
  if (f.symlink && r.first_session != 0) {
    // Whoever changed the target's content cannot be told from here.
    return "it is a symlink and what it names changed since it was accepted";
  }
  if (r.ended && f.hash == *r.ended) {
    // Exactly what the last session left: written during a session.
    return "it changed during a cagent session of this workspace";
  }
  // Changed after the last session ended, while none ran: the user's.
  return std::nullopt;
}

}  // namespace

std::string render_record(const WorkspaceRecord& record) {
  std::string s =
      "# cagent: the workspace .cagent.yaml last accepted (see launcher/host/workspace_approval.hpp)\n";
  s += "path " + printable(record.path) + "\n";
  s += "accepted " + record.accepted + "\n";
  if (record.ended) s += "ended " + *record.ended + "\n";
  s += "first-session " + std::to_string(record.first_session) + "\n";
  for (const OpenSession& o : record.open) s += "session " + o.id + " " + std::to_string(o.start) + "\n";
  return s;
}

WorkspaceRecord parse_record(std::string_view text) {
  WorkspaceRecord r;
  std::istringstream in{std::string(text)};
  for (std::string line; std::getline(in, line);) {
    const std::size_t sp = line.find(' ');
    if (line.empty() || line[0] == '#' || sp == std::string::npos) continue;
    const std::string key = line.substr(0, sp);
    const std::string value = line.substr(sp + 1);
    if (key == "path") {
      r.path = value;
    } else if (key == "accepted") {
      r.accepted = value;
    } else if (key == "ended") {
      r.ended = value;
    } else if (key == "first-session") {
      r.first_session = to_int(value);
    } else if (key == "session") {
      const std::size_t sp2 = value.find(' ');
      if (sp2 == std::string::npos) continue;
      r.open.push_back(OpenSession{value.substr(0, sp2), to_int(value.substr(sp2 + 1))});
    }
  }
  return r;
}

ApprovalDecision decide_workspace_config(const ApprovalInput& in) {
  const ConfigFileState& f = in.file;
  // No file: nothing loads, nothing widens; "absent" becomes the accepted state.
  if (!f.content) {
    if (in.record && in.record->accepted == kAbsentConfig) return {Verdict::load, ""};
    return {Verdict::accept, ""};
  }
  if (in.record && f.hash == in.record->accepted) return {Verdict::load, ""};
  // The user said so on the host's command line, which no agent reaches.
  if (in.accept_flag) return {Verdict::accept, ""};
  if (auto why = suspicion(in)) return {in.can_ask ? Verdict::ask : Verdict::ignore, *why};
  return {Verdict::accept, ""};
}

ConfigFileState inspect_config_file(const fs::path& file) {
  ConfigFileState s;
  struct stat link {};
  if (::lstat(file.c_str(), &link) != 0) return s;
  s.symlink = S_ISLNK(link.st_mode);
  s.ctime = link.st_ctim.tv_sec;
  // O_NONBLOCK: a FIFO planted under this name must not hang cagent.
  const UniqueFd owned(::open(file.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY));
  if (!owned.valid()) return s;
  const int fd = owned.get();
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) return s;
  if (st.st_ctim.tv_sec > s.ctime) s.ctime = st.st_ctim.tv_sec;
  std::string content;
  char buf[8192];
  while (true) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int saved = errno;
      throw std::runtime_error("cannot read " + printable(file.string()) + ": " + std::strerror(saved));
    }
    if (n == 0) break;
    content.append(buf, static_cast<std::size_t>(n));
  }
  s.hash = sha256_hex(content);
  s.content = std::move(content);
  return s;
}

std::string file_state_hash(const fs::path& file) {
  try {
    return inspect_config_file(file).hash;
  } catch (const std::exception&) {
    return "unreadable";
  }
}

WorkspaceRecords::WorkspaceRecords(fs::path cagent_home) : dir_(std::move(cagent_home) / "workspaces") {}

WorkspaceRecords::~WorkspaceRecords() { unlock(); }

void WorkspaceRecords::lock() {
  if (lock_fd_.valid()) return;
  fs::create_directories(dir_);
  fs::permissions(dir_, fs::perms::owner_all);
  const fs::path file = dir_ / ".lock";
  UniqueFd fd(::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (!fd.valid()) {
    const int saved = errno;
    throw std::system_error(saved, std::generic_category(), "open " + file.string());
  }
  while (::flock(fd.get(), LOCK_EX) != 0) {
    const int saved = errno;
    if (saved != EINTR) throw std::system_error(saved, std::generic_category(), "lock " + file.string());
  }
  lock_fd_ = std::move(fd);  // held (locked) until unlock()
}

void WorkspaceRecords::unlock() {
  lock_fd_.reset();  // releases the flock
}

std::optional<WorkspaceRecord> WorkspaceRecords::load(const fs::path& workspace) const {
  const fs::path file = dir_ / sha256_hex(workspace.string()).substr(0, 32);
  std::error_code ec;
  if (!fs::exists(file, ec)) return std::nullopt;
  WorkspaceRecord r = parse_record(read_file(file));
  r.path = workspace.string();
  return r;
}

void WorkspaceRecords::save(const WorkspaceRecord& record) const {
  const fs::path file = dir_ / sha256_hex(record.path).substr(0, 32);
  const fs::path temporary = file.string() + ".tmp";
  write_file(temporary, render_record(record), 0600);
  fs::rename(temporary, file);
}

std::vector<WorkspaceRecord> WorkspaceRecords::enclosing(const fs::path& workspace) const {
  std::vector<WorkspaceRecord> out;
  fs::path p = workspace;
  while (p.has_parent_path() && p.parent_path() != p) {
    p = p.parent_path();
    if (auto r = load(p)) out.push_back(std::move(*r));
  }
  return out;
}

}  // namespace cagent::launcher::host
