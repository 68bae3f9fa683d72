#include "launcher/host/learn.hpp"

#include <libpsl.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <ostream>
#include <sstream>
#include <stdexcept>

#include "dnsguard/allow_list.hpp"
#include "dnsguard/atomic_file.hpp"
#include "launcher/host/blocked_summary.hpp"
#include "launcher/host/cli.hpp"
#include "launcher/host/session.hpp"
#include "launcher/host/sha256.hpp"
#include "launcher/host/text.hpp"

namespace cagent::launcher::host {
namespace fs = std::filesystem;

void PublicSuffixList::Free::operator()(psl_ctx_st* ctx) const noexcept { psl_free(ctx); }

PublicSuffixList::PublicSuffixList() : ctx_(psl_latest(nullptr)) {
  if (!ctx_) throw std::runtime_error("libpsl has no Public Suffix List (neither built in nor installed)");
}

std::optional<std::string> PublicSuffixList::registrable_domain(std::string_view name) const {
  const std::string text(name);
  // Owned by libpsl's answer: a pointer into `text`, or null.
  const char* domain = psl_registrable_domain(ctx_.get(), text.c_str());
  if (domain == nullptr) return std::nullopt;
  return std::string(domain);
}

std::vector<ProposalEntry> propose_allowlist(const std::vector<LearnedCount>& learned,
                                             const std::vector<std::string>& allowed,
                                             const RegistrableDomains& domains) {
  const dnsguard::AllowList already(allowed);
  // name → lookups, each name once, valid and not allowed yet.
  std::map<std::string, std::uint64_t> counts;
  for (const LearnedCount& l : learned) {
    std::string name;
    try {
      name = dnsguard::normalize_pattern(l.name);
    } catch (const dnsguard::PatternError&) {
      continue;  // "<bad label bytes>" and the like: no allowlist can name it
    }
    if (name.front() == '*' || already.allows(name)) continue;
    counts[name] += l.count;
  }
  // registrable domain → the names strictly below it.
  std::map<std::string, std::vector<std::string>> below;
  std::vector<ProposalEntry> out;
  const auto exact = [&](const std::string& name, std::uint64_t count) {
    out.push_back(ProposalEntry{name, {name}, count});
  };
  for (const auto& [name, count] : counts) {
    const std::optional<std::string> r = domains.registrable_domain(name);
    if (!r || *r == name) {
      exact(name, count);  // a public suffix itself, or the registrable domain (a wildcard misses its apex)
    } else {
      below[*r].push_back(name);
    }
  }
  for (auto& [domain, names] : below) {
    if (names.size() < 2) {
      for (const std::string& n : names) exact(n, counts[n]);
      continue;
    }
    ProposalEntry e{"*." + domain, {}, 0};
    for (const std::string& n : names) e.count += counts[n];
    e.names = std::move(names);  // sorted: they come from an ordered map
    out.push_back(std::move(e));
  }
  std::sort(out.begin(), out.end(), [](const ProposalEntry& a, const ProposalEntry& b) { return a.pattern < b.pattern; });
  return out;
}

std::vector<LearnedCount> learned_names(const dnsguard::Decisions& record) {
  std::vector<LearnedCount> out;
  out.reserve(record.learned.size());
  for (const dnsguard::LearnedName& l : record.learned) out.push_back({l.name, l.count});
  return out;
}

std::vector<std::string> proposal_lines(const std::vector<ProposalEntry>& proposal, std::uint64_t unlisted) {
  std::vector<std::string> lines;
  if (proposal.empty()) {
    lines.emplace_back("learn mode: every name looked up was already allowed; nothing to propose");
  } else {
    lines.push_back("learn mode proposes " + std::to_string(proposal.size()) +
                    (proposal.size() == 1 ? " entry" : " entries") + " for the allowlist:");
    for (const ProposalEntry& e : proposal) {
      std::string line = "  " + e.pattern + "  \xC3\x97" + std::to_string(e.count);
      if (e.names.size() > 1 || e.names.front() != e.pattern) {
        std::string names;
        for (const std::string& n : e.names) names += (names.empty() ? "" : ", ") + n;
        line += "  (" + names + ")";
      }
      lines.push_back(std::move(line));
    }
  }
  if (unlisted > 0) {
    lines.push_back("learn mode: " + std::to_string(unlisted) +
                    " more lookups were past the record's bound; names among them are not in the proposal");
  }
  if (!proposal.empty()) {
    lines.emplace_back("review it, then save it for the next sessions: cagent allow --save --from-learned"
                       " (or name the entries you want: cagent allow --save NAME…)");
  }
  return lines;
}

std::string learn_start_line() {
  return "LEARN MODE: every name resolves and every destination is open for this session (DNS tunnelling "
         "included); private and metadata addresses stay closed. Use it on a trusted project only, then "
         "switch back.";
}

std::string learn_end_line() { return "LEARN MODE ended: the next session without --learn enforces the allowlist again."; }

fs::path proposal_path(const fs::path& cagent_home, const fs::path& workspace) {
  return cagent_home / "learned" / sha256_hex(workspace.string());
}

void store_proposal(const fs::path& file, const fs::path& workspace, const std::string& session,
                    const std::vector<ProposalEntry>& proposal) {
  std::string text = "# cagent learn mode's proposal (one pattern a line)\n# workspace: " +
                     printable(workspace.string()) + "\n# session: " + session + "\n";
  for (const ProposalEntry& e : proposal) text += e.pattern + "\n";
  fs::create_directories(file.parent_path());
  fs::permissions(file.parent_path(), fs::perms::owner_all);
  dnsguard::write_file_atomically(file, text);
}

std::vector<std::string> load_proposal(const fs::path& file) {
  std::ifstream in(file);
  if (!in) {
    throw UsageError("no learn session proposal for this workspace (" + printable(file.string()) +
                     "); run cagent --learn first");
  }
  std::vector<std::string> patterns;
  std::string line;
  for (int n = 1; std::getline(in, line); ++n) {
    if (line.empty() || line.front() == '#') continue;
    try {
      patterns.push_back(dnsguard::normalize_pattern(line));
    } catch (const dnsguard::PatternError& e) {
      throw UsageError(printable(file.string()) + ":" + std::to_string(n) + ": " + printable(e.what()));
    }
  }
  if (patterns.empty()) throw UsageError("the last learn session of this workspace proposed nothing");
  return patterns;
}

void finish_learn_session(const fs::path& log_dir, const std::vector<std::string>& allowed, const std::string& session,
                          const HostContext& host, SessionIo io) {
  try {
    const std::optional<dnsguard::Decisions> record = read_decision_record(log_dir);
    if (!record) {
      io.err << "cagent: learn mode: no decision record, so no proposal\n";
    } else {
      const std::vector<ProposalEntry> proposal =
          propose_allowlist(learned_names(*record), allowed, PublicSuffixList());
      for (const std::string& line : proposal_lines(proposal, record->learned_unlisted))
        io.err << "cagent: " << printable(line) << "\n";
      store_proposal(proposal_path(host.cagent_home, host.workspace), host.workspace, session, proposal);
    }
  } catch (const std::exception& e) {
    io.err << "cagent: learn mode: no proposal: " << printable(e.what()) << "\n";
  }
  io.err << "cagent: " << learn_end_line() << "\n";
}

}  // namespace cagent::launcher::host
