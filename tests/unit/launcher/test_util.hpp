#pragma once
// Helpers for the launcher unit tests: a private temporary directory and a
// ProcessRunner fake that records argv and answers from a script.

#include <grp.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <algorithm>
#include <functional>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "launcher/host/paths.hpp"
#include "launcher/host/process.hpp"

namespace cagent::launcher::host::test {

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "cagent-unit-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = std::filesystem::canonical(tmpl);
  }
  ~TempDir() {
    std::error_code ec;
    // Read-only placeholders inside must not stop the cleanup.
    for (auto it = std::filesystem::recursive_directory_iterator(path_, ec);
         !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
      std::error_code type_ec;  // (a symlink may loop: is_directory() would throw)
      if (it->symlink_status(type_ec).type() == std::filesystem::file_type::directory) {
        std::filesystem::permissions(it->path(), std::filesystem::perms::owner_all,
                                     std::filesystem::perm_options::add, ec);
      }
    }
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& rel) const { return path_ / rel; }

  // Creates a file (and its parents) with content.
  std::filesystem::path file(const std::string& rel, const std::string& content = "x") const {
    const auto p = path_ / rel;
    std::filesystem::create_directories(p.parent_path());
    write_file(p, content, 0644);
    return p;
  }
  std::filesystem::path dir(const std::string& rel) const {
    const auto p = path_ / rel;
    std::filesystem::create_directories(p);
    return p;
  }

 private:
  std::filesystem::path path_;
};

// Runs `work` as the user who runs cagent would: when the tests run as root
// (which reads through any permission bits), in a forked child switched to
// uid/gid 65534 (it must own nothing it reads, so that it is "others"),
// whose answer comes back through a pipe; otherwise right here.
inline std::string run_unprivileged(const std::function<std::string()>& work) {
  if (::geteuid() != 0) return work();
  int fds[2];
  if (::pipe(fds) != 0) throw std::runtime_error("pipe failed");
  const pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    ::close(fds[0]);
    if (::setgroups(0, nullptr) != 0 || ::setgid(65534) != 0 || ::setuid(65534) != 0) ::_exit(3);
    std::string text;
    try {
      text = work();
    } catch (...) {
      ::_exit(5);
    }
    const char* p = text.data();
    std::size_t left = text.size();
    while (left > 0) {
      const ssize_t n = ::write(fds[1], p, left);
      if (n <= 0) ::_exit(4);
      p += n;
      left -= static_cast<std::size_t>(n);
    }
    ::_exit(0);
  }
  ::close(fds[1]);
  std::string text;
  char buf[4096];
  for (ssize_t n; (n = ::read(fds[0], buf, sizeof buf)) > 0;) text.append(buf, static_cast<std::size_t>(n));
  ::close(fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    throw std::runtime_error("the child running as uid 65534 failed (wait status " + std::to_string(status) + ")");
  }
  return text;
}

class FakeRunner final : public ProcessRunner {
 public:
  // Decides the result of run(); default: status 0, no output.
  std::function<RunResult(const std::vector<std::string>&)> respond =
      [](const std::vector<std::string>&) { return RunResult{}; };
  int foreground_status = 0;
  std::vector<int> signals_during_run;  // delivered to on_signal during run_foreground
  std::function<void()> during_foreground;  // e.g. inspect the session dir
  bool foreground_hung_up = false;          // what run_foreground reports about the Hangup
  bool foreground_killed = false;

  std::vector<std::vector<std::string>> calls;
  std::vector<std::string> foreground_argv;
  Hangup foreground_hangup;  // what the last run_foreground was given

  // run() may be called from two threads at once (ensure_image builds the
  // throwaway stages side by side): `calls` is guarded, and so is respond()
  // unless a test that needs the calls to overlap clears this (its respond
  // must then be thread-safe itself).
  bool serialize_respond = true;

  RunResult run(const std::vector<std::string>& argv, const RunOptions&) override {
    std::unique_lock lock(mutex_);
    calls.push_back(argv);
    if (!serialize_respond) lock.unlock();
    return respond(argv);
  }
  ForegroundResult run_foreground(const std::vector<std::string>& argv, const std::function<void(int)>& on_signal,
                                  const Hangup& hangup) override {
    foreground_argv = argv;
    foreground_hangup = hangup;
    calls.push_back(argv);
    if (during_foreground) during_foreground();
    for (int s : signals_during_run) on_signal(s);
    return ForegroundResult{foreground_status, foreground_hung_up, foreground_killed};
  }
  bool called_with_prefix(const std::vector<std::string>& prefix) const {
    for (const auto& c : calls) {
      if (c.size() >= prefix.size() && std::equal(prefix.begin(), prefix.end(), c.begin())) return true;
    }
    return false;
  }

 private:
  std::mutex mutex_;
};

}  // namespace cagent::launcher::host::test
