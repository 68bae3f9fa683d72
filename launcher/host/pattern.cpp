#include "launcher/host/pattern.hpp"

#include <fnmatch.h>

#include <cstddef>
#include <string>
#include <utility>

namespace cagent::launcher::host {
namespace {

// Validates the glob syntax of one segment; fnmatch(3) would silently treat
// an unclosed '[' as a literal, which hides typos in security-relevant lists.
void check_segment(std::string_view seg) {
  for (std::size_t i = 0; i < seg.size(); ++i) {
    const char c = seg[i];
    if (c == '\\') {
      if (i + 1 == seg.size()) throw PatternError("trailing backslash escapes nothing");
      ++i;
    } else if (c == '[') {
      std::size_t j = i + 1;
      if (j < seg.size() && (seg[j] == '!' || seg[j] == '^')) ++j;
      if (j < seg.size() && seg[j] == ']') ++j;  // "[]a]" : ']' first is literal
      while (j < seg.size() && seg[j] != ']') ++j;
      if (j >= seg.size()) throw PatternError("unclosed '[' in pattern");
      i = j;
    }
  }
  if (seg == "." || seg == "..") throw PatternError("'.' and '..' segments are not allowed");
}

}  // namespace

std::vector<std::string_view> split_path(std::string_view relative) {
  std::vector<std::string_view> out;
  std::size_t start = 0;
  while (start <= relative.size()) {
    const std::size_t slash = relative.find('/', start);
    const std::size_t end = slash == std::string_view::npos ? relative.size() : slash;
    if (end > start) out.push_back(relative.substr(start, end - start));
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  return out;
}

Pattern Pattern::parse(std::string_view text) {
  Pattern p;
  p.text_ = std::string(text);
  std::string_view body = text;
  if (body.empty()) throw PatternError("empty pattern");
  if (body.find('\0') != std::string_view::npos) throw PatternError("NUL byte in pattern");
  if (body.front() == '!') {
    throw PatternError("negation ('!') is not supported; use '\\!' for a literal '!'");
  }
  if (body.front() == '#') throw PatternError("pattern starts with '#' (use '\\#' for a literal)");
  if (body.back() == '/') {
    p.directory_only_ = true;
    body.remove_suffix(1);
  }
  if (!body.empty() && body.front() == '/') {
    p.anchored_ = true;
    body.remove_prefix(1);
  }
  if (body.empty()) throw PatternError("pattern matches nothing (only slashes)");
  if (body.find("//") != std::string_view::npos) throw PatternError("empty path segment ('//')");
  // A slash left in the middle anchors the pattern to the root, as in gitignore.
  if (body.find('/') != std::string_view::npos) p.anchored_ = true;
  for (std::string_view seg : split_path(body)) {
    if (seg.find("**") != std::string_view::npos && seg != "**") {
      // gitignore: other consecutive asterisks are regular '*'.
      std::string collapsed;
      for (char c : seg) {
        if (c == '*' && !collapsed.empty() && collapsed.back() == '*') continue;
        collapsed.push_back(c);
      }
      check_segment(collapsed);
      p.segments_.push_back(make_segment(std::move(collapsed)));
      continue;
    }
    if (seg != "**") check_segment(seg);
    p.segments_.push_back(make_segment(std::string(seg)));
  }
  // "**" alone or a pattern of only "**" segments would hide the whole
  // workspace; a pattern like "**/x" is fine.
  bool only_globstar = true;
  for (const Segment& s : p.segments_) only_globstar = only_globstar && s.kind == Segment::Kind::globstar;
  if (only_globstar) throw PatternError("pattern would match every path");
  return p;
}

Pattern::Segment Pattern::make_segment(std::string text) {
  Segment s;
  // What fnmatch(3) treats as more than itself; a segment has no '/'.
  const auto plain = [](std::string_view t) { return t.find_first_of("*?[\\") == std::string_view::npos; };
  const std::string_view t = text;
  if (t == "**") {
    s.kind = Segment::Kind::globstar;
  } else if (plain(t)) {
    s.kind = Segment::Kind::literal;
    s.fixed = text;
  } else if (t.front() == '*' && plain(t.substr(1))) {
    s.kind = Segment::Kind::suffix;  // "*.key", and "*" (any name: names are never empty)
    s.fixed = text.substr(1);
  } else if (t.back() == '*' && plain(t.substr(0, t.size() - 1))) {
    s.kind = Segment::Kind::prefix;  // "id_*"
    s.fixed = text.substr(0, text.size() - 1);
  }
  s.text = std::move(text);
  return s;
}

bool Pattern::segment_matches(const Segment& segment, std::string_view name) {
  switch (segment.kind) {
    case Segment::Kind::literal: return name == segment.fixed;
    case Segment::Kind::suffix: return name.ends_with(segment.fixed);
    case Segment::Kind::prefix: return name.starts_with(segment.fixed);
    case Segment::Kind::globstar:
    case Segment::Kind::glob: break;
  }
  const std::string subject(name);
  // No FNM_PERIOD: gitignore's "*" matches leading dots too (".env*" aside,
  // "*.key" must hide ".secret.key").
  return ::fnmatch(segment.text.c_str(), subject.c_str(), 0) == 0;
}

bool Pattern::match_from(const std::vector<Segment>& pat, std::size_t pi, const std::vector<std::string_view>& path,
                         std::size_t si) {
  // Bounded recursion: depth ≤ pattern segments; "**" loops over the rest.
  while (pi < pat.size()) {
    if (pat[pi].kind == Segment::Kind::globstar) {
      // Collapse consecutive "**".
      while (pi + 1 < pat.size() && pat[pi + 1].kind == Segment::Kind::globstar) ++pi;
      if (pi + 1 == pat.size()) return si < path.size();  // "a/**": something inside a
      for (std::size_t k = si; k < path.size(); ++k) {
        if (match_from(pat, pi + 1, path, k)) return true;
      }
      return false;
    }
    if (si >= path.size() || !segment_matches(pat[pi], path[si])) return false;
    ++pi;
    ++si;
  }
  return si == path.size();
}

// Whether path[si..] can be followed by one or more segments so that
// pat[pi..] matches the whole: match_from() on an unknown longer path, true
// whenever in doubt (a segment still to match might match some name).
bool Pattern::prefix_from(const std::vector<Segment>& pat, std::size_t pi, const std::vector<std::string_view>& path,
                          std::size_t si) {
  while (si < path.size()) {
    if (pi == pat.size()) return false;  // the path is already deeper than the pattern
    if (pat[pi].kind == Segment::Kind::globstar) {
      while (pi + 1 < pat.size() && pat[pi + 1].kind == Segment::Kind::globstar) ++pi;
      if (pi + 1 == pat.size()) return true;
      // "**" takes path[si..k); k == path.size(): it takes the whole rest.
      for (std::size_t k = si; k <= path.size(); ++k) {
        if (prefix_from(pat, pi + 1, path, k)) return true;
      }
      return false;
    }
    if (!segment_matches(pat[pi], path[si])) return false;
    ++pi;
    ++si;
  }
  return pi < pat.size();
}

bool Pattern::matches(std::string_view relative, bool is_directory) const {
  if (directory_only_ && !is_directory) return false;
  if (!anchored_) {
    // No slash in the pattern: compare the basename only (the last segment,
    // as split_path() would give it, without splitting the rest).
    while (!relative.empty() && relative.back() == '/') relative.remove_suffix(1);
    const std::size_t slash = relative.rfind('/');
    const std::string_view base = slash == std::string_view::npos ? relative : relative.substr(slash + 1);
    return !base.empty() && segments_.size() == 1 && segment_matches(segments_.front(), base);
  }
  const std::vector<std::string_view> path = split_path(relative);
  if (path.empty()) return false;
  return match_from(segments_, 0, path, 0);
}

bool Pattern::could_match_below(std::string_view directory) const {
  if (!anchored_) return true;
  return prefix_from(segments_, 0, split_path(directory), 0);
}

}  // namespace cagent::launcher::host
