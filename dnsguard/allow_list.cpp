#include "dnsguard/allow_list.hpp"

namespace cagent::dnsguard {

namespace {
bool is_label_byte(char c) noexcept {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         c == '-' || c == '_';
}
}  // namespace

bool is_valid_hostname(std::string_view name) noexcept {
  if (name.empty() || name.size() > 253) return false;
  std::size_t label = 0;
  for (char c : name) {
    if (c == '.') {
      if (label == 0) return false;
      label = 0;
      continue;
    }
    if (!is_label_byte(c) || ++label > 63) return false;
  }
  return label != 0;
}

namespace {
// Why `name` (lowercase, no trailing dot, "*." removed) is not a host name;
// empty when it is one.
std::string name_problem(std::string_view name) {
  if (name.empty()) return "empty name";
  if (name.size() > 253) return "name longer than 253 characters";
  std::size_t start = 0;
  while (true) {
    const std::size_t dot = name.find('.', start);
    const std::string_view label = name.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
    if (label.empty()) return "empty label";
    if (label.size() > 63) return "label longer than 63 characters";
    for (const char c : label) {
      if (c == '*') return "'*' is allowed only as the whole first label ('*.example.com')";
      if (!is_label_byte(c)) return std::string("invalid character '") + c + "' (letters, digits, '-' and '_')";
    }
    if (label.front() == '-' || label.back() == '-') return "a label starts or ends with '-'";
    if (dot == std::string_view::npos) return {};
    start = dot + 1;
  }
}
}  // namespace

bool can_be_allowed(std::string_view name) { return name_problem(name).empty(); }

std::string normalize_pattern(std::string_view pattern) {
  std::string p(pattern);
  for (char& c : p)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  if (!p.empty() && p.back() == '.') p.pop_back();
  std::string_view name = p;
  if (name.starts_with("*.")) {
    name.remove_prefix(2);
    if (name.empty()) throw PatternError("'" + std::string(pattern) + "': '*.' needs a suffix, e.g. '*.example.com'");
  }
  if (const std::string why = name_problem(name); !why.empty())
    throw PatternError("'" + std::string(pattern) + "': " + why);
  return p;
}

AllowList::AllowList(const std::vector<std::string>& patterns) {
  for (const auto& raw : patterns) {
    auto p = normalize_pattern(raw);
    if (p.starts_with("*.")) {
      suffixes_.insert(p.substr(2));
    } else if (exact_.insert(p).second) {
      exact_list_.push_back(p);
    }
  }
}

bool AllowList::allows(std::string_view name) const noexcept {
  // string_view keys all the way: no copy of the name or of any suffix.
  if (exact_.contains(name)) return true;
  if (suffixes_.empty()) return false;
  // Each proper suffix after a dot: a.b.example.com -> b.example.com, example.com, com.
  for (std::size_t dot = name.find('.'); dot != std::string_view::npos; dot = name.find('.', dot + 1)) {
    if (suffixes_.contains(name.substr(dot + 1))) return true;
  }
  return false;
}

}  // namespace cagent::dnsguard
