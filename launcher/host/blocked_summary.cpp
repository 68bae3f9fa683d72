#include "launcher/host/blocked_summary.hpp"

#include <algorithm>
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

}  // namespace

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

}  // namespace cagent::launcher::host
