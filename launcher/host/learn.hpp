#pragma once
// Learn mode on the host: `cagent --learn [-- command]` (or `learn: true`
// in the global config) runs a session whose dnsguard resolves every name
// and records those the allowlist did not allow (the decision record's
// `learned`). At the end cagent turns them into a proposal, prints it and
// keeps it, so one reviewed command saves it:
//
//   decisions.json ─learned_names()─▶ LearnedCount… ─propose_allowlist()─▶ ProposalEntry…
//        (dnsguard's, host-read)        (not allowed yet)   (siblings folded by the PSL)
//     ─▶ proposal_lines() on stderr
//     ─▶ store_proposal() <cagent_home>/learned/<workspace key>
//                            ◀─load_proposal()── cagent allow --save --from-learned
//
// The proposal lives in cagent's own directory, never in the workspace:
// the agent can write the workspace, and a proposal it planted would be
// saved into the allowlist by a user who trusts the word "learned".
//
// Folding uses the Public Suffix List (libpsl), never hand-written suffix
// rules: two or more distinct names strictly below one registrable domain
// R ("a.example.co.uk", "b.c.example.co.uk") become "*.R"; R itself, when
// it was looked up, stays an exact name (a wildcard does not match its
// apex); a name that is itself a public suffix, or whose registrable
// domain had only one name below it, stays exact. So a public suffix is
// never folded (`*.com`, `*.github.io` cannot come out: R is one label
// more than a public suffix by definition).

#include <cstdint>
#include <filesystem>
#include <iosfwd>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "dnsguard/contracts.hpp"

struct psl_ctx_st;

namespace cagent::launcher::host {

struct HostContext;
struct SessionIo;

// What decides "sibling": the registrable domain of a name, nullopt when
// the name is a public suffix itself (or not below one).
class RegistrableDomains {
 public:
  virtual ~RegistrableDomains() = default;
  virtual std::optional<std::string> registrable_domain(std::string_view name) const = 0;
};

// libpsl's list: the newer of the library's built-in copy and the system's
// (Debian's publicsuffix package), private section included (github.io is a
// public suffix). Throws std::runtime_error when libpsl has no list.
class PublicSuffixList final : public RegistrableDomains {
 public:
  PublicSuffixList();
  std::optional<std::string> registrable_domain(std::string_view name) const override;

 private:
  struct Free {
    void operator()(psl_ctx_st* ctx) const noexcept;
  };
  std::unique_ptr<psl_ctx_st, Free> ctx_;
};

struct LearnedCount {
  std::string name;  // lowercase, no trailing dot
  std::uint64_t count = 0;
  friend bool operator==(const LearnedCount&, const LearnedCount&) = default;
};

struct ProposalEntry {
  std::string pattern;             // "*.example.com" or an exact name
  std::vector<std::string> names;  // the learned names it stands for, sorted
  std::uint64_t count = 0;         // their lookups
  friend bool operator==(const ProposalEntry&, const ProposalEntry&) = default;
};

// The rule (see the top of this file), pure. Names `allowed` (the session's
// allowlist patterns) already allows, and names that are not valid
// hostnames, are left out; the same name twice counts once. Entries sorted
// by pattern.
std::vector<ProposalEntry> propose_allowlist(const std::vector<LearnedCount>& learned,
                                             const std::vector<std::string>& allowed,
                                             const RegistrableDomains& domains);

// The record's learned names.
std::vector<LearnedCount> learned_names(const dnsguard::Decisions& record);

// The end-of-session text (without the "cagent: " prefix): the proposal,
// one entry a line, and how to save it; `unlisted` lookups past the
// record's bound are said, since the proposal may then miss names.
std::vector<std::string> proposal_lines(const std::vector<ProposalEntry>& proposal, std::uint64_t unlisted);

// The loud lines at the start and at the end of a learn session.
std::string learn_start_line();
std::string learn_end_line();

// <cagent_home>/learned/<sha256 of the workspace path>: the last learn
// session's proposal for that workspace.
std::filesystem::path proposal_path(const std::filesystem::path& cagent_home, const std::filesystem::path& workspace);
// Replaces it (atomically), patterns one per line after a comment naming
// the workspace and the session.
void store_proposal(const std::filesystem::path& file, const std::filesystem::path& workspace,
                    const std::string& session, const std::vector<ProposalEntry>& proposal);
// The patterns, validated again. Throws UsageError (one line) when there
// is no proposal, or one that cannot be read.
std::vector<std::string> load_proposal(const std::filesystem::path& file);

// At the end of a learn session: the record of `log_dir` → proposal →
// printed on io.err and stored for the workspace. Never throws: a session
// that ended is not failed by its proposal (the reason is printed).
void finish_learn_session(const std::filesystem::path& log_dir, const std::vector<std::string>& allowed,
                          const std::string& session, const HostContext& host, SessionIo io);

}  // namespace cagent::launcher::host
