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

  // False only when no path strictly below `directory` ("" = the root) can
  // match, whatever its name and type: an anchored pattern whose segments
  // already disagree with the directory's ("/secrets/" below "src"), or
  // that has none left for a path that deep ("config/*.key" below
  // "config/prod"). The scan asks it once per directory, so that it matches
  // each entry against the patterns that can still match there only.
  bool could_match_below(std::string_view directory) const;

  const std::string& text() const { return text_; }
  bool directory_only() const { return directory_only_; }
  bool anchored() const { return anchored_; }

 private:
  // One segment, with the shape it has, so that the common shapes
  // (".env", "*.key", "id_*") are compared as strings: fnmatch(3) costs
  // more than the rest of the scan's work on an entry.
  struct Segment {
    enum class Kind { globstar, literal, suffix, prefix, glob };
    std::string text;   // as fnmatch reads it
    Kind kind = Kind::glob;
    std::string fixed;  // literal: the whole name; suffix / prefix: the part after / before the '*'
  };
  static Segment make_segment(std::string text);
  static bool segment_matches(const Segment& segment, std::string_view name);
  static bool match_from(const std::vector<Segment>& pat, std::size_t pi,
                         const std::vector<std::string_view>& path, std::size_t si);
  static bool prefix_from(const std::vector<Segment>& pat, std::size_t pi,
                          const std::vector<std::string_view>& path, std::size_t si);

  std::string text_;               // as written, for messages
  std::vector<Segment> segments_;  // split on '/', "**" kept as a segment
  bool directory_only_ = false;
  bool anchored_ = false;
};

// Splits "a/b/c" into {"a","b","c"}.
std::vector<std::string_view> split_path(std::string_view relative);

}  // namespace cagent::launcher::host
