#include "launcher/host/update_check.hpp"

#include <system_error>

#include "launcher/host/paths.hpp"

namespace cagent::launcher::host {
namespace fs = std::filesystem;

bool update_check_due(const fs::path& stamp) {
  std::error_code ec;
  const auto mtime = fs::last_write_time(stamp, ec);
  if (!ec && fs::file_time_type::clock::now() - mtime < std::chrono::hours(24)) return false;
  try {
    fs::create_directories(stamp.parent_path());
    write_file(stamp, "", 0644);  // also on failure below: at most one try a day
  } catch (const std::exception&) {
    return false;
  }
  return true;
}

std::optional<std::string> check_for_update(ProcessRunner& runner, const fs::path& repo,
                                            std::chrono::milliseconds budget) {
  std::error_code ec;
  if (!fs::exists(repo / ".git", ec)) return std::nullopt;
  RunOptions opts;
  opts.output = RunOptions::Output::capture;
  opts.timeout = budget;
  opts.discard_stderr = true;  // no upstream / offline: silently no message
  // Never prompt for credentials: there is no one to answer.
  opts.extra_env = {"GIT_TERMINAL_PROMPT=0", "GIT_SSH_COMMAND=ssh -oBatchMode=yes"};
  const std::string dir = repo.string();
  const RunResult upstream =
      runner.run({"git", "-C", dir, "rev-parse", "--abbrev-ref", "--symbolic-full-name", "@{u}"}, opts);
  if (upstream.status != 0 || upstream.timed_out) return std::nullopt;
  RunOptions fetch = opts;
  fetch.output = RunOptions::Output::discard;
  fetch.merge_stderr = true;
  const RunResult fetched = runner.run({"git", "-C", dir, "fetch", "--quiet"}, fetch);
  if (fetched.status != 0 || fetched.timed_out) return std::nullopt;
  const RunResult behind = runner.run({"git", "-C", dir, "rev-list", "--count", "HEAD..@{u}"}, opts);
  if (behind.status != 0 || behind.timed_out) return std::nullopt;
  const std::string n = behind.output.substr(0, behind.output.find('\n'));
  if (n.empty() || n == "0") return std::nullopt;
  return "a newer cagent is available (" + n + " commit" + (n == "1" ? "" : "s") +
         " upstream); to update: git -C " + shell_quote(dir) + " pull";
}

}  // namespace cagent::launcher::host
