#include "launcher/host/blocked_summary.hpp"
#include "launcher/host/text.hpp"

#include <sys/statvfs.h>

#include <algorithm>
#include <ctime>
#include <fstream>
#include <cstdint>
#include <map>
#include <utility>

#include "launcher/host/paths.hpp"

namespace cagent::launcher::host {
namespace {

using Counted = std::vector<std::pair<std::string, std::uint64_t>>;

// Adds `count` to `key`'s entry, keeping the order in which keys came.
class Tally {
 public:
  void add(std::string key, std::uint64_t count) {
    auto [it, added] = index_.emplace(key, counted_.size());
    if (added) counted_.emplace_back(std::move(key), 0);
    counted_[it->second].second += count;
  }
  const Counted& counted() const noexcept { return counted_; }

 private:
  std::map<std::string, std::size_t> index_;
  Counted counted_;
};

// "a ×2, b, +3 more": distinct entries, most frequent first (stable:
// equal counts keep their order). `unlisted`: what the total counts beyond
// the entries (the record is bounded), reported as "+N more not listed".
std::string ranked(Counted counted, std::size_t max_items, std::uint64_t unlisted) {
  std::stable_sort(counted.begin(), counted.end(),
                   [](const auto& a, const auto& b) { return a.second > b.second; });
  std::string s;
  for (std::size_t i = 0; i < counted.size() && i < max_items; ++i) {
    if (i > 0) s += ", ";
    s += counted[i].first;
    if (counted[i].second > 1) s += " \xC3\x97" + std::to_string(counted[i].second);  // ×N
  }
  if (counted.size() > max_items) s += ", +" + std::to_string(counted.size() - max_items) + " more";
  // Nothing itemized at all (e.g. only packets that are neither TCP nor
  // UDP): say what the count is, not ", +N more" after an empty list.
  if (unlisted > 0) s += s.empty() ? std::to_string(unlisted) + " not itemized" : ", +" + std::to_string(unlisted) + " more not listed";
  return s;
}

std::string blocked_line(std::uint64_t total, const std::string& listing) {
  return "blocked " + std::to_string(total) + (total == 1 ? " lookup: " : " lookups: ") + listing +
         " \xE2\x80\x94 add to domains in .cagent.yaml to allow";  // em dash
}

std::string refused_line(std::uint64_t total, const std::string& listing) {
  return "the connection gate refused " + std::to_string(total) +
         (total == 1 ? " connection: " : " connections: ") + listing +
         " \xE2\x80\x94 TLS/HTTP to a name that did not resolve to that address (details: dnsguard.log)";
}

std::string firewall_line(std::uint64_t total, const std::string& listing) {
  return "the firewall refused " + std::to_string(total) + (total == 1 ? " packet: " : " packets: ") + listing +
         " \xE2\x80\x94 connections to addresses no allowed name resolved to";
}

// One summary line from exact counts; nothing when nothing was counted.
std::string exact_line(std::uint64_t total, const Counted& items, std::size_t max_items,
                       std::string (*line)(std::uint64_t, const std::string&)) {
  if (total == 0) return {};
  std::uint64_t listed = 0;
  for (const auto& [item, count] : items) listed += count;
  return line(total, ranked(items, max_items, total - std::min(listed, total)));
}


std::string bytes_text(std::uint64_t n) {
  if (n < 10 * 1024) return std::to_string(n) + " bytes";
  return std::to_string(n / 1024) + " KiB";
}

bool full(const RecordCheck& check) { return check.free_bytes && *check.free_bytes < kFullBelow; }

std::string full_text(const RecordCheck& check) {
  return "the log directory " + check.log_dir.string() + " is full (" + bytes_text(*check.free_bytes) + " free)";
}

// "dnsguard.log lost 12 lines, 3 gate bindings were not journalled"
std::string losses_text(const dnsguard::Incomplete& i) {
  std::vector<std::string> parts;
  if (i.log_lines_lost > 0) parts.push_back("its log lost " + std::to_string(i.log_lines_lost) + " lines");
  if (i.bindings_lost > 0)
    parts.push_back(std::to_string(i.bindings_lost) + " gate bindings were not journalled (a restart of dnsguard "
                    "would not restore them)");
  if (i.record_writes_failed > 0)
    parts.push_back("the record lagged behind for " + std::to_string(i.record_writes_failed) + " rewrites");
  std::string s;
  for (std::size_t k = 0; k < parts.size(); ++k) s += (k == 0 ? "" : k + 1 == parts.size() ? " and " : ", ") + parts[k];
  return s;
}

}  // namespace

std::optional<std::string> incomplete_line(const dnsguard::Decisions& record, const RecordCheck& check) {
  // A writer that promised nothing (an older dnsguard) cannot be judged.
  if (record.rewritten_every == 0) return std::nullopt;
  const bool stale =
      !record.final && (check.stopped || check.now - record.updated > record.rewritten_every + kStaleSlack);
  const std::optional<dnsguard::Incomplete>& i = record.incomplete;
  if (!stale && !i) return std::nullopt;
  std::string line = "the decision record is incomplete: ";
  if (i) {
    line += "writing to the log directory " + check.log_dir.string() + " failed from " + utc_iso8601(i->since) + " on (" +
            i->reason + ")";
  }
  if (stale) {
    line += (i ? "; " : "") + std::string("dnsguard last wrote it at ") + utc_iso8601(record.updated) +
            (check.stopped ? " and not as it stopped"
                           : " and not since (it rewrites it every " + std::to_string(record.rewritten_every) + " s)");
    if (full(check)) line += ", and " + full_text(check);
    line += "; its counts stop there";
  } else if (i->totals_short) {
    line += "; dnsguard restarted meanwhile, so its counts miss what it had not written";
  } else {
    const std::string lost = losses_text(*i);
    line += "; its counts are exact" + (lost.empty() ? std::string() : ", but " + lost);
  }
  return line;
}

std::optional<std::string> missing_record_line(const RecordCheck& check) {
  if (!full(check)) return std::nullopt;
  return "no decision record: " + full_text(check) + ", so dnsguard could not write it; what the cage blocked is "
         "unknown";
}

std::optional<std::uint64_t> free_bytes(const std::filesystem::path& dir) {
  struct statvfs st {};
  if (::statvfs(dir.c_str(), &st) != 0) return std::nullopt;
  return static_cast<std::uint64_t>(st.f_bavail) * st.f_frsize;
}

std::optional<dnsguard::Decisions> read_decision_record(const std::filesystem::path& log_dir) {
  const std::filesystem::path file = dnsguard::decisions_path(log_dir);
  std::error_code ec;
  if (!std::filesystem::exists(file, ec)) return std::nullopt;
  return dnsguard::parse_decisions(read_file(file), file.string());
}

std::vector<std::string> summary_lines(const dnsguard::Decisions& record, std::size_t max_items) {
  Tally denied;  // query types merged under one name
  for (const dnsguard::DeniedLookup& e : record.denied) denied.add(e.name, e.count);
  Tally gate;
  for (const dnsguard::GateRefusal& e : record.gate_refused)
    gate.add(!e.name.empty() ? e.name : !e.dst.empty() ? e.dst : "(no name)", e.count);
  Tally firewall;
  for (const dnsguard::FirewallRefusal& e : record.firewall_refused) firewall.add(e.dst + "/" + e.proto, e.count);
  std::vector<std::string> lines;
  for (std::string line : {exact_line(record.denied_total, denied.counted(), max_items, blocked_line),
                           exact_line(record.gate_refused_total, gate.counted(), max_items, refused_line),
                           exact_line(record.firewall_refused_total, firewall.counted(), max_items, firewall_line)}) {
    if (!line.empty()) lines.push_back(std::move(line));
  }
  return lines;
}

std::vector<dnsguard::RelayRefusal> read_relay_record(const std::filesystem::path& log_dir) {
  std::vector<dnsguard::RelayRefusal> out;
  std::ifstream in(dnsguard::relay_record_path(log_dir));
  std::string line;
  while (std::getline(in, line)) {
    try {
      out.push_back(dnsguard::parse_relay_refusal(line));
    } catch (const dnsguard::FormatError&) {
      // skipped: see the header
    }
  }
  return out;
}

std::optional<std::string> relay_line(const std::vector<dnsguard::RelayRefusal>& refusals, std::size_t max_items) {
  if (refusals.empty()) return std::nullopt;
  // The reason says what happened ("secret github sent to echo.test").
  Tally tally;
  for (const auto& r : refusals) tally.add(r.reason, 1);
  const std::string text = "the secret relay refused " + std::to_string(refusals.size()) +
                           (refusals.size() == 1 ? " request: " : " requests: ") + ranked(tally.counted(), max_items, 0);
  return text + " \xE2\x80\x94 a placeholder is worth something only at its secret's own hosts";  // em dash
}

}  // namespace cagent::launcher::host
