#include "launcher/cage/accounts.hpp"

#include <vector>

namespace cagent::cage {
namespace {

std::vector<std::string> split_fields(std::string_view line) {
  std::vector<std::string> fields;
  std::size_t start = 0;
  while (true) {
    const auto colon = line.find(':', start);
    fields.emplace_back(line.substr(start, colon - start));
    if (colon == std::string_view::npos) break;
    start = colon + 1;
  }
  return fields;
}

std::string join_fields(const std::vector<std::string>& fields) {
  std::string line;
  for (std::size_t i = 0; i < fields.size(); ++i) {
    if (i != 0) line += ':';
    line += fields[i];
  }
  return line;
}

// Calls edit(fields) for each line whose first field is `name` and has
// `field_count` fields; returns the new text and how many lines matched.
template <typename Edit>
std::string edit_lines(std::string_view text, std::string_view name, std::size_t field_count, Edit edit,
                       int& matched) {
  std::string out;
  out.reserve(text.size() + 16);
  std::size_t start = 0;
  while (start < text.size()) {
    auto end = text.find('\n', start);
    const bool has_newline = end != std::string_view::npos;
    if (!has_newline) end = text.size();
    const std::string_view line = text.substr(start, end - start);
    auto fields = split_fields(line);
    if (fields.size() == field_count && fields[0] == name && edit(fields)) {
      ++matched;
      out += join_fields(fields);
    } else {
      out += line;
    }
    if (has_newline) out += '\n';
    start = end + 1;
  }
  return out;
}

}  // namespace

std::string rewrite_passwd(std::string_view passwd, std::string_view user, uid_t uid, gid_t gid) {
  int matched = 0;
  std::string result = edit_lines(
      passwd, user, 7,
      [&](std::vector<std::string>& fields) {
        fields[2] = std::to_string(uid);
        fields[3] = std::to_string(gid);
        return true;
      },
      matched);
  if (matched != 1) {
    throw AccountError("user \"" + std::string(user) + "\" has " + std::to_string(matched) +
                       " entries in passwd, need exactly one");
  }
  return result;
}

std::string rewrite_group(std::string_view group_file, std::string_view group, gid_t old_gid, gid_t gid) {
  int matched = 0;
  return edit_lines(
      group_file, group, 4,
      [&](std::vector<std::string>& fields) {
        if (fields[2] != std::to_string(old_gid)) return false;
        fields[2] = std::to_string(gid);
        return true;
      },
      matched);
}

}  // namespace cagent::cage
