#pragma once
// Gitignore-style path patterns, used by `ignore` and `readonly`.
//
// A pattern is parsed once (parse_pattern validates it and reports what is
// wrong), then matched against workspace-relative paths with '/' separators:
//   "name"        no slash: matches that basename at any depth
//   "/name", "a/b" a slash (other than a trailing one) anchors it at the root
//   "dir/"        trailing slash: directories only
//   "**"          a whole segment: zero or more directories
//   "*", "?", "[a-z]" within one segment, as in fnmatch(3); "\" escapes
// Negation ("!") is not supported: it would let a workspace un-hide a secret
// the global config hides, so it is rejected rather than silently ignored.

#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace cagent::launcher::host {

struct PatternError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class Pattern {
 public:
  // Throws PatternError with a one-line reason (no position: the caller adds it).
  static Pattern parse(std::string_view text);

  // `relative` is a normalized workspace-relative path ("a/b/c", no leading
  // slash, no "." or ".." segments).
  bool matches(std::string_view relative, bool is_directory) const;

  const std::string& text() const { return text_; }
  bool directory_only() const { return directory_only_; }
  bool anchored() const { return anchored_; }

 private:
  std::string text_;                  // as written, for messages
  std::vector<std::string> segments_; // split on '/', "**" kept as a segment
  bool directory_only_ = false;
  bool anchored_ = false;
};

// Splits "a/b/c" into {"a","b","c"}.
std::vector<std::string_view> split_path(std::string_view relative);

}  // namespace cagent::launcher::host
