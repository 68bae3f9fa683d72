#include "launcher/host/yaml_edit.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <sstream>

namespace cagent::launcher::host {
namespace {

std::vector<std::string> domains_of(const std::string& text) {
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    throw YamlEditError(std::string("cannot parse it: ") + e.what());
  }
  if (root.IsNull()) return {};
  if (!root.IsMap()) throw YamlEditError("it is not a mapping of keys");
  const YAML::Node d = root["domains"];
  if (!d || d.IsNull()) return {};
  if (!d.IsSequence()) throw YamlEditError("its domains is not a list");
  std::vector<std::string> out;
  for (const YAML::Node& n : d) {
    if (!n.IsScalar()) throw YamlEditError("its domains holds something that is not a name");
    out.push_back(n.as<std::string>());
  }
  return out;
}

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> lines;
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t e = text.find('\n', pos);
    if (e == std::string::npos) e = text.size();
    lines.push_back(text.substr(pos, e - pos));
    pos = e + 1;
  }
  return lines;
}

bool blank_or_comment(const std::string& l) {
  const std::size_t p = l.find_first_not_of(" \t\r");
  return p == std::string::npos || l[p] == '#';
}

std::string quoted(const std::string& name) { return "\"" + name + "\""; }  // patterns hold no quotes

}  // namespace

std::string add_domains(const std::string& text, const std::vector<std::string>& names) {
  const std::vector<std::string> before = domains_of(text);
  std::vector<std::string> add;
  for (const auto& n : names) {
    if (std::find(before.begin(), before.end(), n) == before.end() && std::find(add.begin(), add.end(), n) == add.end())
      add.push_back(n);
  }
  if (add.empty()) return text;

  std::vector<std::string> lines = split_lines(text);
  // The top-level "domains:" line (column 0, nothing but a comment after it).
  std::size_t key = lines.size();
  for (std::size_t i = 0; i < lines.size(); ++i) {
    const std::string& l = lines[i];
    if (l.rfind("domains", 0) != 0) continue;
    std::size_t p = 7;
    while (p < l.size() && (l[p] == ' ' || l[p] == '\t')) ++p;
    if (p >= l.size() || l[p] != ':') continue;
    ++p;
    while (p < l.size() && (l[p] == ' ' || l[p] == '\t' || l[p] == '\r')) ++p;
    if (p < l.size() && l[p] != '#') throw YamlEditError("its domains is written inline; add the names by hand");
    key = i;
    break;
  }
  std::string result;
  if (key == lines.size()) {
    // No domains yet: a new block at the end.
    result = text;
    if (!result.empty() && result.back() != '\n') result += '\n';
    result += "domains:\n";
    for (const auto& n : add) result += "  - " + quoted(n) + "\n";
  } else {
    // The block: the lines after the key that are items, their
    // continuations, comments or blank, up to the next top-level key.
    std::size_t last_item = key;
    std::string indent = "  ";
    bool seen_item = false;
    for (std::size_t i = key + 1; i < lines.size(); ++i) {
      const std::string& l = lines[i];
      if (blank_or_comment(l)) continue;
      const std::size_t p = l.find_first_not_of(' ');
      if (p == 0 && l[0] != '-') break;  // the next key
      if (!seen_item && l[p] == '-') {
        indent = l.substr(0, p);
        seen_item = true;
      }
      last_item = i;
    }
    std::vector<std::string> out(lines.begin(), lines.begin() + static_cast<long>(last_item) + 1);
    for (const auto& n : add) out.push_back(indent + "- " + quoted(n));
    out.insert(out.end(), lines.begin() + static_cast<long>(last_item) + 1, lines.end());
    for (const auto& l : out) result += l + "\n";
    if (!text.empty() && text.back() != '\n') result.pop_back();  // keep a missing final newline missing
  }
  // Whatever the text looked like, the result must say exactly this.
  std::vector<std::string> want = before;
  want.insert(want.end(), add.begin(), add.end());
  std::vector<std::string> got;
  try {
    got = domains_of(result);
  } catch (const YamlEditError&) {
    throw YamlEditError("its layout is one this editor cannot extend safely; add the names by hand");
  }
  if (got != want) throw YamlEditError("its layout is one this editor cannot extend safely; add the names by hand");
  return result;
}

}  // namespace cagent::launcher::host
