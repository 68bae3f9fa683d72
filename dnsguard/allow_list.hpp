#pragma once
// AllowList: which query names dnsguard forwards. Patterns are validated and
// normalized once at load (lowercase, no trailing dot); matching is then a
// handful of hash lookups per query, one per label boundary.
//
//   "example.com"    matches example.com only
//   "*.example.com"  matches a.example.com, a.b.example.com, … — never the apex

#include <cstddef>
#include <functional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

namespace cagent::dnsguard {

class PatternError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The one check of a domain pattern, for the host's config and for the
// policy dnsguard reads: `name` exactly or `*.suffix`; lowercases and strips
// one trailing dot; throws PatternError (message says
// what is wrong) for anything that is not a valid exact name or `*.suffix`.
std::string normalize_pattern(std::string_view pattern);

// True when every label is 1..63 bytes of letters, digits, '-' or '_' and
// the whole name (dotted, no trailing dot) is at most 253 bytes.
bool is_valid_hostname(std::string_view name) noexcept;

// Whether `name` (lowercase, no trailing dot) is one normalize_pattern()
// takes as an exact name: one the approver of ask mode could allow. The
// root, a label with a leading or trailing '-' and the like are not.
bool can_be_allowed(std::string_view name);

class AllowList {
 public:
  AllowList() = default;
  explicit AllowList(const std::vector<std::string>& patterns);  // throws PatternError

  // `name`: lowercase, dotted, no trailing dot (what the query parser yields).
  bool allows(std::string_view name) const noexcept;

  // The exact (non-wildcard) names, for the periodic refresh.
  const std::vector<std::string>& exact_names() const noexcept { return exact_list_; }

 private:
  // Transparent hash and equality (C++20 heterogeneous lookup, in libstdc++
  // since 11): allows() looks a string_view — the query name and each of its
  // suffixes — up without building a std::string per probe. This is the
  // per-query hot path; it must not allocate.
  struct NameHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
  };
  using NameSet = std::unordered_set<std::string, NameHash, std::equal_to<>>;
  NameSet exact_;
  NameSet suffixes_;  // "example.com" for "*.example.com"
  std::vector<std::string> exact_list_;
};

}  // namespace cagent::dnsguard
