#include "launcher/host/blocked_summary.hpp"

#include <algorithm>
#include <cctype>
#include <map>
#include <sstream>
#include <utility>

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

// "a ×2, b, +3 more": distinct entries, most frequent first.
std::string ranked(const std::vector<std::string>& items, std::size_t max_items) {
  std::map<std::string, std::size_t> counts;
  std::vector<std::string> order;
  for (const std::string& n : items) {
    if (counts[n]++ == 0) order.push_back(n);
  }
  std::stable_sort(order.begin(), order.end(),
                   [&](const std::string& a, const std::string& b) { return counts[a] > counts[b]; });
  std::string s;
  for (std::size_t i = 0; i < order.size() && i < max_items; ++i) {
    if (i > 0) s += ", ";
    s += order[i];
    if (counts[order[i]] > 1) s += " \xC3\x97" + std::to_string(counts[order[i]]);  // ×N
  }
  if (order.size() > max_items) s += ", +" + std::to_string(order.size() - max_items) + " more";
  return s;
}

}  // namespace

std::string summarize_blocked(const std::vector<std::string>& names, std::size_t max_names) {
  if (names.empty()) return {};
  return "blocked " + std::to_string(names.size()) + (names.size() == 1 ? " lookup: " : " lookups: ") +
         ranked(names, max_names) + " \xE2\x80\x94 add to domains in .cagent.yaml to allow";  // em dash
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
  return "the connection gate refused " + std::to_string(targets.size()) +
         (targets.size() == 1 ? " connection: " : " connections: ") + ranked(targets, max_items) +
         " \xE2\x80\x94 TLS/HTTP to a name that did not resolve to that address (details: dnsguard.log)";
}

}  // namespace cagent::launcher::host
