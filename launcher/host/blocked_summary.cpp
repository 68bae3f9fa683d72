#include "launcher/host/blocked_summary.hpp"

#include <algorithm>
#include <cctype>
#include <map>
#include <sstream>
#include <utility>

#include <yaml-cpp/yaml.h>

namespace cagent::launcher::host {
namespace {

std::string clean_name(std::string_view raw) {
  std::string n;
  for (char c : raw) {
    if (c == '"' || c == '\'' || c == ',' || c == ';') continue;
    n.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  }
  if (!n.empty() && n.back() == '.') n.pop_back();
  return n;
}

bool looks_like_name(std::string_view s) {
  if (s.empty() || s.find('.') == std::string_view::npos) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_';
  });
}

// The value after "key=" or "key:" (JSON-ish "key":"v" too), if present.
std::string field_value(std::string_view line, std::string_view key) {
  std::size_t pos = 0;
  while ((pos = line.find(key, pos)) != std::string_view::npos) {
    const bool word_start = pos == 0 || !std::isalnum(static_cast<unsigned char>(line[pos - 1]));
    std::size_t v = pos + key.size();
    if (v < line.size() && line[v] == '"') ++v;
    if (word_start && v < line.size() && (line[v] == '=' || line[v] == ':')) {
      ++v;
      while (v < line.size() && (line[v] == '"' || line[v] == ' ')) ++v;
      std::size_t e = v;
      while (e < line.size() && line[e] != ' ' && line[e] != '"' && line[e] != ',') ++e;
      return clean_name(line.substr(v, e - v));
    }
    pos += key.size();
  }
  return {};
}

}  // namespace

std::vector<std::string> parse_denied_names(std::string_view log_text) {
  std::vector<std::string> out;
  std::istringstream in{std::string(log_text)};
  std::string line;
  while (std::getline(in, line)) {
    std::string lower_line = line;
    std::transform(lower_line.begin(), lower_line.end(), lower_line.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (lower_line.find("denied") == std::string::npos && lower_line.find("deny") == std::string::npos &&
        lower_line.find("blocked") == std::string::npos) {
      continue;
    }
    std::string name;
    for (std::string_view key : {"name", "qname", "query", "domain"}) {
      name = field_value(line, key);
      if (!name.empty()) break;
    }
    if (name.empty()) {
      // Free-form line: the first token that looks like a domain name.
      std::istringstream words(line);
      std::string w;
      while (words >> w) {
        const std::string c = clean_name(w);
        if (looks_like_name(c)) {
          name = c;
          break;
        }
      }
    }
    // ".invalid" (RFC 2606) never resolves anywhere; cage-init's readiness
    // probe asks for such a name, and it is not something the user blocked.
    const bool reserved = name.size() >= 8 && name.compare(name.size() - 8, 8, ".invalid") == 0;
    if (looks_like_name(name) && !reserved) out.push_back(name);
  }
  return out;
}

namespace {

// "a ×2, b, +3 more": distinct entries, most frequent first (stable:
// equal counts keep their order). `unlisted`: counted entries whose names
// the record did not keep (it is bounded), reported as "+N more lookups".
std::string ranked(Decisions::Counted counted, std::size_t max_items, std::uint64_t unlisted = 0) {
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

std::string ranked(const std::vector<std::string>& items, std::size_t max_items) {
  std::map<std::string, std::size_t> index;
  Decisions::Counted counted;
  for (const std::string& n : items) {
    auto [it, added] = index.emplace(n, counted.size());
    if (added) counted.emplace_back(n, 0);
    ++counted[it->second].second;
  }
  return ranked(std::move(counted), max_items);
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

bool is_reserved_probe(std::string_view name) {
  return name.size() >= 8 && name.compare(name.size() - 8, 8, ".invalid") == 0;
}

}  // namespace

std::string summarize_blocked(const std::vector<std::string>& names, std::size_t max_names) {
  if (names.empty()) return {};
  return blocked_line(names.size(), ranked(names, max_names));
}

std::vector<std::string> parse_gate_refusals(std::string_view log_text) {
  std::vector<std::string> out;
  std::size_t pos = 0;
  while (pos < log_text.size()) {
    std::size_t end = log_text.find('\n', pos);
    if (end == std::string_view::npos) end = log_text.size();
    const std::string_view line = log_text.substr(pos, end - pos);
    pos = end + 1;
    if (line.find("gate refused") == std::string_view::npos) continue;
    // dnsguard writes only names it validated (letters, digits, '-', '_',
    // '.') and addresses; anything else is not one of its lines.
    const std::string name = field_value(line, "name");
    const std::string dst = field_value(line, "dst");
    if (!name.empty() && looks_like_name(name)) out.push_back(name);
    else if (!dst.empty() && std::all_of(dst.begin(), dst.end(), [](char c) {
               return std::isxdigit(static_cast<unsigned char>(c)) || c == '.' || c == ':' || c == '[' || c == ']';
             }))
      out.push_back(dst);
    else out.push_back("(no name)");
  }
  return out;
}

std::string summarize_gate_refusals(const std::vector<std::string>& targets, std::size_t max_items) {
  if (targets.empty()) return {};
  return refused_line(targets.size(), ranked(targets, max_items));
}

std::optional<Decisions> parse_decisions(std::string_view json) {
  // JSON is YAML's flow style: yaml-cpp (already the config's parser) reads
  // it. The file is dnsguard's, in a directory only dnsguard's uid could
  // write during the session; still, anything unexpected means "no record"
  // (the caller falls back to the log), never a crash.
  try {
    const YAML::Node root = YAML::Load(std::string(json));
    if (!root.IsMap() || root["version"].as<int>(0) != 1) return std::nullopt;
    Decisions d;
    d.denied_total = root["denied_total"].as<std::uint64_t>();
    std::map<std::string, std::size_t> index;  // types merged under one name
    for (const YAML::Node& e : root["denied"]) {
      std::string name = e["name"].as<std::string>();
      const auto count = e["count"].as<std::uint64_t>();
      if (is_reserved_probe(name)) {
        d.denied_total -= std::min(d.denied_total, count);
        continue;
      }
      auto [it, added] = index.emplace(name, d.denied.size());
      if (added) d.denied.emplace_back(std::move(name), 0);
      d.denied[it->second].second += count;
    }
    d.refused_total = root["gate_refused_total"].as<std::uint64_t>();
    index.clear();
    for (const YAML::Node& e : root["gate_refused"]) {
      std::string target = e["name"].as<std::string>();
      if (target.empty()) target = e["dst"].as<std::string>();
      if (target.empty()) target = "(no name)";
      auto [it, added] = index.emplace(target, d.refused.size());
      if (added) d.refused.emplace_back(std::move(target), 0);
      d.refused[it->second].second += e["count"].as<std::uint64_t>();
    }
    // Records of earlier versions have no firewall part: zero, not an error.
    d.firewall_total = root["firewall_refused_total"].as<std::uint64_t>(0);
    for (const YAML::Node& e : root["firewall_refused"])
      d.firewall.emplace_back(e["dst"].as<std::string>() + "/" + e["proto"].as<std::string>(),
                              e["count"].as<std::uint64_t>());
    return d;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

namespace {
// One summary line from exact counts: `items` ranked, what the total counts
// beyond them as "+N more not listed"; nothing when nothing was counted.
std::string exact_line(std::uint64_t total, const Decisions::Counted& items, std::size_t max_items,
                       std::string (*line)(std::uint64_t, const std::string&)) {
  if (total == 0) return {};
  std::uint64_t listed = 0;
  for (const auto& [item, count] : items) listed += count;
  return line(total, ranked(items, max_items, total - std::min(listed, total)));
}
}  // namespace

std::string exact_blocked_summary(const Decisions& d, std::size_t max_names) {
  return exact_line(d.denied_total, d.denied, max_names, blocked_line);
}

std::string exact_gate_summary(const Decisions& d, std::size_t max_items) {
  return exact_line(d.refused_total, d.refused, max_items, refused_line);
}

std::string exact_firewall_summary(const Decisions& d, std::size_t max_items) {
  return exact_line(d.firewall_total, d.firewall, max_items, firewall_line);
}

}  // namespace cagent::launcher::host
