#pragma once
// Who wrote the workspace's .cagent.yaml?
//
// An existing .cagent.yaml is mounted read-only, but most workspaces have
// none, so the agent can create one — and the next session would load it,
// widening its own `domains` (or, in a trusted workspace, adding extra_args).
// A file the agent wrote must never change the next session's policy
// without the user seeing and accepting it, while a file the user wrote or
// that came with the repository keeps working with no extra step.
//
// cagent remembers, per workspace (canonical path), in ~/.cagent/workspaces/
// (trusted, outside every cage):
//   accepted       sha256 of the content last accepted (or "absent");
//   ended          the file's state when the last session ended;
//   first-session  when the first session of the workspace started;
//   session …      sessions started and not yet ended.
//
//   read file (once: the bytes hashed are the bytes loaded)
//     ─▶ lock, load the record and those of enclosing directories
//     ─▶ decide_workspace_config() (pure) ─▶ load / accept / ask / ignore
//     ─▶ register this session ─▶ … docker run … ─▶ record its end
//
// A change is the user's when no session could have made it: it happened
// after the last session ended (the content differs from `ended`) while no
// session of this workspace ran, and no session of an enclosing workspace
// (whose agent can write anywhere below it) ran since before the change
// (file ctime, which the agent cannot set, unlike mtime). Anything else is
// shown and asked about on a terminal, or ignored with a one-line warning.

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "launcher/unique_fd.hpp"

namespace cagent::launcher::host {

inline constexpr const char* kAbsentConfig = "absent";
// The kernel stamps ctime from a coarse clock (up to a tick behind the one
// cagent reads); this much slack keeps a change at a session's edge
// counted as inside it. Erring this way only asks once more.
inline constexpr std::int64_t kClockSlackSeconds = 2;

struct OpenSession {
  std::string id;
  std::int64_t start = 0;  // seconds since the epoch
};

struct WorkspaceRecord {
  std::string path;
  std::string accepted = kAbsentConfig;
  std::optional<std::string> ended;  // nullopt: no session ended yet
  std::int64_t first_session = 0;    // 0: no session started yet
  std::vector<OpenSession> open;
};

std::string render_record(const WorkspaceRecord& record);
// Unknown lines are skipped (a newer cagent may add some).
WorkspaceRecord parse_record(std::string_view text);

// The workspace's .cagent.yaml as found at the start.
struct ConfigFileState {
  std::optional<std::string> content;  // nullopt: no regular file
  std::string hash = kAbsentConfig;    // sha256 of content, or "absent"
  bool symlink = false;                // .cagent.yaml is a symlink
  std::int64_t ctime = 0;              // newest ctime of the name and its target
};

enum class Verdict {
  load,    // the accepted content: use it
  accept,  // the user's: use it and remember it as accepted
  ask,     // may be the agent's: show it, use it only after "y"
  ignore,  // may be the agent's and nobody to ask: skip it, warn
};

struct ApprovalInput {
  std::optional<WorkspaceRecord> record;   // nullopt: first sight of this workspace
  ConfigFileState file;
  std::vector<WorkspaceRecord> enclosing;  // records of the workspace's ancestors
  bool accept_flag = false;                // --accept-workspace-config
  bool can_ask = false;                    // a terminal to show the file and ask on
};

struct ApprovalDecision {
  Verdict verdict = Verdict::load;
  std::string why;  // ask/ignore: why the file may be the agent's
};

ApprovalDecision decide_workspace_config(const ApprovalInput& input);

// ---- the impure edges ----------------------------------------------------

// Reads .cagent.yaml once (a FIFO or other non-regular file counts as none).
ConfigFileState inspect_config_file(const std::filesystem::path& file);

// sha256 of `file`'s content, or "absent" (for .envrc).
std::string file_state_hash(const std::filesystem::path& file);

// ~/.cagent/workspaces/<sha256 of the path>: one file per workspace, each
// change under an exclusive lock of the directory, written by rename.
class WorkspaceRecords {
 public:
  explicit WorkspaceRecords(std::filesystem::path cagent_home);
  WorkspaceRecords(const WorkspaceRecords&) = delete;
  WorkspaceRecords& operator=(const WorkspaceRecords&) = delete;
  ~WorkspaceRecords();

  // Blocks until this process holds the lock (released by unlock or the destructor).
  void lock();
  void unlock();

  std::optional<WorkspaceRecord> load(const std::filesystem::path& workspace) const;
  void save(const WorkspaceRecord& record) const;
  // Records of the directories above `workspace` that have one.
  std::vector<WorkspaceRecord> enclosing(const std::filesystem::path& workspace) const;

 private:
  std::filesystem::path dir_;
  UniqueFd lock_fd_;  // open (and flock'ed) between lock() and unlock()
};

}  // namespace cagent::launcher::host
