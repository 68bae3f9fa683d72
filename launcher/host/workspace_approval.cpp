#include "launcher/host/workspace_approval.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <sstream>
#include <stdexcept>
#include <system_error>

#include "dnsguard/allow_list.hpp"
#include "dnsguard/atomic_file.hpp"
#include "launcher/host/paths.hpp"
#include "launcher/host/sha256.hpp"
#include "launcher/host/text.hpp"
#include "dnsguard/posix.hpp"

namespace cagent::launcher::host {
namespace fs = std::filesystem;
namespace {

bool contains(const std::vector<std::string>& list, const std::string& value) {
  return std::find(list.begin(), list.end(), value) != list.end();
}

// A domain as merge_layers() compares them (case, a trailing dot).
std::string domain_key(const std::string& name) {
  try {
    return dnsguard::normalize_pattern(name);
  } catch (const std::exception&) {
    return name;  // invalid: validate() will say so; shown as written
  }
}

// The entries of `added` that `base` does not have, escaped, comma-separated.
std::string new_entries(const std::vector<Entry>& base, const std::vector<Entry>& added,
                        std::string (*key)(const std::string&)) {
  std::vector<std::string> seen;
  for (const Entry& e : base) seen.push_back(key(e.value));
  std::string out;
  for (const Entry& e : added) {
    const std::string k = key(e.value);
    if (contains(seen, k)) continue;
    seen.push_back(k);
    out += (out.empty() ? "" : ", ") + printable(e.value);
  }
  return out;
}

std::string as_written(const std::string& value) { return value; }

std::string joined(const std::vector<Entry>& entries) {
  std::string out;
  for (const Entry& e : entries) out += (out.empty() ? "" : " ") + printable(e.value);
  return out;
}

}  // namespace

std::string render_approvals(const WorkspaceApprovals& approvals) {
  std::string s =
      "# cagent: .cagent.yaml contents this user approved for this workspace directory\n"
      "# (see launcher/host/workspace_approval.hpp); path and identity must both match\n";
  s += "path " + printable(approvals.workspace) + "\n";
  s += "identity " + approvals.identity + "\n";
  for (const std::string& c : approvals.contents) s += "approved " + c + "\n";
  return s;
}

WorkspaceApprovals parse_approvals(std::string_view text) {
  WorkspaceApprovals a;
  std::istringstream in{std::string(text)};
  for (std::string line; std::getline(in, line);) {
    const std::size_t sp = line.find(' ');
    if (line.empty() || line[0] == '#' || sp == std::string::npos) continue;
    const std::string key = line.substr(0, sp);
    std::string value = line.substr(sp + 1);
    if (key == "path") {
      a.workspace = std::move(value);
    } else if (key == "identity") {
      a.identity = std::move(value);
    } else if (key == "approved") {
      a.contents.push_back(std::move(value));
    }
  }
  return a;
}

WorkspaceApprovals with_approved(WorkspaceApprovals approvals, const std::string& content_hash) {
  std::erase(approvals.contents, content_hash);
  approvals.contents.push_back(content_hash);
  if (approvals.contents.size() > kMaxApprovedContents) {
    approvals.contents.erase(approvals.contents.begin(),
                             approvals.contents.end() - static_cast<std::ptrdiff_t>(kMaxApprovedContents));
  }
  return approvals;
}

WorkspaceApprovals without_approved(WorkspaceApprovals approvals, const std::string& content_hash) {
  std::erase(approvals.contents, content_hash);
  return approvals;
}

std::optional<std::string> content_to_withdraw(const std::string& hash_before,
                                               const std::vector<std::string>& approved_before,
                                               const std::string& hash_now) {
  if (hash_now == hash_before || !contains(approved_before, hash_now)) return std::nullopt;
  return hash_now;
}

ApprovalDecision decide_workspace_config(const ApprovalInput& in) {
  if (!in.file.content) return {Verdict::none, ""};
  // The approvals must be this directory's: the same path and the same
  // identity (the caller looks them up by both; checked again here).
  const bool this_workspace = in.identity && in.approvals && in.approvals->workspace == in.workspace &&
                              in.approvals->identity == *in.identity;
  if (this_workspace && contains(in.approvals->contents, in.file.hash)) return {Verdict::load, ""};
  // The user's word on the host's command line, which no agent reaches.
  if (in.accept_flag) return {Verdict::accept, ""};
  std::string why;
  if (!in.identity) {
    why = "this filesystem gives the directory no identity to remember approvals by";
  } else if (this_workspace) {
    why = "it changed since you approved it";
  } else {
    why = "you have not approved it in this directory (new, cloned, copied, moved or renamed)";
  }
  return {in.can_ask ? Verdict::ask : Verdict::ignore, why};
}

std::vector<std::string> describe_additions(const ConfigLayer& base, const ConfigLayer& ws, bool trusted) {
  std::vector<std::string> lines;
  if (const std::string d = new_entries(base.domains, ws.domains, domain_key); !d.empty()) {
    lines.push_back("domains the cage may reach: " + d);
  }
  if (const std::string i = new_entries(base.ignore, ws.ignore, as_written); !i.empty()) {
    lines.push_back("ignore (hidden from the agent): " + i);
  }
  if (const std::string r = new_entries(base.readonly, ws.readonly, as_written); !r.empty()) {
    lines.push_back("readonly: " + r);
  }
  const std::string applies = trusted ? " (applies: this workspace is in ~/.cagent/trusted)"
                                      : " (ignored: this workspace is not trusted)";
  if (!ws.extra_args.empty()) lines.push_back("extra_args: " + joined(ws.extra_args) + applies);
  if (!ws.dns_resolvers.empty()) lines.push_back("dns_resolvers: " + joined(ws.dns_resolvers) + applies);
  if (!ws.ca_certificates.empty()) lines.push_back("ca_certificates: " + joined(ws.ca_certificates) + applies);
  if (!ws.image_packages.empty()) lines.push_back("image_packages: " + joined(ws.image_packages) + applies);
  if (ws.connection_gate) {
    // Asking for the gate needs no trust; turning it off does.
    const bool off = ws.connection_gate->value == "false";
    lines.push_back("connection_gate: " + printable(ws.connection_gate->value) + (off ? applies : " (applies)"));
  }
  return lines;
}

ConfigFileState inspect_config_file(const fs::path& file) {
  ConfigFileState s;
  std::error_code ec;
  s.symlink = fs::is_symlink(fs::symlink_status(file, ec));
  // O_NONBLOCK: a FIFO planted under this name must not hang cagent.
  const UniqueFd owned(::open(file.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY));
  if (!owned.valid()) return s;
  const int fd = owned.get();
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) return s;
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

ApprovalStore::ApprovalStore(const fs::path& cagent_home) : dir_(cagent_home / "approvals") {}

fs::path ApprovalStore::file_for(const std::string& workspace, const std::string& identity) const {
  std::string key = workspace;
  key += '\0';
  key += identity;
  return dir_ / sha256_hex(key).substr(0, 32);
}

std::optional<WorkspaceApprovals> ApprovalStore::load(const std::string& workspace, const std::string& identity) const {
  const fs::path file = file_for(workspace, identity);
  std::error_code ec;
  if (!fs::exists(file, ec)) return std::nullopt;
  WorkspaceApprovals a = parse_approvals(read_file(file));
  if (a.workspace != printable(workspace) || a.identity != identity) return std::nullopt;
  a.workspace = workspace;
  return a;
}

void ApprovalStore::approve(const std::string& workspace, const std::string& identity,
                            const std::string& content_hash) const {
  fs::create_directories(dir_);
  fs::permissions(dir_, fs::perms::owner_all);
  WorkspaceApprovals current = load(workspace, identity).value_or(WorkspaceApprovals{workspace, identity, {}});
  dnsguard::ReplaceOptions options;
  options.mode = 0600;
  dnsguard::write_file_atomically(file_for(workspace, identity),
                                  render_approvals(with_approved(std::move(current), content_hash)), options);
}

void ApprovalStore::withdraw(const std::string& workspace, const std::string& identity,
                             const std::string& content_hash) const {
  std::optional<WorkspaceApprovals> current = load(workspace, identity);
  if (!current || !contains(current->contents, content_hash)) return;
  dnsguard::ReplaceOptions options;
  options.mode = 0600;
  dnsguard::write_file_atomically(file_for(workspace, identity),
                                  render_approvals(without_approved(std::move(*current), content_hash)), options);
}

}  // namespace cagent::launcher::host
