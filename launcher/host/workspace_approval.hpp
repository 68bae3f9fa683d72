#pragma once
// A workspace's .cagent.yaml takes effect only by the user's word.
//
// Whoever last wrote the workspace — the agent of an earlier session, or the
// author of a repository the user cloned — could have written .cagent.yaml
// to widen `domains` to an exfiltration host (or, in a trusted workspace, to
// add extra_args). Telling who wrote it is not possible: a file the agent
// wrote and moved with the directory (mv, cp -a) or a hostile clone looks
// like any other. So, as direnv does for .envrc, the file is used only when
// this user approved its exact content for this very workspace:
//
//   read the file once (the bytes hashed are the bytes shown and loaded)
//     ─▶ the approvals of (path, identity of the directory) from CAGENT_HOME
//     ─▶ decide_workspace_config() (pure) ─▶ none / load / accept / ask / ignore
//
// An approval names the workspace path, the directory's identity
// (file_identity.hpp: a new clone, a copy, or another directory made at the
// same path has another) and the sha256 of the content. New, changed,
// cloned, copied, moved or renamed: all ask. The approvals live only in
// <cagent_home>/approvals/ (trusted, outside every cage), so nothing copied
// inside a workspace carries one along. On a terminal cagent shows the file
// escaped, with what it adds over the global config, and asks [y/N];
// without one it ignores the file with one line naming
// --accept-workspace-config, the user's word on the host's command line
// (which no agent reaches). `cagent allow --save` approves its own edit of
// an approved file (live.hpp). --dry-run and --print-config record nothing.

#include <cstddef>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "launcher/host/config.hpp"

namespace cagent::launcher::host {

inline constexpr const char* kAbsentConfig = "absent";
// Contents approved per workspace, the newest kept: switching between a few
// branches whose .cagent.yaml differs does not ask at every switch.
inline constexpr std::size_t kMaxApprovedContents = 16;

// What the user approved for one workspace directory.
struct WorkspaceApprovals {
  std::string workspace;              // canonical path
  std::string identity;               // file_identity() of the directory
  std::vector<std::string> contents;  // sha256 of each approved content, oldest first
};

std::string render_approvals(const WorkspaceApprovals& approvals);
// Unknown lines are skipped (a newer cagent may add some).
WorkspaceApprovals parse_approvals(std::string_view text);
// `approvals` with `content_hash` as the newest, at most kMaxApprovedContents.
WorkspaceApprovals with_approved(WorkspaceApprovals approvals, const std::string& content_hash);
// `approvals` without `content_hash`.
WorkspaceApprovals without_approved(WorkspaceApprovals approvals, const std::string& content_hash);

// At the end of a session that changed .cagent.yaml: the content to take
// back from the approvals, if any. Approvals are kept per content, several
// of them (branches), so the agent could write back an older content the
// user once approved, and the next session would load it without a word.
// Content the session wrote is taken back — unless it was approved during
// the session (`cagent allow --save`, the user's own edit): `approved_before`
// are the approvals as they stood when the session started.
std::optional<std::string> content_to_withdraw(const std::string& hash_before,
                                               const std::vector<std::string>& approved_before,
                                               const std::string& hash_now);

// The workspace's .cagent.yaml as found at the start.
struct ConfigFileState {
  std::optional<std::string> content;  // nullopt: no regular file
  std::string hash = kAbsentConfig;    // sha256 of content, or "absent"
  bool symlink = false;                // .cagent.yaml is a symlink
};

enum class Verdict {
  none,    // no file: nothing to load
  load,    // approved content: use it
  accept,  // --accept-workspace-config: use it and remember the approval
  ask,     // not approved: show it, use it only after "y"
  ignore,  // not approved and nobody to ask: skip it, warn
};

struct ApprovalInput {
  std::string workspace;                     // canonical path
  std::optional<std::string> identity;       // nullopt: the filesystem gives none
  ConfigFileState file;
  std::optional<WorkspaceApprovals> approvals;  // as found in CAGENT_HOME for this workspace
  bool accept_flag = false;                  // --accept-workspace-config
  bool can_ask = false;                      // a terminal to show the file and ask on
};

struct ApprovalDecision {
  Verdict verdict = Verdict::none;
  std::string why;  // ask/ignore: why it is not approved
};

ApprovalDecision decide_workspace_config(const ApprovalInput& input);

// For the person deciding: one line per thing the workspace layer adds over
// `base` (domains, ignore and readonly patterns not already there) and per
// trust-gated key it sets, saying whether it would apply (`trusted`). Values
// are escaped (printable()).
std::vector<std::string> describe_additions(const ConfigLayer& base, const ConfigLayer& workspace, bool trusted);

// ---- the impure edges ----------------------------------------------------

// Reads .cagent.yaml once (a FIFO or other non-regular file counts as none).
ConfigFileState inspect_config_file(const std::filesystem::path& file);

// sha256 of `file`'s content, "absent", or "unreadable" (for the end-of-
// session notes about .cagent.yaml and .envrc).
std::string file_state_hash(const std::filesystem::path& file);

// <cagent_home>/approvals/<sha256 of path and identity>: one file per
// workspace directory, written whole to a temporary and renamed over the
// old one (never half a file). Two cagents approving at once may lose one
// approval: that only means asking again.
class ApprovalStore {
 public:
  explicit ApprovalStore(const std::filesystem::path& cagent_home);

  // nullopt when nothing was approved for this path and identity.
  std::optional<WorkspaceApprovals> load(const std::string& workspace, const std::string& identity) const;
  void approve(const std::string& workspace, const std::string& identity, const std::string& content_hash) const;
  // Takes one content back; nothing to do when it is not approved.
  void withdraw(const std::string& workspace, const std::string& identity, const std::string& content_hash) const;

 private:
  std::filesystem::path file_for(const std::string& workspace, const std::string& identity) const;
  std::filesystem::path dir_;
};

}  // namespace cagent::launcher::host
